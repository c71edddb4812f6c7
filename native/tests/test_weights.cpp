// Tensor files (safetensors, torch.save zip), the torchvision name mapping, export -> import round
// trips, and the pretrained-backbone training settings (frozen stages, BN eval mode).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "fixtures.hpp"
#include "model.hpp"
#include "weights.hpp"

using namespace smnas;

namespace {
// two blocks in stages 1-2, one in 3-4, doubling at each stage
BackboneLayout resnetLike(const std::string& kind, int base) { return fixtures::residualBackbone(kind, base, {"11", "21", "2", "2"}); }

BackboneLayout mobileLike() {  // a small mbblock backbone: stem 8, stem block to 8, then t=6 blocks
  BackboneLayout L;
  L.block = BlockKind::MBBlock;
  L.stemChannels = 8;
  int in = 8;
  const int outs[4] = {8, 16, 16, 24};
  for (int s = 0; s < 4; ++s) {
    for (int i = 0; i < 2; ++i) {
      const int mid = in * 6, stride = i == 0 && s > 0 ? 2 : 1;
      L.stages[s].push_back({in, outs[s], mid, stride, mid, false});
      in = outs[s];
    }
    L.stageChannels[s] = in;
  }
  return L;
}

Layout layoutFor(const BackboneLayout& b) {
  Layout L;
  L.width = L.height = 64;
  L.backbone = b;
  return L;
}

std::string tmpPath(const std::string& name) { return (std::filesystem::temp_directory_path() / ("smnas-weights-test-" + name)).string(); }
}  // namespace

TEST(Weights, SafetensorsRoundTripOfEveryDtype) {
  NamedTensors t = {{"f32", torch::randn({2, 3})},
                    {"f16", torch::randn({4}).to(torch::kHalf)},
                    {"bf16", torch::randn({3, 1}).to(torch::kBFloat16)},
                    {"f64", torch::randn({2}, torch::kDouble)},
                    {"i64", torch::arange(5, torch::kLong)},
                    {"scalar", torch::tensor(7, torch::kLong)}};
  const auto p = tmpPath("a.safetensors");
  writeSafetensors(p, t);
  auto back = readSafetensors(p);
  ASSERT_EQ(back.size(), t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    EXPECT_EQ(back[i].first, t[i].first);
    EXPECT_EQ(back[i].second.scalar_type(), t[i].second.scalar_type()) << t[i].first;
    EXPECT_TRUE(torch::equal(back[i].second, t[i].second)) << t[i].first;
  }
  std::remove(p.c_str());
}

TEST(Weights, CorruptSafetensorsNameTheFileAndRecord) {
  const auto p = tmpPath("bad.safetensors");
  auto write = [&](const std::string& header, uint64_t len, size_t dataBytes) {
    std::ofstream f(p, std::ios::binary);
    for (int i = 0; i < 8; ++i) f.put(static_cast<char>((len >> (8 * i)) & 0xFF));
    f << header << std::string(dataBytes, '\0');
  };
  write("{}", 1ull << 40, 0);  // header length past the end of the file
  try {
    readSafetensors(p);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
  const std::string h = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,32]}})";
  write(h, h.size(), 16);  // offsets beyond the data
  try {
    readSafetensors(p);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("record 'w'"), std::string::npos) << e.what();
  }
  const std::string h2 = R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})";
  write(h2, h2.size(), 16);  // size does not match the shape
  EXPECT_THROW(readSafetensors(p), std::runtime_error);
  std::remove(p.c_str());
}

TEST(Weights, TorchSaveWrittenByPickleSaveReadsBack) {
  NamedTensors t = {{"a.weight", torch::randn({3, 2, 1, 1})},
                    {"a.num_batches_tracked", torch::tensor(3, torch::kLong)},
                    {"h", torch::randn({5}).to(torch::kHalf)}};
  const auto p = tmpPath("a.pth");
  writeTorchSave(p, t);
  auto back = readTorchSave(p);
  ASSERT_EQ(back.size(), t.size());
  std::map<std::string, torch::Tensor> m(back.begin(), back.end());
  for (auto& [k, v] : t) EXPECT_TRUE(torch::equal(m.at(k), v)) << k;
  std::remove(p.c_str());
}

TEST(Weights, NameMapCoversTheClassifierBothWaysAndExportImportRoundTrips) {
  for (const auto& bb : {resnetLike("basicblock", 8), resnetLike("bottleneck", 8), resnetLike("Xbottleneck", 64), mobileLike()}) {
    Classifier a(layoutFor(bb), NormKind::BN, 10);
    std::set<std::string> names;
    for (auto& p : a->named_parameters()) names.insert(p.key());
    for (auto& b : a->named_buffers()) names.insert(b.key());
    auto map = torchvisionNameMap(bb);
    EXPECT_EQ(map.size(), names.size()) << blockKindName(bb.block);
    for (auto& [tv, tr] : map) {
      EXPECT_TRUE(names.count(tr)) << blockKindName(bb.block) << ": " << tr;
      EXPECT_EQ(torchvisionToTrainer(bb, tv), tr);
      EXPECT_EQ(trainerToTorchvision(bb, tr), tv);
    }
    {
      torch::NoGradGuard ng;
      for (auto& b : a->named_buffers())
        if (b.value().is_floating_point()) b.value().uniform_(0.5, 1.5);
    }
    for (const std::string ext : {".safetensors", ".pth"}) {
      const auto p = tmpPath("export" + ext);
      exportTorchvision(a, bb, p);
      Classifier b(layoutFor(bb), NormKind::BN, 10);
      importTorchvisionClassifier(b, bb, p);
      auto pa = a->named_parameters(), pb = b->named_parameters();
      for (auto& x : pa) EXPECT_TRUE(torch::equal(x.value(), pb[x.key()])) << blockKindName(bb.block) << ext << " " << x.key();
      auto ba = a->named_buffers(), bb2 = b->named_buffers();
      for (auto& x : ba) EXPECT_TRUE(torch::equal(x.value(), bb2[x.key()])) << blockKindName(bb.block) << ext << " " << x.key();
      std::remove(p.c_str());
    }
  }
}

TEST(Weights, ImportIntoAGroupNormModelIsRefused) {
  auto bb = resnetLike("basicblock", 8);
  Classifier a(layoutFor(bb), NormKind::BN, 10), g(layoutFor(bb), NormKind::GNWS, 10);
  const auto p = tmpPath("gn.safetensors");
  exportTorchvision(a, bb, p);
  try {
    importTorchvisionClassifier(g, bb, p);
    FAIL();
  } catch (const JobError& e) {
    EXPECT_EQ(e.field, "initWeights");
    EXPECT_NE(std::string(e.what()).find("BatchNorm"), std::string::npos) << e.what();
  }
  std::remove(p.c_str());
}

TEST(Weights, FrozenStagesAndNormEvalKeepWeightsAndStatistics) {
  auto bb = resnetLike("basicblock", 8);
  Backbone m(bb, NormKind::BN, 4);
  BackboneTraining t;
  t.frozenStages = 1;
  t.normEval = true;
  applyBackboneTraining(m, t);
  std::vector<torch::Tensor> trainable;
  for (auto& p : m->parameters())
    if (p.requires_grad()) trainable.push_back(p);
  torch::optim::SGD opt(trainable, torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(1e-4));
  std::map<std::string, torch::Tensor> before;
  for (auto& p : m->named_parameters()) before[p.key()] = p.value().clone();
  for (auto& b : m->named_buffers()) before[b.key()] = b.value().clone();
  m->train();
  applyBackboneTraining(m, t);
  for (int it = 0; it < 2; ++it) {
    opt.zero_grad();
    auto out = m->forward(torch::randn({2, 3, 64, 64}));
    (out.back().pow(2).mean() + out[0].mean()).backward();
    opt.step();
  }
  for (auto& p : m->named_parameters()) {
    const std::string& k = p.key();
    const bool frozen = k.rfind("stem", 0) == 0 || k.rfind("stage1.", 0) == 0;
    EXPECT_EQ(p.value().requires_grad(), !frozen) << k;
    if (frozen) {
      EXPECT_TRUE(torch::equal(p.value(), before[k])) << k;
    }
  }
  EXPECT_FALSE(torch::equal(m->named_parameters()["stage2.0.conv1.weight"], before["stage2.0.conv1.weight"]));
  for (auto& b : m->named_buffers()) EXPECT_TRUE(torch::equal(b.value(), before[b.key()])) << b.key();  // normEval: all BN statistics
  // without normEval, the unfrozen stages update their statistics; the frozen ones still do not
  t.normEval = false;
  m->train();
  applyBackboneTraining(m, t);
  m->forward(torch::randn({2, 3, 64, 64}));
  auto buffers = m->named_buffers();
  EXPECT_TRUE(torch::equal(buffers["stage1.0.n1.bn.running_mean"], before["stage1.0.n1.bn.running_mean"]));
  EXPECT_FALSE(torch::equal(buffers["stage2.0.n1.bn.running_mean"], before["stage2.0.n1.bn.running_mean"]));
}
