#include "layers.hpp"

#include "sync_bn.hpp"

#include <cstdlib>
#include <iostream>

#include "ops.hpp"

namespace smnas {
namespace F = torch::nn::functional;

ConvImpl::ConvImpl(const ConvOptions& o) : stride(o.stride()), pad(o.pad()), groups(o.groups()), ws(o.ws()) {
  weight = register_parameter("weight", torch::empty({o.out(), o.in() / o.groups(), o.kernel(), o.kernel()}));
  switch (o.init()) {
    case Init::KaimingOut:
      torch::nn::init::kaiming_normal_(weight, 0.0, torch::kFanOut, torch::kReLU);
      break;
    case Init::Xavier:
      torch::nn::init::xavier_uniform_(weight);
      break;
    case Init::Normal:
      torch::nn::init::normal_(weight, 0.0, o.std());
      break;
    case Init::KaimingUniformA1:
      torch::nn::init::kaiming_uniform_(weight, /*a=*/1.0);
      break;
  }
  if (o.bias()) bias = register_parameter("bias", torch::zeros({o.out()}));
}

torch::Tensor ConvImpl::standardized() {
  if (is_training() || torch::GradMode::is_enabled()) return standardizeWeight(weight);
  if (!wsCache.defined() || wsCacheVersion != static_cast<int64_t>(weight._version()) || wsCache.device() != weight.device()) {
    wsCache = standardizeWeight(weight);
    wsCacheVersion = static_cast<int64_t>(weight._version());
  }
  return wsCache;
}

torch::Tensor ConvImpl::forward(const torch::Tensor& x) {
  auto w = ws ? standardized() : weight;
  return F::conv2d(x, w, F::Conv2dFuncOptions().bias(bias).stride(stride).padding(pad).groups(groups));
}

OnnxValue ConvImpl::exportOnnx(OnnxGraph& g, const OnnxValue& x) {
  torch::NoGradGuard ng;
  const bool wasTraining = is_training();
  eval();  // standardized(): the eval-time weight
  auto w = ws ? standardized() : weight;
  train(wasTraining);
  std::vector<OnnxValue> in{x, g.initializer("conv_w", w.to(torch::kFloat))};
  if (bias.defined()) in.push_back(g.initializer("conv_b", bias.to(torch::kFloat)));
  const int64_t k = weight.size(2);
  return g.op("Conv", in,
              {{"kernel_shape", std::vector<int64_t>{k, k}},
               {"strides", std::vector<int64_t>{stride, stride}},
               {"pads", std::vector<int64_t>{pad, pad, pad, pad}},
               {"group", int64_t{groups}}});
}

OnnxValue onnxRelu(OnnxGraph& g, const OnnxValue& x) { return g.op("Relu", {x}); }
OnnxValue onnxRelu6(OnnxGraph& g, const OnnxValue& x) { return onnxClip(g, x, 0.f, 6.f); }

OnnxValue onnxGroupNorm(OnnxGraph& g, const OnnxValue& x, int channels, int groups, double eps, const torch::Tensor& weight,
                        const torch::Tensor& bias) {
  auto grouped = g.op("Reshape", {x, g.constInts({0, groups, -1}, {3})});
  auto normed =
      g.op("InstanceNormalization",
           {grouped, g.constFloats(std::vector<float>(groups, 1.f), {groups}), g.constFloats(std::vector<float>(groups, 0.f), {groups})},
           {{"epsilon", static_cast<float>(eps)}});
  auto y = g.op("Reshape", {normed, g.op("Shape", {x})});
  if (weight.defined()) y = g.op("Mul", {y, g.initializer("gn_w", weight.detach().to(torch::kFloat).view({channels, 1, 1}))});
  if (bias.defined()) y = g.op("Add", {y, g.initializer("gn_b", bias.detach().to(torch::kFloat).view({channels, 1, 1}))});
  return y;
}

OnnxValue NormImpl::exportOnnx(OnnxGraph& g, const OnnxValue& x) {
  if (bn) {
    return g.op("BatchNormalization",
                {x, g.initializer("bn_w", bn->weight), g.initializer("bn_b", bn->bias), g.initializer("bn_mean", bn->running_mean),
                 g.initializer("bn_var", bn->running_var)},
                {{"epsilon", static_cast<float>(bn->options.eps())}});
  }
  const auto& o = gn->options;
  return onnxGroupNorm(g, x, static_cast<int>(o.num_channels()), static_cast<int>(o.num_groups()), o.eps(), gn->weight, gn->bias);
}

int groupNormGroups(int channels) {
  for (int g = std::min(32, channels); g > 1; --g)
    if (channels % g == 0) return g;
  return 1;
}

NormImpl::NormImpl(NormKind kind, int channels) {
  if (kind == NormKind::BN)
    bn = register_module("bn", torch::nn::BatchNorm2d(channels));
  else
    gn = register_module("gn", torch::nn::GroupNorm(torch::nn::GroupNormOptions(groupNormGroups(channels), channels)));
}

torch::Tensor NormImpl::forward(const torch::Tensor& x) {
  if (bn) return bn->is_training() && syncBatchNormActive() ? syncBatchNorm(x, bn) : bn->forward(x);
  // Under autocast the input is bf16/fp16: GroupNorm runs in fp32 (CUDA autocast's fp32 list does
  // the same; libtorch 1.13's CPU kernel rejects a bf16 input with fp32 affine parameters).
  return gn->forward(x.scalar_type() == gn->weight.scalar_type() ? x : x.to(gn->weight.scalar_type()));
}

torch::Tensor sigmoidFocalLoss(const torch::Tensor& logits, const torch::Tensor& targets, double alpha, double gamma,
                               const torch::Tensor& weights) {
  auto p = torch::sigmoid(logits);
  auto ce = F::binary_cross_entropy_with_logits(logits, targets, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  auto pt = p * targets + (1 - p) * (1 - targets);
  auto at = alpha * targets + (1 - alpha) * (1 - targets);
  auto l = at * ce * (1 - pt).pow(gamma);
  return weights.defined() ? (l * weights).sum() : l.sum();
}

Detections finishDetections(const torch::Tensor& boxes, const torch::Tensor& scores, const torch::Tensor& labels, double nmsIou,
                            int maxPerImage) {
  auto keep = batchedNms(boxes, scores, labels, nmsIou, maxPerImage);
  return {boxes.index_select(0, keep), scores.index_select(0, keep), labels.index_select(0, keep)};
}

OnnxDetections onnxFinishDetections(OnnxGraph& g, const OnnxValue& boxes, const OnnxValue& scores, const OnnxValue& labels, double nmsIou,
                                    int maxPerImage) {
  auto groups = g.op("Cast", {labels}, {{"to", int64_t{static_cast<int>(OnnxType::Float)}}});
  auto keep = onnxBatchedNms(g, boxes, scores, groups, nmsIou, maxPerImage);
  auto pick = [&](const OnnxValue& v) { return g.op("Gather", {v, keep}, {{"axis", int64_t{0}}}); };
  return {pick(boxes), pick(scores), pick(labels)};
}

namespace {
struct PhaseTotals {
  std::map<std::string, double> ms;
  ~PhaseTotals() {
    if (!std::getenv("SMNAS_PROFILE")) return;
    for (auto& [k, v] : ms) std::cerr << "[profile] " << k << " " << v << " ms" << std::endl;
  }
} gPhaseTotals;
}  // namespace

ProfilePhase::~ProfilePhase() {
  gPhaseTotals.ms[name_] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0_).count();
}

}  // namespace smnas
