#include "train_loop.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "autocast.hpp"
#include "data.hpp"
#include "protocol.hpp"
#include "sync_bn.hpp"

namespace smnas {

std::vector<std::vector<size_t>> shardEpoch(const std::vector<size_t>& order, int64_t firstBatch, int64_t count, int64_t batchSize,
                                            int rank, int world) {
  const int64_t N = static_cast<int64_t>(order.size()), G = batchSize * world;
  std::vector<std::vector<size_t>> out;
  for (int64_t b = firstBatch; b < firstBatch + count; ++b) {
    const int64_t start = b * G, m = std::min(N, (b + 1) * G) - start;
    // an even split of the batch over the ranks: r * batchSize.. for a full one
    const int64_t lo = start + m * rank / world, hi = start + m * (rank + 1) / world;
    std::vector<size_t> v;
    for (int64_t i = lo; i < hi; ++i) v.push_back(order[i]);
    out.push_back(std::move(v));
  }
  return out;
}

namespace {

// Fault injection for bench/fault-matrix.ts's `nan-loss` row, never set in production:
// SMNAS_FAULT_NAN_LOSS=<iteration>:<marker file> makes the loss NaN at that iteration in the first
// trainer that creates the marker file (O_EXCL), so exactly one training of a campaign diverges the
// way a real one does (same check, same result line, same exit code).
struct NanLossFault {
  int64_t iteration = -1;
  std::string marker;
  static NanLossFault fromEnv() {
    NanLossFault f;
    const char* v = std::getenv("SMNAS_FAULT_NAN_LOSS");
    if (!v || !*v) return f;
    const std::string s(v);
    const auto colon = s.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
      throw JobError("SMNAS_FAULT_NAN_LOSS", "expected <iteration>:<marker file>, got '" + s + "'");
    try {
      f.iteration = std::stoll(s.substr(0, colon));
    } catch (const std::exception&) {
      throw JobError("SMNAS_FAULT_NAN_LOSS", "iteration '" + s.substr(0, colon) + "' is not a number");
    }
    f.marker = s.substr(colon + 1);
    return f;
  }
  // true once, in the one process that claims the marker
  bool fires(int64_t iteration) const {
    if (iteration != this->iteration) return false;
    const int fd = ::open(marker.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0) return false;
    ::close(fd);
    return true;
  }
};

}  // namespace

TrainerProcess setupTrainerProcess(const Job& jobIn, bool multiProcess) {
  Job job = jobIn;
  const DistOptions dist = distOptionsFor(job);
  job.distributed.worldSize = dist.worldSize();
  job.distributed.rank = dist.rank();
  if (dist.worldSize() > 1 && !multiProcess) throw JobError("distributed.worldSize", "'" + job.command + "' runs in one process");
  setProcessRank(dist.rank(), dist.worldSize());
  torch::Device device = setupDevice(job, dist.localRank());
  return {std::move(job), dist, device};
}

nlohmann::json resumeAndSync(const Job& job, torch::nn::Module& model, torch::optim::SGD& opt, TrainPosition& pos, Dist& dist) {
  nlohmann::json resumed = nullptr;
  if (job.resume) {
    std::string path;
    if (loadNewestCheckpoint(job, model, opt, pos, path)) {
      const int64_t G = static_cast<int64_t>(job.recipe.batchSize) * dist.world();
      if (pos.globalBatch > 0 && pos.globalBatch != G)
        throw JobError("recipe.batchSize", "checkpoint " + path + " was written with a global batch of " + std::to_string(pos.globalBatch) +
                                               " images; this job has " + std::to_string(G) + " (batchSize " +
                                               std::to_string(job.recipe.batchSize) + " x " + std::to_string(dist.world()) +
                                               " processes): resuming needs the same global batch");
      resumed = {{"path", path}, {"epoch", pos.epoch}, {"iteration", pos.iteration}};
      logInfo("resumed from " + path + " at iteration " + std::to_string(pos.iteration));
    } else {
      logInfo("no usable checkpoint in " + job.outDir + "/checkpoints: starting from the beginning");
    }
  }
  if (dist.active()) {
    // every rank must continue from the same position: a different one means the checkpoints
    // directory is not shared between the hosts
    auto lo = torch::tensor({-pos.iteration}, torch::kLong), hi = torch::tensor({pos.iteration}, torch::kLong);
    dist.allreduceMax(lo, "resume position check");
    dist.allreduceMax(hi, "resume position check");
    if (-lo.item<int64_t>() != hi.item<int64_t>())
      throw JobError("outDir", "the processes found different checkpoints in " + job.outDir + "/checkpoints (iterations " +
                                   std::to_string(-lo.item<int64_t>()) + " to " + std::to_string(hi.item<int64_t>()) +
                                   "): the output directory must be shared by every host");
    std::vector<torch::Tensor> state;
    for (auto& p : model.parameters()) state.push_back(p);
    for (auto& b : model.buffers()) state.push_back(b);
    dist.broadcast(state, "weight broadcast");
  }
  return resumed;
}

TrainOutcome runTrainLoop(const Job& job, const TrainLoopOptions& options, torch::nn::Module& model, torch::optim::SGD& opt,
                          TrainTask& task, TrainPosition pos, int64_t datasetSize, const torch::Device& dev, Dist& dist) {
  const Recipe& r = job.recipe;
  const int64_t ipe = options.itersPerEpoch(), total = options.totalIterations();
  const int64_t G = static_cast<int64_t>(r.batchSize) * dist.world();
  const double lrScale = r.optimizer.lrReferenceBatch > 0 ? static_cast<double>(G) / r.optimizer.lrReferenceBatch : 1.0;
  // SyncBN: the BN statistics all-reduced inside forward and backward; the weighting then goes on
  // the loss (the backward's cross-process terms need every rank's weighted gradient)
  const bool syncBn = dist.active() && r.syncBn;
  if (syncBn) {
    setSyncBatchNorm([&dist](torch::Tensor& t) { dist.allreduceSum(t, "SyncBN all-reduce"); });
    dist.overlapWithBackward(false);
    logInfo("SyncBN: BatchNorm statistics over all " + std::to_string(dist.world()) + " processes");
  }
  struct SyncBnOff {
    ~SyncBnOff() { setSyncBatchNorm(nullptr); }
  } syncBnOff;
  if (dist.active() && r.norm == NormKind::BN && !syncBn)
    logWarn("BN with " + std::to_string(dist.world()) + " processes: each normalises with its own batch of " + std::to_string(r.batchSize) +
            " (no SyncBN); frozen statistics (normEval) or GN / GN+WS are unaffected");
  if (lrScale != 1.0)
    logInfo("linear lr scaling: global batch " + std::to_string(G) + " / reference " + std::to_string(r.optimizer.lrReferenceBatch));

  AmpSettings amp;
  amp.device = dev.type();
  amp.enabled = autocastDtypeFor(r.mixedPrecision, amp.dtype);
  if (amp.enabled) logInfo("mixed precision: " + r.mixedPrecision + " autocast of the forward pass (losses in fp32)");
  LossScaler scaler(amp.enabled && amp.dtype == at::kHalf);
  const auto params = model.parameters();
  dist.attachGradients(params);
  resetPeakMemory(dev);

  const NanLossFault nanFault = NanLossFault::fromEnv();
  TrainOutcome out;
  const double t0 = wallSeconds();
  double lastCkpt = t0, lastEmit = 0, emitWindowStart = t0, backwardMs = 0;
  int64_t imagesSinceEmit = 0;

  while (pos.iteration < total) {
    const int64_t epoch = pos.epoch, first = pos.batchInEpoch;
    auto order = epochOrder(static_cast<size_t>(datasetSize), job.seed, epoch);
    const int64_t batches = std::min<int64_t>(ipe - first, total - pos.iteration);
    auto shards = shardEpoch(order, first, batches, r.batchSize, dist.rank(), dist.world());
    std::vector<int64_t> globalSizes;
    for (int64_t k = 0; k < batches; ++k) globalSizes.push_back(std::min<int64_t>(datasetSize, (first + k + 1) * G) - (first + k) * G);
    for (auto& s : shards)
      if (s.empty())
        throw JobError("distributed.worldSize",
                       "the last batch of an epoch (" + std::to_string(datasetSize % G) +
                           " images) leaves a process without images: choose a batch size or process count that divides the data set (" +
                           std::to_string(datasetSize) + " images) into batches of at least one image per process");
    task.beginEpoch(epoch, std::move(shards));
    for (int64_t k = 0; k < batches; ++k) {
      // sampling randomness per iteration from (seed, iteration): resuming reproduces it exactly
      torch::manual_seed(mixSeed(job.seed, 0x5A5A, pos.iteration));
      const double lr = learningRate(r, pos.iteration, total, ipe) * lrScale;
      setLr(opt, lr);
      int64_t images = 0;
      auto losses = task.losses(k, amp, images);
      // this rank's share of the global batch: the gradients (and losses) of the ranks add up to
      // those of the whole batch in one process
      const double weight = dist.active() ? static_cast<double>(images) / static_cast<double>(globalSizes[k]) : 1.0;
      torch::Tensor loss = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat).device(dev));
      for (auto& [name, v] : losses) loss = loss + v.to(torch::kFloat);
      // the loss terms of the whole global batch, and whether any process was asked to stop:
      // every rank takes the same decisions (diverged, interrupted) at the same iteration
      std::map<std::string, double> terms;
      double totalLoss = 0;
      bool stop = gStopRequested.load();
      if (dist.active()) {
        std::vector<torch::Tensor> parts;
        for (auto& [name, v] : losses) parts.push_back(v.detach().to(torch::kFloat).reshape({1}) * weight);
        parts.push_back(torch::full({1}, stop ? 1.0f : 0.0f, parts[0].options()));
        auto vec = torch::cat(parts);
        dist.allreduceSum(vec, "loss all-reduce");
        vec = vec.cpu();
        size_t i = 0;
        for (auto& [name, v] : losses) {
          terms[name] = vec[static_cast<int64_t>(i++)].item<double>();
          totalLoss += terms[name];
        }
        stop = vec[static_cast<int64_t>(i)].item<double>() > 0;
      } else {
        for (auto& [name, v] : losses) terms[name] = v.item<double>();
        totalLoss = loss.item<double>();
      }
      // one process only (the ranks of a data-parallel training must agree on divergence)
      if (!dist.active() && nanFault.fires(pos.iteration + 1)) {
        logWarn("SMNAS_FAULT_NAN_LOSS: injecting a NaN loss at iteration " + std::to_string(pos.iteration + 1));
        terms["injected_fault"] = std::numeric_limits<double>::quiet_NaN();
        totalLoss = std::numeric_limits<double>::quiet_NaN();
      }
      if (!std::isfinite(totalLoss)) {
        std::string which;
        for (auto& [name, v] : terms)
          if (!std::isfinite(v)) which += (which.empty() ? "" : ", ") + name;
        out.diverged = true;
        out.message =
            "non-finite loss (" + which + ") at iteration " + std::to_string(pos.iteration + 1) + ", epoch " + std::to_string(epoch);
        logWarn(out.message);
        out.position = pos;
        out.seconds = wallSeconds() - t0;
        return out;
      }
      clearGradients(params);
      auto tb = std::chrono::steady_clock::now();
      dist.beginBackward(syncBn ? 1.0 : weight);
      scaler.scale(syncBn ? loss * weight : loss).backward();
      dist.finishBackward();  // the gradients of the global batch on every rank
      backwardMs += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - tb).count();
      scaler.step(opt, params, r.optimizer.clipGradNorm);  // fp16: inf/NaN gradients skip this step
      pos.stepDone(first + k, ipe);
      out.imagesSeen += images;
      imagesSinceEmit += globalSizes[k];
      const double now = wallSeconds();
      if (pos.iteration % options.emitEvery() == 0 || pos.iteration == total || now - lastEmit > 2) {
        nlohmann::json termsJson = nlohmann::json::object();
        for (auto& [name, v] : terms) termsJson[name] = v;
        emit({{"type", "progress"},
              {"epoch", epoch},
              {"iteration", pos.iteration},
              {"totalIterations", total},
              {"lr", lr},
              {"loss", totalLoss},
              {"losses", termsJson},
              {"imagesPerSec", imagesSinceEmit / std::max(1e-9, now - emitWindowStart)}});
        lastEmit = emitWindowStart = now;
        imagesSinceEmit = 0;
      }
      if (stop) {
        std::string where = "stopped by signal at iteration " + std::to_string(pos.iteration);
        if (dist.root()) where += "; checkpoint " + saveCheckpoint(job, model, opt, pos);
        throw Interrupted(where);
      }
      // checkpoints: rank 0 alone (every rank holds the same weights and optimiser state)
      const bool due = (job.ckptEveryIterations > 0 && pos.iteration % job.ckptEveryIterations == 0) ||
                       (job.ckptEverySeconds > 0 && now - lastCkpt >= job.ckptEverySeconds);
      if (due && pos.iteration < total) {
        if (dist.root()) saveCheckpoint(job, model, opt, pos);
        lastCkpt = wallSeconds();
      }
    }
  }
  if (dist.active()) {
    // BN running statistics are buffers that each process updates from its own batches (without
    // SyncBN): take rank 0's everywhere, as torch DDP's broadcast_buffers does, so that the
    // sharded evaluation after training sees the weights that rank 0 saves. Without this, toy-train
    // (BN) with 2 processes evaluated AP 0.016 sharded against 0.023 for its saved weights
    // (test/native/data-parallel.test.ts, detection).
    dist.broadcast(model.buffers(), "BN statistics broadcast");
  }
  out.seconds = wallSeconds() - t0;
  out.position = pos;
  if (options.profile()) logInfo("[profile] backward " + std::to_string(backwardMs) + " ms of " + std::to_string(out.seconds * 1000));
  if (scaler.enabled)
    logInfo("fp16 loss scale " + std::to_string(scaler.factor) + ", " + std::to_string(scaler.skippedSteps) + " steps skipped");
  return out;
}

}  // namespace smnas
