// The detector built from a DetectorLayout (the job's `layout`): ResNet-style backbone
// (basicblock / bottleneck / Xbottleneck; BN, GN or GN+WS), FPN or a single stride-16 map, RPN,
// and a 2fc, cascade or retina head. Top-level submodules are named backbone, neck, rpn and head
// so `describe` can count parameters per module (native/README.md lists what each contains).
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "job.hpp"

namespace smnas {

enum class Init { KaimingOut, Xavier, Normal001 };

// Conv2d with optional weight standardisation; bias only when asked (convs before a norm have none).
struct ConvImpl : torch::nn::Module {
  ConvImpl(int in, int out, int k, int stride, int pad, int groups, bool bias, bool ws, Init init);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
  int stride, pad, groups;
  bool ws;

 private:
  // Weight Standardization of a frozen weight, reused by inference forwards (eval mode, no grad)
  // until the weight changes (its version counter) or moves; not part of the state dict.
  torch::Tensor standardized();
  torch::Tensor wsCache;
  int64_t wsCacheVersion = -1;
};
TORCH_MODULE(Conv);

// BatchNorm2d or GroupNorm (groups: the largest divisor of C not above 32).
struct NormImpl : torch::nn::Module {
  NormImpl(const std::string& kind, int channels);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::BatchNorm2d bn{nullptr};
  torch::nn::GroupNorm gn{nullptr};
};
TORCH_MODULE(Norm);
int groupNormGroups(int channels);

// One backbone block. Residual kinds: basicblock (3x3, 3x3), bottleneck / Xbottleneck (1x1, 3x3
// with stride and groups, 1x1; torchvision's v1.5), ReLU after the sum. mbblock: MobileNetV2's
// inverted residual: 1x1 expansion (absent when midChannels == inChannels, the stem's t=1 block),
// depthwise 3x3 with stride, linear 1x1 projection; ReLU6; identity shortcut only at stride 1 with
// equal widths. Module names conv1..3 / n1..3 / down / dn (tools: weights.cpp maps torchvision's).
struct BlockImpl : torch::nn::Module {
  BlockImpl(const BlockLayout& b, const std::string& kind, const std::string& norm);
  torch::Tensor forward(const torch::Tensor& x);
  enum class Kind { Basic, Bottleneck, Inverted } kind;
  bool identity = false;  // mbblock: the shortcut exists
  Conv conv1{nullptr}, conv2{nullptr}, conv3{nullptr}, down{nullptr};
  Norm n1{nullptr}, n2{nullptr}, n3{nullptr}, dn{nullptr};
};
TORCH_MODULE(Block);

struct BackboneImpl : torch::nn::Module {
  // numStages: 4, or 3 for neck 'none' (stage 4 is not built)
  BackboneImpl(const BackboneLayout& L, const std::string& norm, int numStages);
  std::vector<torch::Tensor> forward(const torch::Tensor& x);
  bool inverted;  // MobileNetV2 stem (3x3/2 conv, norm, ReLU6, then stemBlock) instead of ResNet's
  Conv stem{nullptr};
  Norm stemNorm{nullptr};
  Block stemBlock{nullptr};  // mbblock: the expansion-1 inverted residual 32 -> 16
  std::vector<torch::nn::Sequential> stages;
};
TORCH_MODULE(Backbone);

// FPN over levels from..to (paper numbering P1..P6, strides 4..128).
struct FpnImpl : torch::nn::Module {
  FpnImpl(const std::array<int, 4>& stageChannels, int from, int to, int channels);
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& c);
  int from, to;
  torch::nn::ModuleList lateral, output, extra;
};
TORCH_MODULE(Fpn);

struct RpnHeadImpl : torch::nn::Module {
  RpnHeadImpl(int channels, int anchors);
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);  // cls [B,A,H,W], reg [B,4A,H,W]
  Conv conv{nullptr}, cls{nullptr}, reg{nullptr};
};
TORCH_MODULE(RpnHead);

// Shared2FC box head; classAgnostic regression for cascade stages.
struct BoxHeadImpl : torch::nn::Module {
  BoxHeadImpl(int inChannels, int roiSize, int fcWidth, int numClasses, bool classAgnostic);
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& rois);  // cls [N,K+1], reg [N,4K or 4]
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, cls{nullptr}, reg{nullptr};
};
TORCH_MODULE(BoxHead);

struct RetinaHeadImpl : torch::nn::Module {
  RetinaHeadImpl(int inChannels, int convChannels, int stacked, int anchors, int numClasses);
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);  // cls [B,A*K,H,W], reg [B,4A,H,W]
  torch::nn::ModuleList clsConvs, regConvs;
  Conv cls{nullptr}, reg{nullptr};
};
TORCH_MODULE(RetinaHead);

// One feature level fed to the RPN/RoI/retina heads.
struct Level {
  int p;       // paper level number (1..6; 3 for neck 'none')
  int stride;  // 4 * 2^(p-1)
  torch::Tensor x;
};

struct Detections {
  torch::Tensor boxes, scores, labels;  // in the network input frame
};

struct DetectorImpl : torch::nn::Module {
  DetectorImpl(const Layout& L, const Recipe& r);
  std::vector<Level> features(const torch::Tensor& images);
  // training losses for a padded batch; gt boxes [G,4] and labels [G] per image; sizes (w,h) of the content
  std::map<std::string, torch::Tensor> losses(const torch::Tensor& images, const std::vector<torch::Tensor>& gtBoxes,
                                              const std::vector<torch::Tensor>& gtLabels, const std::vector<std::pair<int, int>>& sizes);
  std::vector<Detections> detect(const torch::Tensor& images, const std::vector<std::pair<int, int>>& sizes);

  Layout layout;
  Recipe recipe;
  Backbone backbone{nullptr};
  Fpn neck{nullptr};
  RpnHead rpn{nullptr};
  torch::nn::ModuleList head{nullptr};  // box heads (1 for 2fc, n for cascade)
  RetinaHead retina{nullptr};

 private:
  std::vector<torch::Tensor> proposals(const std::vector<Level>& levels, const torch::Tensor& cls, const torch::Tensor& reg,
                                       const torch::Tensor& anchors, const std::vector<int64_t>& levelSizes,
                                       const std::vector<std::pair<int, int>>& sizes, bool train);
  torch::Tensor extractRois(const std::vector<Level>& levels, const torch::Tensor& rois);
  torch::Tensor anchorsFor(const std::vector<Level>& levels, bool retinaAnchors, std::vector<int64_t>& levelSizes);
};
TORCH_MODULE(Detector);

// describe: parameters counted on the built modules; FLOPs (multiply-accumulates) of every conv
// and FC for one image at the layout's input size, the RoI head counted for `rois` RoIs.
struct ModuleCost {
  double params = 0, flops = 0;
};
std::map<std::string, ModuleCost> describeModel(Detector& model, const Layout& L, int rois);

// Classification model for backbone pretraining: backbone + global average pool + linear. For
// mbblock backbones, torchvision's MobileNetV2 head first: 1x1 conv to 1280 (`last`), norm, ReLU6
// (search/cost.ts MOBILENET_LAST_CHANNELS), and dropout 0.2 before the linear layer.
struct ClassifierImpl : torch::nn::Module {
  ClassifierImpl(const Layout& L, const std::string& norm, int numClasses);
  torch::Tensor forward(const torch::Tensor& x);
  Backbone backbone{nullptr};
  Conv last{nullptr};
  Norm lastNorm{nullptr};
  torch::nn::Linear fc{nullptr};
};
// torchvision MobileNetV2's last conv width (search/cost.ts MOBILENET_LAST_CHANNELS)
constexpr int kMobileNetLastChannels = 1280;
TORCH_MODULE(Classifier);

}  // namespace smnas
