// Region proposal networks. The detector's "rpn" module is a ProposalGenerator: the plain RPN
// here (mmdetection's RPNHead) or the guided-anchoring RPN (ga_rpn.hpp). Each owns its anchors,
// assigner and sampler thresholds (named options below), its losses and its proposal selection.
#pragma once
#include <functional>

#include "layers.hpp"

namespace smnas {

// Proposal selection (mmdetection v2 RPN test/train cfg): top `preNms` per level by score,
// decoded and clipped to the image, empty boxes dropped, NMS per level at `nmsIou`, then the
// `postNms` best of all levels.
struct ProposalOptions {
  TORCH_ARG(int, trainPreNms) = 2000;
  TORCH_ARG(int, trainPostNms) = 1000;
  TORCH_ARG(int, testPreNms) = 1000;
  TORCH_ARG(int, testPostNms) = 1000;
  TORCH_ARG(double, nmsIou) = 0.7;
};
ProposalOptions proposalOptionsFrom(const Recipe& r);

// Candidates of one level of one image.
struct LevelCandidates {
  torch::Tensor scores;   // [n] probabilities
  torch::Tensor deltas;   // [n,4]
  torch::Tensor anchors;  // [n,4]
};
struct OnnxLevelCandidates {
  OnnxValue scores, deltas, anchors;  // [n], [n,4], [n,4]
};
torch::Tensor selectProposals(const std::vector<LevelCandidates>& levels, const std::array<double, 4>& stds, std::pair<int, int> size,
                              int preNms, int postNms, double nmsIou);
// selectProposals (test-time settings) in the exported graph: proposals [N,4]
OnnxValue onnxSelectProposals(OnnxGraph& g, const std::vector<OnnxLevelCandidates>& levels, const std::array<double, 4>& stds,
                              const OnnxImageSize& size, const ProposalOptions& p);
// selectProposals for each image of a batch with the train- or test-time settings; `candidates(b)`
// gives image b's candidates per level
std::vector<torch::Tensor> selectBatchProposals(const std::function<std::vector<LevelCandidates>(int64_t)>& candidates,
                                                const std::array<double, 4>& stds, const ImageSizes& sizes, const ProposalOptions& p,
                                                bool train);

// Max-IoU assignment and random sampling settings of a dense head (mmdet MaxIoUAssigner +
// RandomSampler).
struct AnchorSampling {
  TORCH_ARG(double, posIou) = 0.7;
  TORCH_ARG(double, negIou) = 0.3;
  TORCH_ARG(double, minPosIou) = 0.3;  // each gt's best anchors are positive from this IoU on
  TORCH_ARG(int, samplesPerImage) = 256;
  TORCH_ARG(double, positiveFraction) = 0.5;
};

struct ProposalGeneratorImpl : torch::nn::Module {
  // Proposals per image ([N,4], no gradient). With targets (training) the losses are added to
  // `losses`, and the train-time proposal settings are used.
  virtual std::vector<torch::Tensor> forward(const std::vector<Level>& levels, const ImageSizes& sizes, const Targets* targets,
                                             LossMap* losses) = 0;
  // multiply-accumulates of the per-level convolutions on a map of h x w
  virtual double flopsPerLevel(int64_t h, int64_t w) const = 0;
  // test-time forward of one image as ONNX nodes: proposals [N,4]
  virtual OnnxValue exportOnnx(OnnxGraph& g, const std::vector<OnnxLevel>& levels, const OnnxImageSize& size) = 0;
};

struct RpnOptions {
  explicit RpnOptions(int channels) : channels_(channels) {}
  TORCH_ARG(int, channels);
  TORCH_ARG(double, anchorScale) = 8;  // anchor side = stride x scale
  TORCH_ARG(std::vector<double>, ratios) = std::vector<double>{0.5, 1.0, 2.0};
  TORCH_ARG(AnchorSampling, sampling);
  TORCH_ARG(ProposalOptions, proposals);
};

// mmdetection's RPNHead: shared 3x3 conv + ReLU, 1x1 objectness (one per anchor, sigmoid) and
// 1x1 deltas (stds 1); BCE + L1 over the sampled anchors, divided by the number sampled.
struct RpnImpl : ProposalGeneratorImpl {
  explicit RpnImpl(const RpnOptions& o);
  std::vector<torch::Tensor> forward(const std::vector<Level>& levels, const ImageSizes& sizes, const Targets* targets,
                                     LossMap* losses) override;
  double flopsPerLevel(int64_t h, int64_t w) const override;
  OnnxValue exportOnnx(OnnxGraph& g, const std::vector<OnnxLevel>& levels, const OnnxImageSize& size) override;
  RpnOptions options;
  Conv conv{nullptr}, cls{nullptr}, reg{nullptr};
};
TORCH_MODULE(Rpn);

}  // namespace smnas
