// What train and classify-train share: device and thread set-up, the learning-rate schedule,
// SGD parameter groups, atomic checkpoints with resume, SIGTERM handling, and the evaluator call.
#pragma once
#include <torch/torch.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "job.hpp"

namespace smnas {

extern std::atomic<bool> gStopRequested;  // set by SIGTERM / SIGINT
void installSignalHandlers();

// Sets the thread count (0 -> all cores, fixed so CPU runs are reproducible) and returns the device:
// for 'cuda:<i>', CUDA device i + localRank (a data-parallel process's index on its host).
torch::Device setupDevice(const Job& job, int localRank = 0);
// `started`, with the learnable parameter count of the model the command built (search/cost.ts params)
void emitStarted(const Job& job, const nlohmann::json& resumedFrom, torch::nn::Module& model);

// lr at a 0-based global iteration (per-iteration warm-up, cosine or step-by-epoch).
double learningRate(const Recipe& r, int64_t iter, int64_t total, int64_t itersPerEpoch);

// SGD with momentum; with noDecayOnNormAndBias, 1-D parameters (norm affine, biases) get no decay.
std::unique_ptr<torch::optim::SGD> makeSgd(torch::nn::Module& model, const Optimizer& o);
void setLr(torch::optim::SGD& opt, double lr);

struct TrainPosition {
  int64_t iteration = 0;  // completed iterations
  int64_t epoch = 0;      // epoch of the next iteration
  int64_t batchInEpoch = 0;
  // images per iteration over all processes when the checkpoint was written (0: not recorded,
  // checkpoints from before data-parallel training); a resume needs the same global batch
  int64_t globalBatch = 0;

  // One optimiser step done: batch `batchIndex` (0-based within the epoch) finished; rolls over
  // to the next epoch after the last of `itersPerEpoch` batches. Shared by every training loop so
  // checkpoints record the same position semantics.
  void stepDone(int64_t batchIndex, int64_t itersPerEpoch) {
    iteration++;
    batchInEpoch = batchIndex + 1;
    if (batchInEpoch >= itersPerEpoch) {
      epoch++;
      batchInEpoch = 0;
    }
  }
};

// Writes <outDir>/checkpoints/ckpt-<iteration>.pt atomically (tmp + rename) with its SHA-256 sidecar
// ckpt-<iteration>.pt.sha256 (checksum.hpp; written before the checkpoint is renamed into place),
// keeps the newest `keep`, emits a checkpoint message and returns the path. A failed write (full
// disk, read-only filesystem) removes its temp files and throws naming the checkpoint.
std::string saveCheckpoint(const Job& job, torch::nn::Module& model, torch::optim::Optimizer& opt, const TrainPosition& pos);
// Loads the newest checkpoint whose checksum matches its sidecar (one without a sidecar, an older
// trainer's, is loaded unverified) and that reads back completely; the others are skipped with a
// warning and listed in the next `started` message (skippedCheckpoints: path, reason). Returns
// false when none is usable.
bool loadNewestCheckpoint(const Job& job, torch::nn::Module& model, torch::optim::Optimizer& opt, TrainPosition& pos, std::string& path);

// Runs the job's evaluator argv + --gt/--dets/--json and returns its {"stats": {...}} line.
nlohmann::json runEvaluator(const std::vector<std::string>& argv, const std::string& gt, const std::string& dets);

// Peak memory in MB: on a CUDA device the caching allocator's peak of allocated bytes
// (torch.cuda.max_memory_allocated) since the last resetPeakMemory(dev); on CPU (or a build
// without CUDA headers) the process's peak RSS (resetPeakMemory is then a no-op).
double peakMemoryMB(const torch::Device& dev);
void resetPeakMemory(const torch::Device& dev);
// True when peakMemoryMB(dev) reads the CUDA allocator (for the message's meaning).
bool peakMemoryIsDevice(const torch::Device& dev);

// fp16 training without a C++ GradScaler: dynamic loss scaling with torch.cuda.amp.GradScaler's
// defaults (initial scale 2^16, x2 after 2000 finite steps, x0.5 and the step skipped when a
// gradient is inf/NaN). Disabled: every call is a pass-through.
struct LossScaler {
  explicit LossScaler(bool on) : enabled(on) {}
  torch::Tensor scale(const torch::Tensor& loss) const { return enabled ? loss * factor : loss; }
  // Divides the gradients by the scale; false when one is not finite (then skip opt.step()).
  bool unscale(const std::vector<torch::Tensor>& params);
  void update(bool finite);
  // One optimiser step of a scaled backward: unscale, clip the gradient norm (when > 0), step
  // unless a gradient is inf/NaN, adapt the scale. Returns whether the step was taken.
  bool step(torch::optim::Optimizer& opt, const std::vector<torch::Tensor>& params, double clipGradNorm);
  bool enabled;
  double factor = 65536.0;
  int64_t goodSteps = 0, skippedSteps = 0;
};

// Drops the gradients before the next backward (what 2.x's zero_grad() does by default, 1.13's
// C++ Optimizer cannot): backward then writes each gradient into a fresh tensor instead of filling
// ~90 tensors with zeros and adding into them. Optimisers skip parameters without a gradient.
void clearGradients(const std::vector<torch::Tensor>& params);

void writeFileAtomic(const std::string& path, const std::string& content);
bool allFinite(const torch::Tensor& t);

}  // namespace smnas
