// Layers and types shared by the detector's modules (backbone.hpp, rpn.hpp, ga_rpn.hpp,
// roi_heads.hpp, retina.hpp; composed in model.hpp): the convolution with optional Weight
// Standardization, the norm layer, feature levels, ground-truth targets and detections.
#pragma once
#include <torch/torch.h>

#include <array>
#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "job.hpp"
#include "onnx_ops.hpp"

namespace smnas {

// Weight initialisation of a conv: Kaiming normal (fan out, ReLU gain), Xavier uniform, N(0, std),
// or kaiming_uniform(a=1) (torchvision's FPN).
enum class Init { KaimingOut, Xavier, Normal, KaimingUniformA1 };

// Conv2d with optional weight standardisation; bias only when asked (convs before a norm have none).
struct ConvOptions {
  ConvOptions(int in, int out, int kernel) : in_(in), out_(out), kernel_(kernel), pad_(kernel / 2) {}
  TORCH_ARG(int, in);
  TORCH_ARG(int, out);
  TORCH_ARG(int, kernel);
  TORCH_ARG(int, pad);  // default kernel / 2 ("same" at stride 1)
  TORCH_ARG(int, stride) = 1;
  TORCH_ARG(int, groups) = 1;
  TORCH_ARG(bool, bias) = false;
  TORCH_ARG(bool, ws) = false;  // Weight Standardization (GN+WS)
  TORCH_ARG(Init, init) = Init::KaimingOut;
  TORCH_ARG(double, std) = 0.01;  // Init::Normal
};

struct ConvImpl : torch::nn::Module {
  explicit ConvImpl(const ConvOptions& o);
  torch::Tensor forward(const torch::Tensor& x);
  // the same convolution as an ONNX Conv node (a WS weight exported standardized)
  OnnxValue exportOnnx(OnnxGraph& g, const OnnxValue& x);
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

// BatchNorm2d or GroupNorm (groups: the largest divisor of C not above 32); GN for gn and gn+ws.
struct NormImpl : torch::nn::Module {
  NormImpl(NormKind kind, int channels);
  torch::Tensor forward(const torch::Tensor& x);
  // inference form: BatchNormalization with the running statistics, or GroupNorm (onnxGroupNorm)
  OnnxValue exportOnnx(OnnxGraph& g, const OnnxValue& x);
  torch::nn::BatchNorm2d bn{nullptr};
  torch::nn::GroupNorm gn{nullptr};
};
TORCH_MODULE(Norm);
int groupNormGroups(int channels);
// GroupNorm as ONNX ops (Reshape to [N,G,-1], InstanceNormalization, Reshape back, per-channel
// affine when weight/bias are defined): GroupNormalization needs opset 21, which IR 8 lacks.
OnnxValue onnxGroupNorm(OnnxGraph& g, const OnnxValue& x, int channels, int groups, double eps, const torch::Tensor& weight,
                        const torch::Tensor& bias);
// Relu / Clip(0, 6)
OnnxValue onnxRelu(OnnxGraph& g, const OnnxValue& x);
OnnxValue onnxRelu6(OnnxGraph& g, const OnnxValue& x);

// One feature level fed to the RPN/RoI/retina heads.
struct Level {
  int p;       // paper level number (1..6; 3 for neck 'none')
  int stride;  // 4 * 2^(p-1)
  torch::Tensor x;
};

// Test-time ending of the heads in the exported graph (finishDetections).
struct OnnxDetections {
  OnnxValue boxes, scores, labels;  // [N,4] float, [N] float, [N] int64
};
OnnxDetections onnxFinishDetections(OnnxGraph& g, const OnnxValue& boxes, const OnnxValue& scores, const OnnxValue& labels, double nmsIou,
                                    int maxPerImage);

// Ground truth of a padded batch, per image: boxes [G,4] (x1,y1,x2,y2 in the network input
// frame) and labels [G] (0..K-1).
struct Targets {
  std::vector<torch::Tensor> boxes, labels;
};
// content size (width, height) of each image of the padded batch
using ImageSizes = std::vector<std::pair<int, int>>;
using LossMap = std::map<std::string, torch::Tensor>;

struct Detections {
  torch::Tensor boxes, scores, labels;  // in the network input frame
};

// Delta coder target stds (means 0), mmdetection's defaults for each head.
constexpr std::array<double, 4> kUnitStds{1, 1, 1, 1};
constexpr std::array<double, 4> kRoiStds{0.1, 0.1, 0.2, 0.2};

// Sum over elements of mmdetection's sigmoid focal loss (alpha-balanced, gamma-modulated BCE),
// optionally weighted per element.
torch::Tensor sigmoidFocalLoss(const torch::Tensor& logits, const torch::Tensor& targets, double alpha = 0.25, double gamma = 2.0,
                               const torch::Tensor& weights = {});

// Test-time ending shared by the heads: per-class NMS, at most maxPerImage detections.
Detections finishDetections(const torch::Tensor& boxes, const torch::Tensor& scores, const torch::Tensor& labels, double nmsIou,
                            int maxPerImage);

// SMNAS_PROFILE=1: wall time per training phase, summed and printed on stderr at exit (coarse,
// for tuning only).
struct ProfilePhase {
  explicit ProfilePhase(const char* name) : name_(name) {}
  ~ProfilePhase();
  ProfilePhase(const ProfilePhase&) = delete;
  ProfilePhase& operator=(const ProfilePhase&) = delete;

 private:
  const char* name_;
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

}  // namespace smnas
