// train / eval / bench / describe for detection jobs.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

#include "autocast.hpp"
#include "commands.hpp"
#include "data.hpp"
#include "environment.hpp"
#include "model.hpp"
#include "onnx_graph.hpp"
#include "protocol.hpp"
#include "runtime.hpp"
#include "train_loop.hpp"
#include "weights.hpp"

namespace fs = std::filesystem;

namespace smnas {
namespace {

const float kMean[3] = {123.675f, 116.28f, 103.53f};
const float kStd[3] = {58.395f, 57.12f, 57.375f};

int ceil32(int x) { return (x + 31) / 32 * 32; }

struct Batch {
  torch::Tensor images;  // [B,3,H,W] normalised, zero padded (bottom/right)
  std::vector<torch::Tensor> boxes, labels;
  std::vector<std::pair<int, int>> sizes;
  std::vector<PreparedImage> meta;  // pixels dropped
};

Batch makeBatch(std::vector<PreparedImage> items, int minW, int minH, const torch::Device& dev) {
  Batch b;
  int W = minW, H = minH;
  for (auto& p : items) {
    W = std::max(W, ceil32(p.img.width));
    H = std::max(H, ceil32(p.img.height));
  }
  b.images = torch::zeros({static_cast<int64_t>(items.size()), 3, H, W});
  for (size_t i = 0; i < items.size(); ++i) {
    auto& p = items[i];
    auto t = torch::from_blob(p.img.rgb.data(), {p.img.height, p.img.width, 3}, torch::kUInt8).permute({2, 0, 1}).to(torch::kFloat);
    for (int c = 0; c < 3; ++c) t[c].sub_(kMean[c]).div_(kStd[c]);
    b.images[i].slice(1, 0, p.img.height).slice(2, 0, p.img.width).copy_(t);
    std::vector<float> bx;
    std::vector<int64_t> lb;
    for (auto& g : p.boxes) {
      if (g.crowd) continue;  // crowd regions are not training targets
      bx.insert(bx.end(), {g.x1, g.y1, g.x2, g.y2});
      lb.push_back(g.label);
    }
    b.boxes.push_back(torch::tensor(bx, torch::kFloat).view({-1, 4}).to(dev));
    b.labels.push_back(torch::tensor(lb, torch::kLong).to(dev));
    b.sizes.push_back({p.img.width, p.img.height});
    p.img.rgb.clear();
    p.img.rgb.shrink_to_fit();
    b.meta.push_back(std::move(p));
  }
  b.images = b.images.to(dev);
  return b;
}

void checkClasses(const Job& job, const CocoDataset& ds) {
  if (static_cast<int>(ds.categoryIds.size()) != job.numClasses)
    throw BadData(ds.annotationFile, ds.annotationFile + " has " + std::to_string(ds.categoryIds.size()) +
                                         " categories but the job's numClasses is " + std::to_string(job.numClasses));
}

// Copies every saved tensor into `m` whose name and shape match; names of those that do not are
// collected in `mismatched`. torch::load would instead swap a differently shaped tensor in
// silently (set_data), which surfaces much later as "Target N is out of bounds".
void loadMatching(torch::nn::Module& m, torch::serialize::InputArchive& ar, const std::string& prefix,
                  std::vector<std::string>& mismatched) {
  torch::NoGradGuard noGrad;
  auto copyIfFits = [&](const std::string& key, torch::Tensor& dst, bool isBuffer) {
    torch::Tensor src;
    if (!ar.try_read(key, src, isBuffer) || src.sizes() != dst.sizes()) {
      mismatched.push_back(prefix + key);
      return;
    }
    dst.copy_(src);
  };
  for (auto& p : m.named_parameters(/*recurse=*/false)) copyIfFits(p.key(), p.value(), false);
  for (auto& b : m.named_buffers(/*recurse=*/false)) copyIfFits(b.key(), b.value(), true);
  for (auto& c : m.named_children()) {
    torch::serialize::InputArchive sub;
    if (!ar.try_read(c.key(), sub)) {
      for (auto& p : c.value()->named_parameters()) mismatched.push_back(prefix + c.key() + "." + p.key());
      continue;
    }
    loadMatching(*c.value(), sub, prefix + c.key() + ".", mismatched);
  }
}

// A class-dependent predictor: the last cls / reg layer of an R-CNN stage or of the retina head.
// Only these may differ between the source and the target model (transfer to a dataset with
// another number of classes); they keep their fresh initialisation, as in mmdetection's transfer.
bool isClassPredictor(const std::string& name) {
  if (name.rfind("head.", 0) != 0) return false;
  return name.find(".cls.") != std::string::npos || name.find(".reg.") != std::string::npos || name.rfind("head.cls.", 0) == 0 ||
         name.rfind("head.reg.", 0) == 0;
}

void loadInitWeights(const Job& job, Detector& model) {
  if (job.initWeights.empty()) return;
  if (!fs::exists(job.initWeights)) throw JobError("initWeights", "file " + job.initWeights + " does not exist");
  if (job.initKind == "torchvision") return importTorchvisionBackbone(model->backbone, job.layout.backbone, job.initWeights);
  std::vector<std::string> mismatched;
  try {
    torch::serialize::InputArchive ar;
    ar.load_from(job.initWeights);
    if (job.initKind == "backbone")
      loadMatching(*model->backbone, ar, "backbone.", mismatched);
    else
      loadMatching(*model, ar, "", mismatched);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    throw JobError("initWeights", job.initWeights + " is not a weights file written by smnas-trainer: " + msg.substr(0, msg.find('\n')));
  }
  std::vector<std::string> reinitialised;
  for (const auto& name : mismatched) {
    if (job.initKind == "detector" && isClassPredictor(name)) {
      reinitialised.push_back(name);
      continue;
    }
    throw JobError("initWeights", job.initWeights + " does not fit this " + job.initKind + " (norm or layout differ): " + name +
                                      " is missing or has another shape");
  }
  if (!reinitialised.empty())
    logInfo("the class predictors differ in shape (another number of classes): " + std::to_string(reinitialised.size()) +
            " tensors keep their fresh initialisation");
  logInfo("initialised the " + job.initKind + " from " + job.initWeights);
}

// Detections of a whole split as COCO results; returns the JSON array.
// With several processes, batch bi of the split goes to rank bi % world (the same batches as in
// one process, so the same detections) and rank 0 gathers them in batch order.
nlohmann::json detectSplit(const Job& job, Detector& model, const CocoDataset& ds, const torch::Device& dev, Dist& dist) {
  model->eval();
  const int B = std::max(1, job.recipe.batchSize);
  const size_t n = ds.images.size();
  const size_t batches = (n + B - 1) / B;
  const size_t rank = static_cast<size_t>(dist.rank()), world = static_cast<size_t>(dist.world());
  const size_t mine = batches > rank ? (batches - rank + world - 1) / world : 0;
  const int W = job.layout.width, H = job.layout.height;
  OrderedPrefetcher<std::vector<PreparedImage>> loader(mine, job.recipe.workers, [&](size_t k) {
    const size_t bi = rank + k * world;
    std::vector<PreparedImage> v;
    for (size_t i = bi * B; i < std::min(n, (bi + 1) * B); ++i) v.push_back(prepareDetection(ds, i, W, H, 1, 1, false, job.seed, 0, false));
    return v;
  });
  std::vector<nlohmann::json> perBatch;  // this rank's batches, in order
  for (size_t k = 0; k < mine; ++k) {
    nlohmann::json out = nlohmann::json::array();
    Batch b = makeBatch(loader.get(k), W, H, dev);
    auto dets = model->detect(b.images, b.sizes);
    for (size_t i = 0; i < dets.size(); ++i) {
      const auto& m = b.meta[i];
      const float sx = static_cast<float>(b.sizes[i].first) / m.origWidth, sy = static_cast<float>(b.sizes[i].second) / m.origHeight;
      auto bx = dets[i].boxes.to(torch::kCPU), sc = dets[i].scores.to(torch::kCPU), lb = dets[i].labels.to(torch::kCPU);
      for (int64_t k = 0; k < bx.size(0); ++k) {
        float x1 = bx[k][0].item<float>() / sx, y1 = bx[k][1].item<float>() / sy;
        float x2 = bx[k][2].item<float>() / sx, y2 = bx[k][3].item<float>() / sy;
        auto r2 = [](float v) { return std::round(v * 100.0) / 100.0; };
        out.push_back({{"image_id", m.imageId},
                       {"category_id", ds.categoryIds[lb[k].item<int64_t>()]},
                       {"bbox", {r2(x1), r2(y1), r2(x2 - x1), r2(y2 - y1)}},
                       {"score", std::round(sc[k].item<double>() * 1e5) / 1e5}});
      }
    }
    perBatch.push_back(std::move(out));
  }
  nlohmann::json out = nlohmann::json::array();
  if (!dist.active()) {
    for (auto& b : perBatch)
      for (auto& d : b) out.push_back(std::move(d));
    return out;
  }
  auto gathered = dist.allgather(nlohmann::json(perBatch).dump(), "detection gather");
  std::vector<nlohmann::json> fromRank;
  for (auto& g : gathered) fromRank.push_back(nlohmann::json::parse(g));
  for (size_t bi = 0; bi < batches; ++bi)
    for (auto& d : fromRank[bi % world][bi / world]) out.push_back(std::move(d));
  return out;
}

// Writes detections_<split>.json and, with an evaluator, metrics.json; emits the metrics message.
// Every rank detects its share of the split; rank 0 alone writes and runs the evaluator.
nlohmann::json evaluateSplit(const Job& job, Detector& model, const torch::Device& dev, nlohmann::json& result, Dist& dist) {
  CocoDataset val = loadCoco(job.dataRoot, job.valSplit);
  checkClasses(job, val);
  logInfo("evaluating on " + std::to_string(val.images.size()) + " images of split '" + job.valSplit + "'" +
          (dist.active() ? " (sharded over " + std::to_string(dist.world()) + " processes)" : ""));
  auto dets = detectSplit(job, model, val, dev, dist);
  if (!dist.root()) return nullptr;
  std::string detsPath = (fs::path(job.outDir) / ("detections_" + job.valSplit + ".json")).string();
  writeFileAtomic(detsPath, dets.dump());
  result["detections"] = detsPath;
  if (job.evaluator.empty()) {
    logWarn("no evaluator in the job: detections written, no metrics");
    return nullptr;
  }
  auto ev = runEvaluator(job.evaluator, val.annotationFile, detsPath);
  nlohmann::json stats = ev["stats"];
  writeFileAtomic((fs::path(job.outDir) / "metrics.json").string(),
                  nlohmann::json({{"split", job.valSplit}, {"stats", stats}}).dump(2) + "\n");
  emit({{"type", "metrics"}, {"split", job.valSplit}, {"stats", stats}});
  result["metrics"] = {{"stats", stats}};
  return stats;
}

// The detection side of the shared training loop: scale jitter and flip, the detector's losses.
class DetectionTask : public TrainTask {
 public:
  DetectionTask(const Job& job, const CocoDataset& ds, Detector& model, const torch::Device& dev)
      : job_(job), ds_(ds), model_(model), dev_(dev) {}
  void beginEpoch(int64_t epoch, std::vector<std::vector<size_t>> batches) override {
    loader_.reset();  // joins the previous epoch's threads before their batches go
    batches_ = std::move(batches);
    const Recipe& r = job_.recipe;
    loader_ = std::make_unique<OrderedPrefetcher<std::vector<PreparedImage>>>(batches_.size(), r.workers, [this, epoch, &r](size_t k) {
      std::vector<PreparedImage> v;
      for (size_t i : batches_[k])
        v.push_back(prepareDetection(ds_, i, job_.layout.width, job_.layout.height, r.scaleJitter[0], r.scaleJitter[1], r.flip, job_.seed,
                                     epoch, true));
      return v;
    });
    model_->train();
    applyBackboneTraining(model_->backbone, r.backbone);
  }
  std::map<std::string, torch::Tensor> losses(int64_t k, const AmpSettings& amp, int64_t& images) override {
    Batch b = makeBatch(loader_->get(static_cast<size_t>(k)), 32, 32, dev_);
    images = b.images.size(0);
    AutocastGuard autocast(amp.device, amp.dtype, amp.enabled);
    return model_->losses(b.images, b.boxes, b.labels, b.sizes);
  }

 private:
  const Job& job_;
  const CocoDataset& ds_;
  Detector& model_;
  torch::Device dev_;
  std::vector<std::vector<size_t>> batches_;
  std::unique_ptr<OrderedPrefetcher<std::vector<PreparedImage>>> loader_;
};

int train(const Job& job, const torch::Device& dev, Dist& dist) {
  CocoDataset ds = loadCoco(job.dataRoot, job.trainSplit);
  checkClasses(job, ds);
  const Recipe& r = job.recipe;
  Detector model(job.layout, r);
  loadInitWeights(job, model);
  applyBackboneTraining(model->backbone, r.backbone);  // frozen stages: not in the optimiser
  model->to(dev);
  auto opt = makeSgd(*model, r.optimizer);
  const int64_t N = static_cast<int64_t>(ds.images.size());
  const int64_t G = static_cast<int64_t>(r.batchSize) * dist.world();
  const int64_t ipe = (N + G - 1) / G;
  int64_t total = ipe * r.epochs;
  if (r.maxIterations > 0) total = std::min(total, r.maxIterations);

  TrainPosition pos;
  nlohmann::json resumed = resumeAndSync(job, *model, *opt, pos, dist);
  emitStarted(job, resumed, *model);
  logInfo("training " + job.arch + " on " + std::to_string(N) + " images: " + std::to_string(total) + " iterations, batch " +
          std::to_string(r.batchSize) + (dist.active() ? " x " + std::to_string(dist.world()) + " processes" : ""));
  const double t0 = wallSeconds();
  DetectionTask task(job, ds, model, dev);
  auto outcome = runTrainLoop(job,
                              TrainLoopOptions()
                                  .itersPerEpoch(ipe)
                                  .totalIterations(total)
                                  .emitEvery(std::max<int64_t>(1, total / 300))
                                  .profile(std::getenv("SMNAS_PROFILE") != nullptr),
                              *model, *opt, task, pos, N, dev, dist);
  if (outcome.diverged) {
    emit({{"type", "result"},
          {"kind", "diverged"},
          {"command", job.command},
          {"wallSeconds", wallSeconds() - t0},
          {"message", outcome.message}});
    return kDiverged;
  }
  std::string weights = (fs::path(job.outDir) / "weights").string();
  if (dist.root()) {
    torch::save(model, weights + ".tmp");
    fs::rename(weights + ".tmp", weights);
    saveCheckpoint(job, *model, *opt, outcome.position);  // the final position: a resumed finished run only re-evaluates
  }
  // images/s of the whole training: every process trained the same number of global batches
  nlohmann::json result = {{"type", "result"},
                           {"kind", "ok"},
                           {"command", job.command},
                           {"weights", weights},
                           {"imagesPerSec", static_cast<double>(outcome.imagesSeen) * dist.world() / std::max(1e-9, outcome.seconds)}};
  evaluateSplit(job, model, dev, result, dist);
  result["wallSeconds"] = wallSeconds() - t0;
  result["peakMemoryMB"] = peakMemoryMB(dev);  // CPU: peak RSS; CUDA: allocator peak since the training loop started
  emit(result);
  return kOk;
}

int evalCmd(const Job& job, const torch::Device& dev, Dist& dist) {
  Detector model(job.layout, job.recipe);
  Job j = job;
  j.initKind = "detector";
  loadInitWeights(j, model);
  model->to(dev);
  emitStarted(job, nullptr, *model);
  const double t0 = wallSeconds();
  nlohmann::json result = {{"type", "result"}, {"kind", "ok"}, {"command", job.command}};
  resetPeakMemory(dev);
  evaluateSplit(job, model, dev, result, dist);
  result["wallSeconds"] = wallSeconds() - t0;
  result["peakMemoryMB"] = peakMemoryMB(dev);
  emit(result);
  return kOk;
}

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  double pos = q * (v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos)), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

// The indices of a seeded sample of `k` of `n` images (a partial Fisher-Yates shuffle driven by
// std::mt19937_64, whose output the standard fixes: the same sample on every platform).
std::vector<size_t> seededSample(size_t n, size_t k, uint64_t seed) {
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), size_t{0});
  std::mt19937_64 gen(seed ^ 0x6c6174656e6379ULL);  // "latency"
  k = std::min(k, n);
  for (size_t i = 0; i < k; ++i) {
    size_t j = i + static_cast<size_t>(gen() % (n - i));
    std::swap(idx[i], idx[j]);
  }
  idx.resize(k);
  return idx;
}

// The latency protocol (job.bench.images > 0, docs/campaign.md "Latency"): the model with its
// weights, a seeded sample of validation images prepared exactly as evaluation prepares them
// (decoded and resized before timing), batch 1, the recipe's test post-processing (score
// threshold, NMS, top-k: Detector::detect, the path of eval). Warm-up forwards, then `rounds`
// rounds of `iterations` timed forwards cycling through the sample; every forward's time and
// detection count is reported and the statistics are computed by the caller
// (activities/latency-stats.ts), so another backend reports the same figures from its own timings.
int benchSample(const Job& job, Detector& model, const torch::Device& dev, double t0) {
  if (!job.hasData) throw JobError("bench.images", "a latency sample of validation images needs the job's data");
  CocoDataset val = loadCoco(job.dataRoot, job.valSplit);
  checkClasses(job, val);
  if (val.images.empty()) throw BadData(val.annotationFile, val.annotationFile + " has no images to benchmark on");
  const int W = job.layout.width, H = job.layout.height;
  std::vector<size_t> pick = seededSample(val.images.size(), static_cast<size_t>(job.benchImages), static_cast<uint64_t>(job.seed));
  std::vector<Batch> sample;
  nlohmann::json files = nlohmann::json::array();
  for (size_t i : pick) {
    std::vector<PreparedImage> one;
    one.push_back(prepareDetection(val, i, W, H, 1, 1, false, job.seed, 0, false));
    sample.push_back(makeBatch(std::move(one), W, H, dev));
    files.push_back(val.images[i].file);
  }
  logInfo("bench: " + std::to_string(sample.size()) + " validation images of split '" + job.valSplit + "' at " + std::to_string(W) + "x" +
          std::to_string(H) + ", " + std::to_string(job.benchWarmup) + " warm-up forwards, " + std::to_string(job.benchRounds) +
          " rounds of " + std::to_string(job.benchIterations));
  const bool cuda = dev.is_cuda();
  auto sync = [&] {
    if (cuda) torch::cuda::synchronize(dev.index());
  };
  size_t next = 0;
  auto forward = [&](int64_t& detections) {
    const Batch& b = sample[next % sample.size()];
    ++next;
    auto d = model->detect(b.images, b.sizes);
    auto boxes = d[0].boxes.to(torch::kCPU);  // post-processing done and results on the host
    sync();
    detections = boxes.size(0);
  };
  int64_t dets = 0;
  for (int i = 0; i < job.benchWarmup; ++i) forward(dets);
  sync();
  resetPeakMemory(dev);  // CUDA: the peak of the timed forwards alone
  nlohmann::json rounds = nlohmann::json::array(), detections = nlohmann::json::array();
  next = 0;  // every round starts at the sample's first image: rounds time the same images
  for (int r = 0; r < job.benchRounds; ++r) {
    if (gStopRequested) throw Interrupted("bench interrupted by a signal");
    std::vector<double> ms;
    std::vector<int64_t> counts;
    for (int i = 0; i < job.benchIterations; ++i) {
      auto s = std::chrono::steady_clock::now();
      forward(dets);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count());
      counts.push_back(dets);
    }
    rounds.push_back(ms);
    if (r == 0) detections = counts;
    next = 0;
  }
  nlohmann::json timings = {{"device", job.device},
                            {"warmup", job.benchWarmup},
                            {"iterations", job.benchIterations},
                            {"rounds", rounds},
                            {"images", files},
                            {"detections", detections},
                            {"inputWidth", W},
                            {"inputHeight", H},
                            {"weights", job.initWeights.empty() ? nlohmann::json(nullptr) : nlohmann::json(job.initWeights)},
                            {"peakMemoryMB", peakMemoryMB(dev)},
                            {"environment", runtimeEnvironment(dev)}};
  emit({{"type", "result"},
        {"kind", "ok"},
        {"command", "bench"},
        {"wallSeconds", wallSeconds() - t0},
        {"timings", timings},
        {"peakMemoryMB", peakMemoryMB(dev)}});
  return kOk;
}

int bench(const Job& job, const torch::Device& dev) {
  Detector model(job.layout, job.recipe);
  if (!job.initWeights.empty()) {
    Job j = job;
    loadInitWeights(j, model);
  }
  model->to(dev);
  model->eval();
  emitStarted(job, nullptr, *model);
  const double t0 = wallSeconds();
  if (job.benchImages > 0) return benchSample(job, model, dev, t0);
  torch::manual_seed(job.seed);
  const int W = job.layout.width, H = job.layout.height;
  torch::Tensor image;
  std::vector<std::pair<int, int>> sizes;
  std::string input = "noise";
  if (job.hasData) {
    // the first image of the validation split, resized, normalised and padded exactly as evaluation does
    CocoDataset val = loadCoco(job.dataRoot, job.valSplit);
    if (val.images.empty()) throw BadData(val.annotationFile, val.annotationFile + " has no images to benchmark on");
    std::vector<PreparedImage> one;
    one.push_back(prepareDetection(val, 0, W, H, 1, 1, false, job.seed, 0, false));
    input = val.imageDir + "/" + val.images[0].file;
    Batch b = makeBatch(std::move(one), W, H, dev);
    image = b.images;
    sizes = b.sizes;
  } else {
    image = ((torch::rand({1, 3, H, W}) * 255 - 120) / 58).to(dev);  // a fixed noise image at the input size
    sizes = {{W, H}};
  }
  logInfo("bench input: " + input + " (" + std::to_string(image.size(3)) + "x" + std::to_string(image.size(2)) + ")");
  const bool cuda = dev.is_cuda();
  auto sync = [&] {
    if (cuda) torch::cuda::synchronize(dev.index());
  };
  for (int i = 0; i < job.benchWarmup; ++i) model->detect(image, sizes);
  sync();
  resetPeakMemory(dev);  // CUDA: the peak of the timed forwards alone
  std::vector<double> ms;
  for (int i = 0; i < job.benchIterations; ++i) {
    auto s = std::chrono::steady_clock::now();
    auto d = model->detect(image, sizes);
    d[0].boxes.to(torch::kCPU);  // post-processing done and results on the host
    sync();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count());
  }
  double mean = std::accumulate(ms.begin(), ms.end(), 0.0) / ms.size();
  double var = 0;
  for (double v : ms) var += (v - mean) * (v - mean);
  double stdv = ms.size() > 1 ? std::sqrt(var / (ms.size() - 1)) : 0;
  nlohmann::json figures = {{"device", job.device},
                            {"warmup", job.benchWarmup},
                            {"iterations", job.benchIterations},
                            {"medianMs", percentile(ms, 0.5)},
                            {"meanMs", mean},
                            {"p10Ms", percentile(ms, 0.1)},
                            {"p90Ms", percentile(ms, 0.9)},
                            {"stdMs", stdv},
                            {"peakMemoryMB", peakMemoryMB(dev)},
                            {"input", input},
                            {"environment", runtimeEnvironment(dev)}};
  emit({{"type", "result"},
        {"kind", "ok"},
        {"command", "bench"},
        {"wallSeconds", wallSeconds() - t0},
        {"bench", figures},
        {"peakMemoryMB", peakMemoryMB(dev)}});
  return kOk;
}

// `export`: the detector built from the job's layout and recipe exactly as train/eval build it,
// with the trained weights, written as an ONNX model by its modules' exportOnnx methods. With
// data and export.parityImages, the first images of the validation split are prepared as
// evaluation prepares them and written under outDir/parity/ with the libtorch detections of the
// same tensors (test/native/onnx-export.test.ts compares onnxruntime's detections with them).
int exportCmd(const Job& job, const torch::Device& dev) {
  const ExportSettings& x = job.exportSettings;
  Detector model(job.layout, job.recipe);
  if (job.initWeights.empty()) {
    logWarn("no initWeights: exporting the freshly initialised detector (seed " + std::to_string(job.seed) + ")");
  } else {
    Job j = job;
    j.initKind = "detector";
    loadInitWeights(j, model);
  }
  model->to(torch::kCPU);
  model->eval();
  emitStarted(job, nullptr, *model);
  const double t0 = wallSeconds();
  OnnxGraph g(x.opset);
  std::vector<int64_t> dims = {1, 3, x.dynamic ? -1 : x.height, x.dynamic ? -1 : x.width};
  auto image = g.input("image", OnnxType::Float, dims, {"", "", "height", "width"});
  auto sizeIn = g.input("image_size", OnnxType::Float, {2});
  auto gatherScalar = [&](int i) { return g.op("Gather", {sizeIn, g.scalarInt(i)}, {{"axis", int64_t{0}}}); };
  auto dets = model->exportOnnx(g, image, OnnxImageSize{gatherScalar(0), gatherScalar(1)});
  g.output(dets.boxes, "boxes", OnnxType::Float, {-1, 4}, {"detections"});
  g.output(dets.scores, "scores", OnnxType::Float, {-1}, {"detections"});
  g.output(dets.labels, "labels", OnnxType::Int64, {-1}, {"detections"});
  const std::string input = x.dynamic ? "dynamic" : std::to_string(x.height) + "x" + std::to_string(x.width);
  const std::map<std::string, std::string> meta = {{"smnas.arch", job.arch},
                                                   {"smnas.input", input},
                                                   {"smnas.numClasses", std::to_string(job.numClasses)},
                                                   {"smnas.mean", "123.675,116.28,103.53"},
                                                   {"smnas.std", "58.395,57.12,57.375"}};
  const std::string bytes = g.serialize("smnas_detector", meta);
  fs::path out(x.out);
  if (out.has_parent_path()) fs::create_directories(out.parent_path());
  writeFileAtomic(x.out, bytes);
  logInfo("wrote " + x.out + " (" + std::to_string(g.nodeCount()) + " nodes, " + std::to_string(bytes.size()) + " bytes, input " + input +
          ")");
  nlohmann::json figures = {{"model", x.out}, {"input", input}, {"opset", x.opset}, {"nodes", g.nodeCount()}, {"bytes", bytes.size()}};
  if (x.parityImages > 0 && job.hasData) {
    CocoDataset val = loadCoco(job.dataRoot, job.valSplit);
    fs::path dir = fs::path(job.outDir) / "parity";
    fs::create_directories(dir);
    nlohmann::json records = nlohmann::json::array();
    const size_t n = std::min(val.images.size(), static_cast<size_t>(x.parityImages));
    for (size_t i = 0; i < n; ++i) {
      std::vector<PreparedImage> one;
      one.push_back(prepareDetection(val, i, job.layout.width, job.layout.height, 1, 1, false, job.seed, 0, false));
      // a fixed-size model takes exactly its input size; a dynamic one the batch evaluation makes
      Batch b = makeBatch(std::move(one), x.dynamic ? job.layout.width : x.width, x.dynamic ? job.layout.height : x.height, dev);
      if (!x.dynamic && (b.images.size(2) != x.height || b.images.size(3) != x.width))
        throw JobError("export.inputSize", "validation image " + val.images[i].file + " needs " + std::to_string(b.images.size(2)) + "x" +
                                               std::to_string(b.images.size(3)) +
                                               " after resizing to the layout, more than the export size");
      auto d = model->detect(b.images.to(torch::kCPU), b.sizes)[0];
      auto img = b.images.to(torch::kCPU).contiguous();
      const std::string file = "input-" + std::to_string(i) + ".bin";
      writeFileAtomic((dir / file).string(), std::string(static_cast<const char*>(img.data_ptr()), static_cast<size_t>(img.nbytes())));
      auto bx = d.boxes.to(torch::kCPU).contiguous(), sc = d.scores.to(torch::kCPU).contiguous(),
           lb = d.labels.to(torch::kCPU).contiguous();
      records.push_back({{"file", file},
                         {"image", val.images[i].file},
                         {"dims", img.sizes().vec()},
                         {"size", {b.sizes[0].first, b.sizes[0].second}},
                         {"boxes", std::vector<float>(bx.data_ptr<float>(), bx.data_ptr<float>() + bx.numel())},
                         {"scores", std::vector<float>(sc.data_ptr<float>(), sc.data_ptr<float>() + sc.numel())},
                         {"labels", std::vector<int64_t>(lb.data_ptr<int64_t>(), lb.data_ptr<int64_t>() + lb.numel())}});
    }
    writeFileAtomic((dir / "parity.json").string(), records.dump());
    figures["parity"] = (dir / "parity.json").string();
  }
  emit({{"type", "result"}, {"kind", "ok"}, {"command", "export"}, {"wallSeconds", wallSeconds() - t0}, {"export", figures}});
  return kOk;
}

int describe(const Job& job) {
  Detector model(job.layout, job.recipe);
  emitStarted(job, nullptr, *model);
  // the RoI head is costed for 1000 RoIs, like search/cost.ts (DEFAULT_ROIS, mmdet test max_per_img)
  auto costs = describeModel(model, job.layout, 1000);
  nlohmann::json modules = nlohmann::json::object();
  for (auto& [k, c] : costs) modules[k] = {{"params", c.params}, {"flops", c.flops}};
  emit({{"type", "result"}, {"kind", "ok"}, {"command", "describe"}, {"wallSeconds", wallSeconds()}, {"modules", modules}});
  return kOk;
}

}  // namespace

int runDetection(const Job& jobIn) {
  auto p = setupTrainerProcess(jobIn, /*multiProcess=*/jobIn.command == "train" || jobIn.command == "eval");
  const Job& job = p.job;
  const torch::Device dev = p.device;
  if (job.command == "describe") return describe(job);
  fs::create_directories(job.outDir);
  Dist dist(p.dist, dev);
  if (job.command == "train") return train(job, dev, dist);
  if (job.command == "eval") return evalCmd(job, dev, dist);
  if (job.command == "export") return exportCmd(job, dev);
  return bench(job, dev);
}

}  // namespace smnas
