// The backbone (ResNet / ResNeXt residual stages or MobileNetV2 inverted residuals, built from the
// job's BackboneLayout) and the FPN neck. Module names are stable: checkpoints, the backbone
// weights of the pretrain stage and the torchvision name mapping rely on them.
#pragma once
#include "layers.hpp"

namespace smnas {

// One backbone block. Residual kinds: basicblock (3x3, 3x3), bottleneck / Xbottleneck (1x1, 3x3
// with stride and groups, 1x1; torchvision's v1.5), ReLU after the sum. mbblock: MobileNetV2's
// inverted residual: 1x1 expansion (absent when midChannels == inChannels, the stem's t=1 block),
// depthwise 3x3 with stride, linear 1x1 projection; ReLU6; identity shortcut only at stride 1 with
// equal widths. Module names conv1..3 / n1..3 / down / dn.
struct BlockImpl : torch::nn::Module {
  BlockImpl(const BlockLayout& b, BlockKind kind, NormKind norm);
  torch::Tensor forward(const torch::Tensor& x);
  OnnxValue exportOnnx(OnnxGraph& g, const OnnxValue& x);  // forward as ONNX nodes
  BlockKind kind;
  bool identity = false;  // mbblock: the shortcut exists
  Conv conv1{nullptr}, conv2{nullptr}, conv3{nullptr}, down{nullptr};
  Norm n1{nullptr}, n2{nullptr}, n3{nullptr}, dn{nullptr};
};
TORCH_MODULE(Block);

struct BackboneImpl : torch::nn::Module {
  // numStages: 4, or fewer when the detector uses fewer (search/layout-resolve.ts builtStages)
  BackboneImpl(const BackboneLayout& L, NormKind norm, int numStages);
  std::vector<torch::Tensor> forward(const torch::Tensor& x);
  std::vector<OnnxValue> exportOnnx(OnnxGraph& g, const OnnxValue& x);
  bool inverted;  // MobileNetV2 stem (3x3/2 conv, norm, ReLU6, then stemBlock) instead of ResNet's
  Conv stem{nullptr};
  Norm stemNorm{nullptr};
  Block stemBlock{nullptr};  // mbblock: the expansion-1 inverted residual 32 -> 16
  std::vector<torch::nn::Sequential> stages;
};
TORCH_MODULE(Backbone);

// FPN over levels from..to (paper numbering P1..P6, strides 4..128): a 1x1 lateral and a 3x3
// output conv per level up to P4, top-down nearest upsampling; P5 = 3x3/2 conv on P4's output,
// P6 = 3x3/2 conv on ReLU(P5).
struct FpnImpl : torch::nn::Module {
  FpnImpl(const std::array<int, 4>& stageChannels, int from, int to, int channels, InitScheme init);
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& c);
  std::vector<OnnxValue> exportOnnx(OnnxGraph& g, const std::vector<OnnxValue>& c);
  int from, to;
  torch::nn::ModuleList lateral, output, extra;
};
TORCH_MODULE(Fpn);

}  // namespace smnas
