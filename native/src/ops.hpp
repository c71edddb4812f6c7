// Detection primitives written with plain tensor ops (no torchvision): IoU, the delta box coder,
// anchors, NMS, RoIAlign (grid_sample recipe of shared/docs/trainer-guide.md 1.4), max-IoU
// assignment and random sampling. mmdetection v2 semantics unless stated.
#pragma once
#include <torch/torch.h>

#include <vector>

namespace smnas {

// Boxes are [N,4] x1,y1,x2,y2 floats; widths are x2-x1 (no +1).
torch::Tensor boxIou(const torch::Tensor& a, const torch::Tensor& b);  // [N,M]

// DeltaXYWH coder with target stds (means 0).
torch::Tensor encodeBoxes(const torch::Tensor& proposals, const torch::Tensor& gt, const std::array<double, 4>& stds);
// Decodes and clips to [0,maxW] x [0,maxH]; dw/dh are clamped to |log(16/1000)| before exp.
torch::Tensor decodeBoxes(const torch::Tensor& anchors, const torch::Tensor& deltas, const std::array<double, 4>& stds, double maxW,
                          double maxH);

// Anchors of one level, ordered (y, x, anchor) to match a [A*k, H, W] conv output permuted to
// (H, W, A): base size = stride * scale, w = base/sqrt(r), h = base*sqrt(r), centres k*stride.
torch::Tensor gridAnchors(int stride, int height, int width, const std::vector<double>& scales, const std::vector<double>& ratios,
                          const torch::Device& device);

// The anchor scales of one octave (RetinaNet, GA-RPN's approximate anchors):
// base * 2^(i / perOctave), i = 0..perOctave-1 (mmdetection's octave_base_scale, scales_per_octave).
std::vector<double> octaveScales(double octaveBaseScale, int scalesPerOctave);

// Greedy NMS; returns kept indices ordered by decreasing score. Suppresses IoU > threshold.
// maxKeep >= 0 stops after that many kept boxes (= full NMS truncated to maxKeep).
torch::Tensor nms(const torch::Tensor& boxes, const torch::Tensor& scores, double iouThreshold, int64_t maxKeep = -1);
// NMS within groups (class or level ids), via the coordinate-offset trick.
torch::Tensor batchedNms(const torch::Tensor& boxes, const torch::Tensor& scores, const torch::Tensor& groups, double iouThreshold,
                         int64_t maxKeep = -1);

// RoIAlign (aligned=true like mmcv/torchvision). samplingRatio > 0: that many samples per bin side;
// 0 (default, mmdet's setting): adaptive ceil(roi_h / outSize) x ceil(roi_w / outSize) per RoI.
// feature [B,C,H,W]; rois [K,5] (batch index, x1, y1, x2, y2) in image pixels.
// fp32 CPU features use the hand-written kernel (kernels.hpp); other devices and dtypes the
// grid_sample formulation below, which is also the kernel's reference in the tests.
torch::Tensor roiAlign(const torch::Tensor& feature, const torch::Tensor& rois, int outSize, double spatialScale, int samplingRatio = 0);
// The same with plain tensor ops: one grid_sample per image over every sample of every RoI, then an
// index_add into the bins (autograd provides the backward).
torch::Tensor roiAlignGridSample(const torch::Tensor& feature, const torch::Tensor& rois, int outSize, double spatialScale,
                                 int samplingRatio = 0);

// Max-IoU assignment: iou [N candidates, G gts] -> per candidate: gt index, kAssignedNegative (-1)
// or kAssignedIgnored (-2, between the thresholds).
// Positive if max IoU >= posThr; negative if < negThr; with lowQuality, each gt's best candidates
// (IoU == its max, >= minPosIou and > 0) are positive too.
constexpr int64_t kAssignedNegative = -1;
constexpr int64_t kAssignedIgnored = -2;
torch::Tensor assignMaxIou(const torch::Tensor& iou, double posThr, double negThr, double minPosIou, bool lowQuality);

// Random sampler: up to num*posFraction positives, the rest negatives (torch's global generator).
struct Sampled {
  torch::Tensor pos, neg;  // indices into the candidates
};
Sampled sampleRandom(const torch::Tensor& assigned, int num, double posFraction);

// Weight standardisation (mmcv conv_ws_2d): per output channel, (w - mean) / (std_unbiased + eps).
// Defined in kernels.cpp with the closed-form backward
//   dL/dw = (g - mean(g)) / s - x * sum(g * x) / (s^2 * (n - 1) * std),   x = w - mean, s = std + eps
// instead of autograd's ~20 broadcast ops: row loops for fp32 CPU weights, tensor ops otherwise.
torch::Tensor standardizeWeight(const torch::Tensor& w, double eps = 1e-5);

}  // namespace smnas
