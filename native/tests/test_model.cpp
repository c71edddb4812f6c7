// Backbone output shapes and parameter bookkeeping for each block kind and norm; autocast (bf16) and fp16 loss scaling.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "autocast.hpp"
#include "fixtures.hpp"
#include "model.hpp"
#include "ops.hpp"
#include "runtime.hpp"

using namespace smnas;
namespace F = torch::nn::functional;

using fixtures::residualBackbone;
using fixtures::smallLayout;
using fixtures::smallRecipe;

TEST(Model, BackboneOutputShapes) {
  for (std::string kind : {"basicblock", "bottleneck", "Xbottleneck"}) {
    for (std::string norm : {"bn", "gn", "gn+ws"}) {
      auto L = residualBackbone(kind, kind == "Xbottleneck" ? 64 : 16, {"1", "21", "211", "2"});
      Backbone bb(L, normKindNamed(norm), 4);
      auto out = bb(torch::randn({2, 3, 64, 96}));
      ASSERT_EQ(out.size(), 4u);
      for (int s = 0; s < 4; ++s) {
        EXPECT_EQ(out[s].size(1), L.stageChannels[s]) << kind << " " << norm;
        EXPECT_EQ(out[s].size(2), 64 / (4 << s));
        EXPECT_EQ(out[s].size(3), 96 / (4 << s));
      }
    }
  }
}

// Inference reuses the standardised weight, but never a stale one: an in-place weight update (a
// loaded checkpoint, an optimiser step) and training mode both recompute it.
TEST(Model, WeightStandardisedConvCachesOnlyForInference) {
  torch::manual_seed(9);
  Conv conv(ConvOptions(3, 4, 3).ws(true));
  auto x = torch::randn({1, 3, 8, 8});
  auto reference = [&] { return F::conv2d(x, standardizeWeight(conv->weight), F::Conv2dFuncOptions().padding(1)); };
  conv->eval();
  torch::NoGradGuard ng;
  auto first = conv(x);
  EXPECT_LT((first - reference()).abs().max().item<double>(), 1e-5);
  conv->weight.mul_(-2).add_(0.5);
  EXPECT_LT((conv(x) - reference()).abs().max().item<double>(), 1e-5);
  EXPECT_GT((conv(x) - first).abs().max().item<double>(), 1e-2);
  conv->train();
  EXPECT_LT((conv(x) - reference()).abs().max().item<double>(), 1e-5);
}

TEST(Model, GroupNormGroupsDivideChannels) {
  EXPECT_EQ(groupNormGroups(64), 32);
  EXPECT_EQ(groupNormGroups(24), 24);
  EXPECT_EQ(groupNormGroups(48), 24);
  EXPECT_EQ(groupNormGroups(36), 18);
  EXPECT_EQ(groupNormGroups(7), 7);
}

TEST(Model, Resnet18BackboneHasTorchvisionParamCount) {
  // torchvision resnet18 without its fc: 11,689,512 - (512*1000 + 1000) = 11,176,512
  auto L = residualBackbone("basicblock", 64, {"11", "21", "21", "21"});
  Backbone bb(L, NormKind::BN, 4);
  int64_t n = 0;
  for (auto& p : bb->parameters()) n += p.numel();
  EXPECT_EQ(n, 11176512);
}

TEST(Model, AutocastGuardEnablesBf16OnCpuAndRestores) {
  auto x = torch::randn({1, 4, 8, 8});
  auto w = torch::randn({4, 4, 3, 3});
  EXPECT_EQ(torch::conv2d(x, w).scalar_type(), torch::kFloat);
  {
    AutocastGuard outer(torch::kCPU, torch::kBFloat16, true);
    EXPECT_EQ(torch::conv2d(x, w).scalar_type(), torch::kBFloat16);
    {
      AutocastGuard off(torch::kCPU, torch::kBFloat16, false);  // disabled guard: no change
      EXPECT_EQ(torch::conv2d(x, w).scalar_type(), torch::kBFloat16);
    }
    EXPECT_EQ(torch::conv2d(x, w).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(torch::conv2d(x, w).scalar_type(), torch::kFloat);  // state restored on exit
  at::ScalarType t = torch::kFloat;
  EXPECT_TRUE(autocastDtypeFor("bf16", t));
  EXPECT_EQ(t, torch::kBFloat16);
  EXPECT_TRUE(autocastDtypeFor("fp16", t));
  EXPECT_EQ(t, torch::kHalf);
  EXPECT_FALSE(autocastDtypeFor("off", t));
}

// bf16 autocast on the CPU (recipe.mixedPrecision 'bf16'): the detector trains, every loss term is
// an fp32 finite scalar, and a few SGD steps on one fixed batch lower the total loss.
TEST(Model, Bf16AutocastTrainingStaysFiniteAndLearns) {
  for (std::string head : {"2fc", "retina", "2fc-ga"}) {
    torch::manual_seed(3);
    Detector det(smallLayout(head), smallRecipe());
    det->train();
    torch::optim::SGD opt(det->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
    auto images = torch::randn({2, 3, 64, 64});
    std::vector<torch::Tensor> boxes{torch::tensor({{8.f, 8.f, 40.f, 36.f}}),
                                     torch::tensor({{20.f, 10.f, 60.f, 50.f}, {2.f, 30.f, 22.f, 62.f}})};
    std::vector<torch::Tensor> labels{torch::tensor({1L}), torch::tensor({0L, 2L})};
    std::vector<std::pair<int, int>> sizes{{64, 64}, {64, 64}};
    double first = 0, last = 0;
    for (int it = 0; it < 12; ++it) {
      torch::manual_seed(100 + it);
      torch::Tensor loss = torch::zeros({});
      {
        AutocastGuard amp(torch::kCPU, torch::kBFloat16, true);
        auto feats = det->features(images);
        EXPECT_EQ(feats[0].x.scalar_type(), torch::kBFloat16) << "autocast is not active";
        for (auto& [name, v] : det->losses(images, boxes, labels, sizes)) {
          EXPECT_EQ(v.scalar_type(), torch::kFloat) << head << " " << name;
          ASSERT_TRUE(torch::isfinite(v).all().item<bool>()) << head << " " << name << " at iteration " << it;
          loss = loss + v;
        }
      }
      opt.zero_grad();
      loss.backward();
      for (auto& p : det->parameters()) {
        if (p.grad().defined()) {
          ASSERT_TRUE(torch::isfinite(p.grad()).all().item<bool>()) << head;
        }
      }
      opt.step();
      if (it == 0) first = loss.item<double>();
      last = loss.item<double>();
    }
    EXPECT_LT(last, first) << head << ": loss did not decrease under bf16 autocast";
  }
}

// fp16 dynamic loss scaling (recipe.mixedPrecision 'fp16', CUDA only; the arithmetic is checked on
// the CPU): gradients are unscaled, an inf gradient skips the step and halves the scale, 2000
// finite steps double it; disabled, it changes nothing.
TEST(Runtime, LossScalerUnscalesSkipsAndAdapts) {
  auto p = torch::ones({3}, torch::requires_grad());
  LossScaler s(true);
  ASSERT_EQ(s.factor, 65536.0);
  (s.scale((p * torch::tensor({1.f, 2.f, 3.f})).sum())).backward();
  EXPECT_TRUE(s.unscale({p}));
  EXPECT_TRUE(torch::allclose(p.grad(), torch::tensor({1.f, 2.f, 3.f})));
  s.update(true);
  EXPECT_EQ(s.factor, 65536.0);
  p.mutable_grad().fill_(std::numeric_limits<float>::infinity());
  EXPECT_FALSE(s.unscale({p}));
  s.update(false);
  EXPECT_EQ(s.factor, 32768.0);
  EXPECT_EQ(s.skippedSteps, 1);
  for (int i = 0; i < 2000; ++i) s.update(true);
  EXPECT_EQ(s.factor, 65536.0);
  LossScaler off(false);
  auto l = torch::tensor(2.f);
  EXPECT_TRUE(off.scale(l).equal(l));
  p.mutable_grad().fill_(std::nanf(""));
  EXPECT_TRUE(off.unscale({p}));  // disabled: no check, no change
}

// LossScaler::step, what both training loops call: an inf gradient leaves the weights and halves
// the scale; finite gradients are unscaled and applied.
TEST(Runtime, LossScalerStepSkipsNonFiniteAndAppliesFinite) {
  auto p = torch::ones({2}, torch::requires_grad());
  torch::optim::SGD opt({p}, torch::optim::SGDOptions(0.5));
  LossScaler s(true);
  p.mutable_grad() = torch::full({2}, std::numeric_limits<float>::infinity());
  EXPECT_FALSE(s.step(opt, {p}, 0));
  EXPECT_TRUE(torch::equal(p.detach(), torch::ones({2})));
  EXPECT_EQ(s.factor, 32768.0);
  p.mutable_grad().fill_(s.factor);  // the gradient of scale(p.sum())
  EXPECT_TRUE(s.step(opt, {p}, 0));
  EXPECT_TRUE(torch::allclose(p.detach(), torch::full({2}, 0.5f)));  // 1 - 0.5 * (factor / factor)
}

// The warm-up lasts max(warmupIterations, round(warmupFraction * total)): a long run warms up for
// its fraction, a short one keeps the fixed length.
TEST(Runtime, WarmupFractionStretchesTheWarmupOfLongRuns) {
  Recipe r;
  r.optimizer.lr = 0.02;
  r.schedule.kind = "cosine";
  r.schedule.minLr = 1e-4;
  r.schedule.warmupIterations = 12;
  r.schedule.warmupRatio = 0.001;
  r.schedule.warmupFraction = 0.1;
  // 600 iterations: 60 warm-up iterations; halfway through it, about half the cosine lr
  const double full30 = 1e-4 + 0.5 * (0.02 - 1e-4) * (1 + std::cos(M_PI * 30.0 / 600.0));
  EXPECT_NEAR(learningRate(r, 30, 600, 100), full30 * (0.001 + 0.999 * 30.0 / 60.0), 1e-9);
  EXPECT_GT(learningRate(r, 60, 600, 100), learningRate(r, 59, 600, 100));
  EXPECT_NEAR(learningRate(r, 60, 600, 100), 1e-4 + 0.5 * (0.02 - 1e-4) * (1 + std::cos(M_PI * 60.0 / 600.0)), 1e-12);
  // 72 iterations: 0.1 * 72 rounds to 7 < 12, so the fixed 12 iterations apply
  const double full6 = 1e-4 + 0.5 * (0.02 - 1e-4) * (1 + std::cos(M_PI * 6.0 / 72.0));
  EXPECT_NEAR(learningRate(r, 6, 72, 12), full6 * (0.001 + 0.999 * 6.0 / 12.0), 1e-9);
  EXPECT_NEAR(learningRate(r, 12, 72, 12), 1e-4 + 0.5 * (0.02 - 1e-4) * (1 + std::cos(M_PI * 12.0 / 72.0)), 1e-12);
}

// The recipe's init scheme (job.hpp InitScheme): torchvision's FPN convs are kaiming_uniform(a=1),
// bound sqrt(3 / fan_in), against Xavier's sqrt(6 / (fan_in + fan_out)); its box head keeps
// Linear's default (weights within 1 / sqrt(fan_in), biases non-zero) where mmdetection's has zero
// biases and a N(0, 0.01) classifier.
TEST(Model, InitSchemesFollowTorchvisionAndMmdetection) {
  torch::manual_seed(3);
  const std::array<int, 4> stages{16, 32, 64, 256};
  auto lateralBound = [&](InitScheme s) {
    Fpn fpn(stages, /*from=*/4, /*to=*/4, /*channels=*/32, s);
    auto w = fpn->lateral[0]->as<ConvImpl>()->weight;  // 1x1, 256 -> 32
    return w.abs().max().item<double>();
  };
  const double kaiming = std::sqrt(3.0 / 256), xavier = std::sqrt(6.0 / (256 + 32));
  const double tv = lateralBound(InitScheme::Torchvision), mm = lateralBound(InitScheme::Mmdet);
  EXPECT_LE(tv, kaiming);
  EXPECT_GT(tv, 0.95 * kaiming);
  EXPECT_LE(mm, xavier);
  EXPECT_GT(mm, 0.95 * xavier);

  BoxHead tvHead(/*inChannels=*/8, /*roiSize=*/2, /*fcWidth=*/64, /*numClasses=*/4, /*classAgnostic=*/false, InitScheme::Torchvision);
  BoxHead mmHead(/*inChannels=*/8, /*roiSize=*/2, /*fcWidth=*/64, /*numClasses=*/4, /*classAgnostic=*/false, InitScheme::Mmdet);
  EXPECT_LE(tvHead->cls->weight.abs().max().item<double>(), 1.0 / 8);  // 1 / sqrt(64)
  EXPECT_GT(tvHead->cls->weight.abs().max().item<double>(), 0.08);
  EXPECT_GT(tvHead->fc1->bias.abs().max().item<double>(), 0.0);
  EXPECT_EQ(mmHead->fc1->bias.abs().max().item<double>(), 0.0);
  EXPECT_LT(mmHead->cls->weight.std().item<double>(), 0.02);
  EXPECT_LT(mmHead->reg->weight.abs().max().item<double>(), 0.01);
}

// The recipe's rpn.minPosIou reaches the RPN's sampling; absent, the RPN keeps mmdetection's 0.3.
TEST(Model, RpnMinPosIouComesFromTheRecipeOrStaysMmdetections) {
  Recipe r = smallRecipe();
  EXPECT_EQ(rpnOptionsFrom(smallLayout(), r).sampling().minPosIou(), 0.3);
  r.rpnMinPosIou = 0.0;
  EXPECT_EQ(rpnOptionsFrom(smallLayout(), r).sampling().minPosIou(), 0.0);
}
