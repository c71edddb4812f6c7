// The CUDA paths against their CPU references. Every test is skipped (GTEST_SKIP) where this build
// or machine has no CUDA device, so the file builds and passes with Debian's CPU libtorch; on a GPU
// machine (bench/gpu-check.sh) it checks what the CPU tests cannot:
// - the ops on CUDA tensors (IoU, box coding, NMS, the grid_sample RoIAlign that every non-CPU
//   device uses, Weight Standardization's tensor-op path) against the CPU results;
// - bf16 and fp16 autocast training steps of a small detector on CUDA (fp16 with the loss scaler);
// - the caching allocator's peak memory (peakMemoryMB / resetPeakMemory);
// - checkpoint save/load of a model trained on CUDA: written twice, byte-identical; loaded, the
//   same parameters, buffers and momentum buffers, and byte-identical weights files.
// SMNAS_CUDA_TESTS_ON_CPU=1 runs them on the CPU where there is no CUDA (a check of the tests'
// own logic: CPU against CPU, bf16 only, no allocator statistics).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <type_traits>
#include <unistd.h>

#include "autocast.hpp"
#include "kernels.hpp"
#include "fixtures.hpp"
#include "model.hpp"
#include "ops.hpp"
#include "runtime.hpp"

using namespace smnas;
namespace fs = std::filesystem;

namespace {
// The device under test: CUDA 0; without CUDA the tests are skipped, unless
// SMNAS_CUDA_TESTS_ON_CPU=1 runs them on the CPU (a check of the tests' own logic, not of CUDA).
bool cpuStandIn() {
  const char* v = std::getenv("SMNAS_CUDA_TESTS_ON_CPU");
  return v && std::string(v) == "1";
}
torch::Device testDevice() { return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU); }
#define SKIP_WITHOUT_CUDA()                                                                                             \
  if (!torch::cuda::is_available() && !cpuStandIn()) GTEST_SKIP() << "no CUDA device in this build or on this machine"; \
  const torch::Device dev = testDevice()

torch::Tensor randomBoxes(int n, double maxSide = 100) {
  auto xy = torch::rand({n, 2}) * maxSide;
  auto wh = torch::rand({n, 2}) * 40 + 1;
  return torch::cat({xy, xy + wh}, 1);
}

double maxDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.cpu().to(torch::kDouble) - b.cpu().to(torch::kDouble)).abs().max().item<double>();
}

Layout smallLayout() { return fixtures::smallLayout("2fc"); }
Recipe smallRecipe(const std::string& norm) { return fixtures::smallRecipe(normKindNamed(norm)); }

struct SmallBatch {
  torch::Tensor images;
  std::vector<torch::Tensor> boxes, labels;
  std::vector<std::pair<int, int>> sizes{{64, 64}, {64, 64}};
};

SmallBatch smallBatch(const torch::Device& dev) {
  torch::manual_seed(11);
  SmallBatch b;
  b.images = torch::randn({2, 3, 64, 64}).to(dev);
  b.boxes = {torch::tensor({{8.f, 8.f, 40.f, 36.f}}).to(dev), torch::tensor({{20.f, 10.f, 60.f, 50.f}, {2.f, 30.f, 22.f, 62.f}}).to(dev)};
  b.labels = {torch::tensor({1L}).to(dev), torch::tensor({0L, 2L}).to(dev)};
  return b;
}

// SGD's momentum buffer of a parameter. libtorch keys optimiser state by the parameter's TensorImpl:
// its address printed as a string in 1.13, the pointer itself in 2.x.
template <class Map>
torch::Tensor momentumOf(Map& state, const torch::Tensor& p) {
  using Key = typename std::decay_t<Map>::key_type;
  Key key;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream o;
    o << static_cast<const void*>(p.unsafeGetTensorImpl());
    key = o.str();
  } else {
    key = p.unsafeGetTensorImpl();
  }
  return static_cast<torch::optim::SGDParamState&>(*state.at(key)).momentum_buffer();
}

std::string readBytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
}  // namespace

TEST(Cuda, IouAndBoxCodingMatchCpu) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(1);
  auto a = randomBoxes(300), b = randomBoxes(200);
  EXPECT_LT(maxDiff(boxIou(a.to(dev), b.to(dev)), boxIou(a, b)), 1e-5);
  std::array<double, 4> stds{0.1, 0.1, 0.2, 0.2};
  auto g = randomBoxes(300);
  auto d = encodeBoxes(a, g, stds);
  auto dCuda = encodeBoxes(a.to(dev), g.to(dev), stds);
  EXPECT_EQ(dCuda.device(), dev);
  EXPECT_LT(maxDiff(dCuda, d), 1e-4);
  EXPECT_LT(maxDiff(decodeBoxes(a.to(dev), dCuda, stds, 800, 600), decodeBoxes(a, d, stds, 800, 600)), 1e-3);
  auto anchors = gridAnchors(16, 38, 50, {8}, {0.5, 1.0, 2.0}, dev);
  EXPECT_EQ(anchors.device(), dev);
  EXPECT_LT(maxDiff(anchors, gridAnchors(16, 38, 50, {8}, {0.5, 1.0, 2.0}, torch::kCPU)), 1e-4);
}

// NMS scans on the host; CUDA inputs must give the same kept indices as CPU inputs (stable sort).
TEST(Cuda, NmsMatchesCpu) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(3);
  auto boxes = randomBoxes(2000, 300);
  auto scores = torch::rand({2000});
  auto groups = torch::randint(0, 5, {2000}, torch::kLong);
  auto keep = nms(boxes, scores, 0.5);
  auto keepCuda = nms(boxes.to(dev), scores.to(dev), 0.5);
  ASSERT_EQ(keepCuda.numel(), keep.numel());
  EXPECT_TRUE(keepCuda.cpu().equal(keep));
  auto bk = batchedNms(boxes, scores, groups, 0.7, 300);
  EXPECT_TRUE(batchedNms(boxes.to(dev), scores.to(dev), groups.to(dev), 0.7, 300).cpu().equal(bk));
}

// RoIAlign off the CPU is the grid_sample formulation: on CUDA it must equal the CPU kernel
// (values and the gradient of a random projection; index_add's atomics reorder sums, hence 1e-4).
TEST(Cuda, RoiAlignMatchesCpuKernel) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(7);
  auto feat = torch::randn({3, 16, 48, 40});
  std::vector<torch::Tensor> parts;
  for (double maxSide : {3.0, 40.0, 200.0}) {
    auto xy = torch::rand({100, 2}) * 180 - 12;
    auto wh = torch::rand({100, 2}) * maxSide + 0.5;
    parts.push_back(torch::cat({(torch::rand({100, 1}) * 3).floor(), xy, xy + wh}, 1));
  }
  auto rois = torch::cat(parts);
  for (int ratio : {0, 2}) {
    auto a = feat.clone().requires_grad_(true);
    auto b = feat.clone().to(dev).requires_grad_(true);  // a copy also on the CPU stand-in
    auto ref = roiAlignCpu(a, rois, 7, 0.25, ratio);
    auto out = roiAlign(b, rois.to(dev), 7, 0.25, ratio);
    ASSERT_EQ(out.device(), dev);
    EXPECT_LT(maxDiff(out, ref), 1e-4) << "ratio " << ratio;
    auto w = torch::randn(ref.sizes());
    (ref * w).sum().backward();
    (out * w.to(dev)).sum().backward();
    EXPECT_LT(maxDiff(b.grad(), a.grad()), 1e-3) << "ratio " << ratio;
    EXPECT_GT(a.grad().abs().sum().item<double>(), 1.0);
  }
}

// Weight Standardization: fp32 CPU weights use the row kernel, CUDA weights the tensor-op version;
// both with the closed-form backward.
TEST(Cuda, WeightStandardisationMatchesCpu) {
  SKIP_WITHOUT_CUDA();
  torch::manual_seed(8);
  auto w = torch::randn({64, 32, 3, 3}) * 2 + 0.5;
  auto g = torch::randn(w.sizes());
  auto a = w.clone().requires_grad_(true);
  auto b = w.clone().to(dev).requires_grad_(true);
  auto sa = standardizeWeight(a), sb = standardizeWeight(b);
  EXPECT_LT(maxDiff(sb, sa), 1e-5);
  (sa * g).sum().backward();
  (sb * g.to(dev)).sum().backward();
  EXPECT_LT(maxDiff(b.grad(), a.grad()), 1e-4);
}

// A small detector trains on CUDA under bf16 and fp16 autocast (fp16 through the loss scaler, as
// train() does), with GN and with GN+WS: fp32 finite losses, low-precision features, finite
// gradients and a lower loss after a few steps on one batch.
TEST(Cuda, AutocastTrainingStepsStayFiniteAndLearn) {
  SKIP_WITHOUT_CUDA();
  auto batch = smallBatch(dev);
  // fp16 autocast is CUDA-only (the trainer rejects it on the CPU)
  for (std::string mode : dev.is_cuda() ? std::vector<std::string>{"bf16", "fp16"} : std::vector<std::string>{"bf16"}) {
    for (std::string norm : {"gn", "gn+ws", "bn"}) {
      torch::manual_seed(3);
      Detector det(smallLayout(), smallRecipe(norm));
      det->to(dev);
      det->train();
      at::ScalarType dtype = at::kFloat;
      ASSERT_TRUE(autocastDtypeFor(mode, dtype));
      torch::optim::SGD opt(det->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
      LossScaler scaler(dtype == at::kHalf);
      const auto params = det->parameters();
      double first = 0, last = 0;
      int taken = 0;
      for (int it = 0; it < 12; ++it) {
        torch::manual_seed(100 + it);
        torch::Tensor loss = torch::zeros({}, batch.images.options());
        {
          AutocastGuard amp(dev.type(), dtype, true);
          auto feats = det->features(batch.images);
          EXPECT_EQ(feats[0].x.scalar_type(), dtype) << mode << " " << norm << ": autocast is not active";
          for (auto& [name, v] : det->losses(batch.images, batch.boxes, batch.labels, batch.sizes)) {
            EXPECT_EQ(v.scalar_type(), torch::kFloat) << mode << " " << norm << " " << name;
            ASSERT_TRUE(allFinite(v)) << mode << " " << norm << " " << name << " at iteration " << it;
            loss = loss + v;
          }
        }
        clearGradients(params);
        scaler.scale(loss).backward();
        if (scaler.step(opt, params, 35)) ++taken;  // fp16: an overflow at the initial 2^16 scale skips a step
        if (it == 0) first = loss.item<double>();
        last = loss.item<double>();
      }
      EXPECT_LT(last, first) << mode << " " << norm << ": loss did not decrease";
      // GradScaler starts at 2^16 and halves on every overflow, so the first few fp16 steps may be
      // skipped; most of the 12 must be taken
      EXPECT_GE(taken, 6) << mode << " " << norm << ": too many skipped steps (loss scale " << scaler.factor << ")";
    }
  }
}

// peakMemoryMB reads the caching allocator on CUDA (what train/bench report as peakMemoryMB).
TEST(Cuda, PeakMemoryReadsTheCachingAllocator) {
  SKIP_WITHOUT_CUDA();
  if (!dev.is_cuda()) GTEST_SKIP() << "the allocator statistics need CUDA";
  ASSERT_TRUE(peakMemoryIsDevice(dev)) << "built without the CUDA allocator statistics (SMNAS_WITH_CUDA and CUDA headers)";
  resetPeakMemory(dev);
  const double before = peakMemoryMB(dev);
  {
    auto t = torch::empty({64 * 1024 * 1024 / 4}, torch::TensorOptions().dtype(torch::kFloat).device(dev));  // 64 MiB
    t.fill_(1);
    torch::cuda::synchronize();
  }
  const double peak = peakMemoryMB(dev);
  EXPECT_GE(peak - before, 63.0);
  EXPECT_LT(peak - before, 80.0);
  resetPeakMemory(dev);  // the tensor is freed: the new peak is what is still allocated
  EXPECT_LT(peakMemoryMB(dev), peak - 60.0);
}

// Checkpoints of a model trained on CUDA: saveCheckpoint twice from the same state writes the same
// bytes; loadNewestCheckpoint restores parameters, buffers and momentum exactly, on CUDA, so the
// weights written after a resume are byte-identical; one more step from the original and from the
// restored state agree (up to the CUDA kernels' run-to-run differences).
TEST(Cuda, CheckpointSaveLoadIsExactOnCuda) {
  SKIP_WITHOUT_CUDA();
  const fs::path dir = fs::temp_directory_path() / ("smnas-test-cuda-ckpt-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  Job job;
  job.outDir = (dir / "a").string();
  job.seed = 5;
  job.ckptKeep = 2;
  auto batch = smallBatch(dev);
  auto stepOnce = [&](Detector& det, torch::optim::SGD& opt, int it) {
    torch::manual_seed(200 + it);
    torch::Tensor loss = torch::zeros({}, batch.images.options());
    for (auto& [name, v] : det->losses(batch.images, batch.boxes, batch.labels, batch.sizes)) loss = loss + v;
    clearGradients(det->parameters());
    loss.backward();
    opt.step();
  };
  torch::manual_seed(4);
  Detector det(smallLayout(), smallRecipe("bn"));
  det->to(dev);
  det->train();
  auto opt = makeSgd(*det, smallRecipe("bn").optimizer);
  for (int it = 0; it < 3; ++it) stepOnce(det, *opt, it);
  TrainPosition pos;
  pos.iteration = 3;
  pos.epoch = 1;
  const std::string p1 = saveCheckpoint(job, *det, *opt, pos);
  Job job2 = job;
  job2.outDir = (dir / "b").string();
  const std::string p2 = saveCheckpoint(job2, *det, *opt, pos);
  EXPECT_TRUE(readBytes(p1) == readBytes(p2)) << "two saves of one CUDA state differ";

  torch::manual_seed(99);  // different initial weights: everything must come from the checkpoint
  Detector restored(smallLayout(), smallRecipe("bn"));
  restored->to(dev);
  restored->train();
  auto opt2 = makeSgd(*restored, smallRecipe("bn").optimizer);
  TrainPosition pos2;
  std::string loaded;
  ASSERT_TRUE(loadNewestCheckpoint(job, *restored, *opt2, pos2, loaded));
  EXPECT_EQ(pos2.iteration, 3);
  auto pa = det->named_parameters(), pb = restored->named_parameters();
  for (auto& item : pa) {
    ASSERT_EQ(pb[item.key()].device(), dev) << item.key();
    EXPECT_TRUE(item.value().equal(pb[item.key()])) << item.key();
    EXPECT_TRUE(momentumOf(opt->state(), item.value()).equal(momentumOf(opt2->state(), pb[item.key()]))) << item.key();
  }
  auto ba = det->named_buffers(), bb = restored->named_buffers();
  for (auto& item : ba) EXPECT_TRUE(item.value().equal(bb[item.key()])) << item.key();
  // the weights file (what the trainer writes and the resume test compares) is byte-identical.
  // (The optimiser part of a checkpoint names its state by TensorImpl address, so a checkpoint
  // re-saved from a restored model differs in those keys; the weights do not.)
  // (same file name in two folders: the archive's records are named after the file)
  fs::create_directories(dir / "wa");
  fs::create_directories(dir / "wb");
  torch::save(det, (dir / "wa" / "weights").string());
  torch::save(restored, (dir / "wb" / "weights").string());
  EXPECT_TRUE(readBytes(dir / "wa" / "weights") == readBytes(dir / "wb" / "weights")) << "weights written after load differ";
  // one more step from both: the same parameters up to the CUDA kernels' run-to-run differences
  stepOnce(det, *opt, 3);
  stepOnce(restored, *opt2, 3);
  double worst = 0;
  for (auto& item : pa) worst = std::max(worst, maxDiff(item.value(), pb[item.key()]));
  EXPECT_LT(worst, 1e-4) << "a step after resume diverges from a step without it";
  RecordProperty("max_param_diff_after_step", std::to_string(worst));
  fs::remove_all(dir);
}
