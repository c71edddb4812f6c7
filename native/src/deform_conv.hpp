// Deformable convolution v1 (Dai et al. 2017; no modulation mask), the op of Guided Anchoring's
// feature adaption in mmdetection (mmcv's DeformConv2d, torchvision.ops.deform_conv2d without
// mask). libtorch has none, so it is written here twice: a hand-written CPU kernel (fp32/fp64) and a
// formulation of plain ATen ops (grid_sample + matmul, autograd backward) for other devices, which
// is also the kernel's reference in tests/test_deform.cpp.
#pragma once
#include <torch/arg.h>
#include <torch/torch.h>

namespace smnas {

struct DeformConv2dOptions {
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(int64_t, padding) = 0;
  TORCH_ARG(int64_t, dilation) = 1;
  TORCH_ARG(int64_t, groups) = 1;        // convolution groups: weight [Cout, Cin/groups, kh, kw]
  TORCH_ARG(int64_t, deformGroups) = 1;  // channel groups sharing one offset field: Cin/deformGroups channels each
};

// input [B,Cin,H,W], offset [B, 2*deformGroups*kh*kw, Ho, Wo], weight [Cout, Cin/groups, kh, kw],
// bias [Cout] or an undefined tensor (no bias); returns [B,Cout,Ho,Wo] with
// Ho = (H + 2*padding - dilation*(kh-1) - 1) / stride + 1 (Wo likewise).
//
// Offset layout (torchvision/mmcv): for deform group g and kernel position k = i*kw + j, channel
// 2*(g*kh*kw + k) is the y offset and channel 2*(g*kh*kw + k) + 1 the x offset. Output position
// (ho, wo) samples input channel c of deform group g = c / (Cin/deformGroups) at
//   y = ho*stride - padding + i*dilation + offset_y,   x = wo*stride - padding + j*dilation + offset_x
// bilinearly; corners outside the image read 0, and a sample with y <= -1, y >= H, x <= -1 or
// x >= W is 0 (so is its offset gradient, as in mmcv). Zero offsets give torch::conv2d.
//
// Dispatch: fp32/fp64 CPU tensors use the hand-written kernel (deform_conv.cpp), anything else the
// tensor-op formulation. The op never runs under autocast: fp16/bf16 inputs (autocast) are computed
// in fp32 and the output is fp32, like roiAlign in the detector. Gradients flow to all four tensors
// (first order only: the CPU kernel has no double backward).
torch::Tensor deformConv2d(const torch::Tensor& input, const torch::Tensor& offset, const torch::Tensor& weight, const torch::Tensor& bias,
                           const DeformConv2dOptions& o = {});

// The same with plain ATen ops on any device and floating dtype, computed in the tensors' own dtype
// (no casts, autocast not disabled): one grid_sample (zeros padding, align_corners=false, which is
// exactly the sampling rule above) per deform group builds the sampled columns of the whole batch,
// [B, Cin*kh*kw, Ho*Wo], and a grouped matmul with the weight gives the output; autograd provides
// the backward. Memory: the column tensor of the whole batch, plus grid_sample's saved grid.
torch::Tensor deformConv2dReference(const torch::Tensor& input, const torch::Tensor& offset, const torch::Tensor& weight,
                                    const torch::Tensor& bias, const DeformConv2dOptions& o = {});

}  // namespace smnas
