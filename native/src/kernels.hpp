// Hand-written forward and backward passes for the two operations whose autograd graphs of plain
// tensor ops dominated CPU training time (SMNAS_TRACE profile of the quality job, 10
// iterations: Weight Standardization's backward ~40 % of the step, RoIAlign's grid_sample +
// index_add ~20 %). Both are torch::autograd::Functions, so callers use them like any other op.
#pragma once
#include <torch/torch.h>

namespace smnas {

// RoIAlign on a contiguous fp32 CPU feature map: same semantics as ops.hpp's roiAlign (aligned,
// torchvision's bilinear sampling and clamping, fixed or adaptive samples per bin). Forward is
// parallel over RoIs, backward over channels (each thread owns its channels' gradient planes, so
// no atomics are needed).
torch::Tensor roiAlignCpu(const torch::Tensor& feature, const torch::Tensor& rois, int outSize, double spatialScale,
                          int samplingRatio);

// Weight Standardization of a conv weight [O, ...] per output channel: (w - mean) / (std + eps),
// unbiased std. The backward is the closed form
//   dL/dw = (g - mean(g)) / s - x * sum(g * x) / (s^2 * (n - 1) * std),   x = w - mean, s = std + eps
// instead of autograd's ~20 broadcast ops: row loops for fp32 CPU weights, tensor ops otherwise.
torch::Tensor weightStandardize(const torch::Tensor& weight, double eps);

}  // namespace smnas
