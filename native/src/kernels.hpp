// Hand-written forward and backward passes for the two operations whose autograd graphs of plain
// tensor ops dominated CPU training time (libtorch's legacy profiler over 10 iterations of the
// issue's quality job, BENCHMARKS.md: Weight Standardization's backward ~40 % of the step,
// RoIAlign's grid_sample + index_add ~20 %). Both are torch::autograd::Functions, so callers use
// them like any other op. Weight Standardization's entry point is ops.hpp's standardizeWeight.
#pragma once
#include <torch/torch.h>

namespace smnas {

// RoIAlign on a contiguous fp32 CPU feature map: same semantics as ops.hpp's roiAlign (aligned,
// torchvision's bilinear sampling and clamping, fixed or adaptive samples per bin). Forward is
// parallel over RoIs, backward over channels (each thread owns its channels' gradient planes, so
// no atomics are needed).
torch::Tensor roiAlignCpu(const torch::Tensor& feature, const torch::Tensor& rois, int outSize, double spatialScale, int samplingRatio);

}  // namespace smnas
