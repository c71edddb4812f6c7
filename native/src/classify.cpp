// classify-train / classify-eval: backbone pretraining on ImageNet-style class folders
// (backbone + global average pool + linear classifier). classify-train writes
// <outDir>/backbone_weights (the backbone alone, loaded by detection jobs with initKind
// 'backbone') and <outDir>/weights (the whole classifier, for classify-eval).
#include <filesystem>

#include "autocast.hpp"
#include "commands.hpp"
#include "data.hpp"
#include "model.hpp"
#include "protocol.hpp"
#include "runtime.hpp"
#include "weights.hpp"

namespace fs = std::filesystem;

namespace smnas {
namespace {

const float kMean[3] = {123.675f, 116.28f, 103.53f};
const float kStd[3] = {58.395f, 57.12f, 57.375f};

struct ClsBatch {
  torch::Tensor images, labels;
};

ClsBatch makeBatch(const ClassDataset& ds, const std::vector<std::pair<size_t, Image>>& items, const torch::Device& dev) {
  const int64_t B = static_cast<int64_t>(items.size());
  const int S = items[0].second.width;
  auto x = torch::empty({B, 3, S, S});
  std::vector<int64_t> y;
  for (int64_t i = 0; i < B; ++i) {
    auto& img = items[i].second;
    auto t = torch::from_blob(const_cast<uint8_t*>(img.rgb.data()), {S, S, 3}, torch::kUInt8).permute({2, 0, 1}).to(torch::kFloat);
    for (int c = 0; c < 3; ++c) t[c].sub_(kMean[c]).div_(kStd[c]);
    x[i].copy_(t);
    y.push_back(ds.items[items[i].first].label);
  }
  return {x.to(dev), torch::tensor(y, torch::kLong).to(dev)};
}

// top-1 / top-5 accuracy over a split
std::pair<double, double> evaluate(const Job& job, Classifier& model, const ClassDataset& ds, const torch::Device& dev) {
  torch::NoGradGuard ng;
  model->eval();
  const int64_t N = static_cast<int64_t>(ds.items.size()), B = job.recipe.batchSize;
  const int64_t batches = (N + B - 1) / B;
  OrderedPrefetcher<std::vector<std::pair<size_t, Image>>> loader(batches, job.recipe.workers, [&](size_t bi) {
    std::vector<std::pair<size_t, Image>> v;
    for (int64_t i = bi * B; i < std::min(N, static_cast<int64_t>(bi + 1) * B); ++i)
      v.push_back({static_cast<size_t>(i), prepareClassification(ds, i, job.recipe.cropSize, job.seed, 0, false)});
    return v;
  });
  int64_t top1 = 0, top5 = 0;
  const int64_t k = std::min<int64_t>(5, static_cast<int64_t>(ds.classes.size()));
  for (int64_t bi = 0; bi < batches; ++bi) {
    auto b = makeBatch(ds, loader.get(bi), dev);
    auto logits = model(b.images);
    auto topk = std::get<1>(logits.topk(k, 1));
    auto hit = topk.eq(b.labels.unsqueeze(1));
    top1 += hit.select(1, 0).sum().item<int64_t>();
    top5 += hit.any(1).sum().item<int64_t>();
  }
  return {static_cast<double>(top1) / N, static_cast<double>(top5) / N};
}

int classifyTrain(const Job& job, const torch::Device& dev) {
  const Recipe& r = job.recipe;
  ClassDataset ds = loadClassFolders(job.dataRoot, job.trainSplit);
  ClassDataset val = loadClassFolders(job.dataRoot, job.valSplit);
  if (val.classes != ds.classes) throw BadData(job.dataRoot, "the class folders of '" + job.trainSplit + "' and '" + job.valSplit + "' differ");
  Classifier model(job.layout, r.norm, static_cast<int>(ds.classes.size()));
  if (!job.initWeights.empty()) {
    try {
      torch::load(model->backbone, job.initWeights);
    } catch (const std::exception& e) {
      throw JobError("initWeights", job.initWeights + " does not fit this backbone");
    }
  }
  model->to(dev);
  auto opt = makeSgd(*model, r.optimizer);
  const int64_t N = static_cast<int64_t>(ds.items.size());
  const int64_t ipe = N / r.batchSize > 0 ? N / r.batchSize : 1;  // drop the last partial batch (BN statistics)
  int64_t total = ipe * r.epochs;
  if (r.maxIterations > 0) total = std::min(total, r.maxIterations);
  TrainPosition pos;
  nlohmann::json resumed = nullptr;
  if (job.resume) {
    std::string path;
    if (loadNewestCheckpoint(job, *model, *opt, pos, path)) resumed = {{"path", path}, {"epoch", pos.epoch}, {"iteration", pos.iteration}};
  }
  emitStarted(job, resumed, *model);
  logInfo("pretraining on " + std::to_string(N) + " images, " + std::to_string(ds.classes.size()) + " classes, " + std::to_string(total) + " iterations");
  const double t0 = wallSeconds();
  double lastCkpt = t0, lastEmit = 0, windowStart = t0;
  int64_t seen = 0, sinceEmit = 0;
  const int64_t emitEvery = std::max<int64_t>(1, total / 200);
  at::ScalarType amp = at::kFloat;
  const bool useAmp = autocastDtypeFor(r.mixedPrecision, amp);
  if (useAmp) logInfo("mixed precision: " + r.mixedPrecision + " autocast of the forward pass (loss in fp32)");
  LossScaler scaler(useAmp && amp == at::kHalf);
  const auto params = model->parameters();
  resetPeakMemory(dev);
  while (pos.iteration < total) {
    const int64_t epoch = pos.epoch, first = pos.batchInEpoch;
    auto order = epochOrder(N, job.seed, epoch);
    const int64_t batches = std::min<int64_t>(ipe - first, total - pos.iteration);
    const int64_t B = r.batchSize;
    OrderedPrefetcher<std::vector<std::pair<size_t, Image>>> loader(batches, r.workers, [&](size_t k) {
      std::vector<std::pair<size_t, Image>> v;
      const int64_t bi = first + static_cast<int64_t>(k);
      for (int64_t i = bi * B; i < std::min(N, (bi + 1) * B); ++i) v.push_back({order[i], prepareClassification(ds, order[i], r.cropSize, job.seed, epoch, true)});
      return v;
    });
    model->train();
    for (int64_t k = 0; k < batches; ++k) {
      auto b = makeBatch(ds, loader.get(k), dev);
      torch::manual_seed(mixSeed(job.seed, 0x5A5A, pos.iteration));
      const double lr = learningRate(r, pos.iteration, total, ipe);
      setLr(*opt, lr);
      torch::Tensor logits;
      {
        AutocastGuard autocast(dev.type(), amp, useAmp);
        logits = model(b.images);
      }
      auto loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat), b.labels);
      if (!allFinite(loss)) {
        std::string msg = "non-finite loss at iteration " + std::to_string(pos.iteration + 1);
        emit({{"type", "result"}, {"kind", "diverged"}, {"command", job.command}, {"wallSeconds", wallSeconds() - t0}, {"message", msg}});
        return kDiverged;
      }
      clearGradients(params);
      scaler.scale(loss).backward();
      scaler.step(*opt, params, r.optimizer.clipGradNorm);  // fp16: inf/NaN gradients skip this step
      pos.stepDone(first + k, ipe);
      seen += b.images.size(0);
      sinceEmit += b.images.size(0);
      const double now = wallSeconds();
      if (pos.iteration % emitEvery == 0 || pos.iteration == total || now - lastEmit > 2) {
        double l = loss.item<double>();
        emit({{"type", "progress"}, {"epoch", epoch}, {"iteration", pos.iteration}, {"totalIterations", total}, {"lr", lr}, {"loss", l},
              {"losses", {{"cls", l}}}, {"imagesPerSec", sinceEmit / std::max(1e-9, now - windowStart)}});
        lastEmit = windowStart = now;
        sinceEmit = 0;
      }
      if (gStopRequested.load()) {
        auto p = saveCheckpoint(job, *model, *opt, pos);
        throw Interrupted("stopped by signal at iteration " + std::to_string(pos.iteration) + "; checkpoint " + p);
      }
      const bool due = (job.ckptEveryIterations > 0 && pos.iteration % job.ckptEveryIterations == 0) ||
                       (job.ckptEverySeconds > 0 && now - lastCkpt >= job.ckptEverySeconds);
      if (due && pos.iteration < total) {
        saveCheckpoint(job, *model, *opt, pos);
        lastCkpt = wallSeconds();
      }
    }
  }
  const double trainSeconds = wallSeconds() - t0;
  std::string weights = (fs::path(job.outDir) / "weights").string(), bbWeights = (fs::path(job.outDir) / "backbone_weights").string();
  torch::save(model, weights + ".tmp");
  fs::rename(weights + ".tmp", weights);
  torch::save(model->backbone, bbWeights + ".tmp");
  fs::rename(bbWeights + ".tmp", bbWeights);
  if (r.norm == NormKind::BN) exportTorchvision(model, job.layout.backbone, (fs::path(job.outDir) / "torchvision.safetensors").string());
  saveCheckpoint(job, *model, *opt, pos);
  auto [top1, top5] = evaluate(job, model, val, dev);
  emit({{"type", "metrics"}, {"split", job.valSplit}, {"top1", top1}, {"top5", top5}});
  writeFileAtomic((fs::path(job.outDir) / "metrics.json").string(), nlohmann::json({{"split", job.valSplit}, {"top1", top1}, {"top5", top5}}).dump(2) + "\n");
  emit({{"type", "result"}, {"kind", "ok"}, {"command", job.command}, {"wallSeconds", wallSeconds() - t0}, {"weights", bbWeights},
        {"metrics", {{"top1", top1}, {"top5", top5}}}, {"imagesPerSec", seen / std::max(1e-9, trainSeconds)}, {"peakMemoryMB", peakMemoryMB(dev)}});
  return kOk;
}

int classifyEval(const Job& job, const torch::Device& dev) {
  ClassDataset val = loadClassFolders(job.dataRoot, job.valSplit);
  Classifier model(job.layout, job.recipe.norm, static_cast<int>(val.classes.size()));
  try {
    torch::load(model, job.initWeights);
  } catch (const std::exception& e) {
    throw JobError("initWeights", job.initWeights + " is not a classifier of this layout and class count");
  }
  model->to(dev);
  emitStarted(job, nullptr, *model);
  const double t0 = wallSeconds();
  auto [top1, top5] = evaluate(job, model, val, dev);
  emit({{"type", "metrics"}, {"split", job.valSplit}, {"top1", top1}, {"top5", top5}});
  emit({{"type", "result"}, {"kind", "ok"}, {"command", job.command}, {"wallSeconds", wallSeconds() - t0}, {"metrics", {{"top1", top1}, {"top5", top5}}}});
  return kOk;
}

}  // namespace

int runClassification(const Job& job) {
  torch::Device dev = setupDevice(job);
  if (job.command == "classify") return classifyImages(job, dev);
  fs::create_directories(job.outDir);
  return job.command == "classify-train" ? classifyTrain(job, dev) : classifyEval(job, dev);
}

}  // namespace smnas
