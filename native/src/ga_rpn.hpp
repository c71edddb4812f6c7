// Guided Anchoring RPN (Wang et al., "Region Proposal by Guided Anchoring", CVPR 2019), as
// mmdetection's GARPNHead: after the RPN's shared 3x3 conv, a location branch (1x1 conv, where
// objects centre), a shape branch (1x1 conv, the anchor's dw, dh relative to a square of side 8 x
// stride), a feature adaption (a 1x1 conv from the shape prediction to the offsets of a 3x3
// deformable conv, deform_conv.hpp) and the RPN's objectness / delta convs on the adapted
// features, one guided anchor per location. Losses: focal loss on the location map (mmdet's
// centre / ignore / negative regions), bounded IoU loss on the shapes (targets from the 9
// "approx" anchors per location), BCE + smooth L1 on the guided anchors.
#pragma once
#include "rpn.hpp"

namespace smnas {

using BoxStds = std::array<double, 4>;

struct GaRpnOptions {
  explicit GaRpnOptions(int channels) : channels_(channels) {}
  TORCH_ARG(int, channels);
  TORCH_ARG(int, deformGroups) = 4;
  // squares: side octaveBaseScale x stride; approxes: 3 scales per octave x the ratios
  TORCH_ARG(double, octaveBaseScale) = 8;
  TORCH_ARG(int, scalesPerOctave) = 3;
  TORCH_ARG(std::vector<double>, ratios) = std::vector<double>{0.5, 1.0, 2.0};
  TORCH_ARG(BoxStds, anchorStds) = BoxStds{0.07, 0.07, 0.14, 0.14};  // shape coder
  TORCH_ARG(BoxStds, bboxStds) = BoxStds{0.07, 0.07, 0.11, 0.11};    // proposal coder
  TORCH_ARG(double, locFilter) = 0.01;                               // test: locations with sigmoid(loc) below it propose nothing
  TORCH_ARG(double, centerRatio) = 0.2;                              // location targets: the central part of a box is positive,
  TORCH_ARG(double, ignoreRatio) = 0.5;                              // the rest of its central half ignored; weight 0.1 elsewhere
  TORCH_ARG(double, negativeLocWeight) = 0.1;
  TORCH_ARG(double, boundedIouBeta) = 0.2;
  TORCH_ARG(double, smoothL1Beta) = 1.0;
  // Whether the objectness / delta losses train the shared features through the deformable
  // feature adaption (mmdetection: yes). Off by default: with it, GN+WS from scratch at the toy
  // lr 0.02, batch 4 (bench/quality-job.ts with ga-rpn) blew up at iterations 140-220 (RoI cls
  // loss 45-470, rpn_loc 380, then a dead network and AP 0), with the hand-written kernel and the
  // tensor-op version alike; with the input detached the same run trains stably. The location and
  // shape branches and the RoI heads still train the shared features.
  TORCH_ARG(bool, adaptionGradient) = false;
  TORCH_ARG(AnchorSampling, shapeSampling);  // ApproxMaxIoUAssigner 0.7 / 0.3 / 0.3, 256 samples, half positive
  TORCH_ARG(AnchorSampling, sampling);       // guided anchors vs ground truth, as the RPN
  TORCH_ARG(ProposalOptions, proposals);
};

struct GaRpnImpl : ProposalGeneratorImpl {
  explicit GaRpnImpl(const GaRpnOptions& o);
  std::vector<torch::Tensor> forward(const std::vector<Level>& levels, const ImageSizes& sizes, const Targets* targets,
                                     LossMap* losses) override;
  double flopsPerLevel(int64_t h, int64_t w) const override;
  // the deformable feature adaption decomposed into GridSample + Conv (onnxruntime has no
  // DeformConv kernel; docs/deploy.md)
  OnnxValue exportOnnx(OnnxGraph& g, const std::vector<OnnxLevel>& levels, const OnnxImageSize& size) override;
  GaRpnOptions options;
  Conv conv{nullptr}, loc{nullptr}, shape{nullptr}, offset{nullptr}, cls{nullptr}, reg{nullptr};
  torch::Tensor adaptWeight;  // the deformable 3x3 conv C -> C (no bias, as mmcv's DeformConv2d)

  // Location targets and weights of one level [B,1,H,W] (mmdetection's ga_loc_targets).
  struct LocTargets {
    std::vector<torch::Tensor> targets, weights;
    double avgFactor;
  };
  LocTargets locTargets(const Targets& t, const std::vector<Level>& levels) const;
};
TORCH_MODULE(GaRpn);

// mmdetection's bounded IoU loss (Tychsen-Smith & Petersson), elementwise [N,4] before weighting;
// the target's centre and size are constants.
torch::Tensor boundedIouLoss(const torch::Tensor& pred, const torch::Tensor& target, double beta, double eps = 1e-3);

}  // namespace smnas
