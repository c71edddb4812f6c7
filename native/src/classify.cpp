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
#include "train_loop.hpp"
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

// top-1 / top-5 accuracy over a split; with several processes, batch bi goes to rank bi % world
// and the hit counts are summed.
std::pair<double, double> evaluate(const Job& job, Classifier& model, const ClassDataset& ds, const torch::Device& dev, Dist& dist) {
  torch::NoGradGuard ng;
  model->eval();
  const int64_t N = static_cast<int64_t>(ds.items.size()), B = job.recipe.batchSize;
  const int64_t batches = (N + B - 1) / B;
  const int64_t rank = dist.rank(), world = dist.world();
  const int64_t mine = batches > rank ? (batches - rank + world - 1) / world : 0;
  OrderedPrefetcher<std::vector<std::pair<size_t, Image>>> loader(mine, job.recipe.workers, [&](size_t k) {
    const int64_t bi = rank + static_cast<int64_t>(k) * world;
    std::vector<std::pair<size_t, Image>> v;
    for (int64_t i = bi * B; i < std::min(N, (bi + 1) * B); ++i)
      v.push_back({static_cast<size_t>(i), prepareClassification(ds, i, job.recipe.cropSize, job.seed, 0, false)});
    return v;
  });
  int64_t top1 = 0, top5 = 0;
  const int64_t k = std::min<int64_t>(5, static_cast<int64_t>(ds.classes.size()));
  for (int64_t bi = 0; bi < mine; ++bi) {
    auto b = makeBatch(ds, loader.get(bi), dev);
    auto logits = model(b.images);
    auto topk = std::get<1>(logits.topk(k, 1));
    auto hit = topk.eq(b.labels.unsqueeze(1));
    top1 += hit.select(1, 0).sum().item<int64_t>();
    top5 += hit.any(1).sum().item<int64_t>();
  }
  auto hits = torch::tensor({top1, top5}, torch::kLong);
  dist.allreduceSum(hits, "accuracy all-reduce");
  return {static_cast<double>(hits[0].item<int64_t>()) / N, static_cast<double>(hits[1].item<int64_t>()) / N};
}

// The classification side of the shared training loop: RandomResizedCrop + flip, cross-entropy.
class ClassificationTask : public TrainTask {
 public:
  ClassificationTask(const Job& job, const ClassDataset& ds, Classifier& model, const torch::Device& dev)
      : job_(job), ds_(ds), model_(model), dev_(dev) {}
  void beginEpoch(int64_t epoch, std::vector<std::vector<size_t>> batches) override {
    loader_.reset();
    batches_ = std::move(batches);
    loader_ = std::make_unique<OrderedPrefetcher<std::vector<std::pair<size_t, Image>>>>(
        batches_.size(), job_.recipe.workers, [this, epoch](size_t k) {
          std::vector<std::pair<size_t, Image>> v;
          for (size_t i : batches_[k]) v.push_back({i, prepareClassification(ds_, i, job_.recipe.cropSize, job_.seed, epoch, true)});
          return v;
        });
    model_->train();
  }
  std::map<std::string, torch::Tensor> losses(int64_t k, const AmpSettings& amp, int64_t& images) override {
    auto b = makeBatch(ds_, loader_->get(static_cast<size_t>(k)), dev_);
    images = b.images.size(0);
    torch::Tensor logits;
    {
      AutocastGuard autocast(amp.device, amp.dtype, amp.enabled);
      logits = model_(b.images);
    }
    return {{"cls", torch::nn::functional::cross_entropy(logits.to(torch::kFloat), b.labels)}};
  }

 private:
  const Job& job_;
  const ClassDataset& ds_;
  Classifier& model_;
  torch::Device dev_;
  std::vector<std::vector<size_t>> batches_;
  std::unique_ptr<OrderedPrefetcher<std::vector<std::pair<size_t, Image>>>> loader_;
};

int classifyTrain(const Job& job, const torch::Device& dev, Dist& dist) {
  const Recipe& r = job.recipe;
  ClassDataset ds = loadClassFolders(job.dataRoot, job.trainSplit);
  ClassDataset val = loadClassFolders(job.dataRoot, job.valSplit);
  if (val.classes != ds.classes)
    throw BadData(job.dataRoot, "the class folders of '" + job.trainSplit + "' and '" + job.valSplit + "' differ");
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
  const int64_t G = static_cast<int64_t>(r.batchSize) * dist.world();
  const int64_t ipe = N / G > 0 ? N / G : 1;  // drop the last partial batch (BN statistics)
  int64_t total = ipe * r.epochs;
  if (r.maxIterations > 0) total = std::min(total, r.maxIterations);
  TrainPosition pos;
  nlohmann::json resumed = resumeAndSync(job, *model, *opt, pos, dist);
  emitStarted(job, resumed, *model);
  logInfo("pretraining on " + std::to_string(N) + " images, " + std::to_string(ds.classes.size()) + " classes, " + std::to_string(total) +
          " iterations" +
          (dist.active() ? ", batch " + std::to_string(r.batchSize) + " x " + std::to_string(dist.world()) + " processes" : ""));
  const double t0 = wallSeconds();
  ClassificationTask task(job, ds, model, dev);
  auto outcome =
      runTrainLoop(job, TrainLoopOptions().itersPerEpoch(ipe).totalIterations(total).emitEvery(std::max<int64_t>(1, total / 200)), *model,
                   *opt, task, pos, N, dev, dist);
  if (outcome.diverged) {
    emit({{"type", "result"},
          {"kind", "diverged"},
          {"command", job.command},
          {"wallSeconds", wallSeconds() - t0},
          {"message", outcome.message}});
    return kDiverged;
  }
  std::string weights = (fs::path(job.outDir) / "weights").string(), bbWeights = (fs::path(job.outDir) / "backbone_weights").string();
  if (dist.root()) {
    torch::save(model, weights + ".tmp");
    fs::rename(weights + ".tmp", weights);
    torch::save(model->backbone, bbWeights + ".tmp");
    fs::rename(bbWeights + ".tmp", bbWeights);
    if (r.norm == NormKind::BN) exportTorchvision(model, job.layout.backbone, (fs::path(job.outDir) / "torchvision.safetensors").string());
    saveCheckpoint(job, *model, *opt, outcome.position);
  }
  auto [top1, top5] = evaluate(job, model, val, dev, dist);
  emit({{"type", "metrics"}, {"split", job.valSplit}, {"top1", top1}, {"top5", top5}});
  if (dist.root())
    writeFileAtomic((fs::path(job.outDir) / "metrics.json").string(),
                    nlohmann::json({{"split", job.valSplit}, {"top1", top1}, {"top5", top5}}).dump(2) + "\n");
  emit({{"type", "result"},
        {"kind", "ok"},
        {"command", job.command},
        {"wallSeconds", wallSeconds() - t0},
        {"weights", bbWeights},
        {"metrics", {{"top1", top1}, {"top5", top5}}},
        {"imagesPerSec", static_cast<double>(outcome.imagesSeen) * dist.world() / std::max(1e-9, outcome.seconds)},
        {"peakMemoryMB", peakMemoryMB(dev)}});
  return kOk;
}

int classifyEval(const Job& job, const torch::Device& dev, Dist& dist) {
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
  auto [top1, top5] = evaluate(job, model, val, dev, dist);
  emit({{"type", "metrics"}, {"split", job.valSplit}, {"top1", top1}, {"top5", top5}});
  emit({{"type", "result"},
        {"kind", "ok"},
        {"command", job.command},
        {"wallSeconds", wallSeconds() - t0},
        {"metrics", {{"top1", top1}, {"top5", top5}}}});
  return kOk;
}

}  // namespace

int runClassification(const Job& jobIn) {
  auto p = setupTrainerProcess(jobIn, /*multiProcess=*/jobIn.command != "classify");
  const Job& job = p.job;
  const torch::Device dev = p.device;
  if (job.command == "classify") return classifyImages(job, dev);
  fs::create_directories(job.outDir);
  Dist dist(p.dist, dev);
  return job.command == "classify-train" ? classifyTrain(job, dev, dist) : classifyEval(job, dev, dist);
}

}  // namespace smnas
