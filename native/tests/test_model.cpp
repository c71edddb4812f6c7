// Backbone output shapes and parameter bookkeeping for each block kind and norm.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model.hpp"

using namespace smnas;

namespace {
BackboneLayout makeBackbone(const std::string& kind, int base, const std::vector<std::string>& code) {
  BackboneLayout L;
  L.block = kind;
  L.stemChannels = base;
  const int exp = kind == "basicblock" ? 1 : 4;
  int planes = base, in = base;
  for (int s = 0; s < 4; ++s) {
    for (size_t i = 0; i < code[s].size(); ++i) {
      if (code[s][i] == '2') planes *= 2;
      int out = planes * exp, stride = (s > 0 && i == 0) ? 2 : 1;
      int mid = kind == "Xbottleneck" ? planes * 4 / 64 * 32 : planes;
      L.stages[s].push_back({in, out, mid, stride, kind == "Xbottleneck" ? 32 : 1, stride != 1 || in != out});
      in = out;
    }
    L.stageChannels[s] = in;
  }
  return L;
}
}  // namespace

TEST(Model, BackboneOutputShapes) {
  for (std::string kind : {"basicblock", "bottleneck", "Xbottleneck"}) {
    for (std::string norm : {"bn", "gn", "gn+ws"}) {
      auto L = makeBackbone(kind, kind == "Xbottleneck" ? 64 : 16, {"1", "21", "211", "2"});
      Backbone bb(L, norm, 4);
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

TEST(Model, GroupNormGroupsDivideChannels) {
  EXPECT_EQ(groupNormGroups(64), 32);
  EXPECT_EQ(groupNormGroups(24), 24);
  EXPECT_EQ(groupNormGroups(48), 24);
  EXPECT_EQ(groupNormGroups(36), 18);
  EXPECT_EQ(groupNormGroups(7), 7);
}

TEST(Model, Resnet18BackboneHasTorchvisionParamCount) {
  // torchvision resnet18 without its fc: 11,689,512 - (512*1000 + 1000) = 11,176,512
  auto L = makeBackbone("basicblock", 64, {"11", "21", "21", "21"});
  Backbone bb(L, "bn", 4);
  int64_t n = 0;
  for (auto& p : bb->parameters()) n += p.numel();
  EXPECT_EQ(n, 11176512);
}
