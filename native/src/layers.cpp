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
