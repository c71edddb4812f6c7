// The one training loop of train (detection) and classify-train (pretraining): data order and its
// sharding over the processes of a data-parallel training, learning rate, autocast, loss check,
// backward, gradient all-reduce, loss-scaled optimiser step, progress messages, checkpoints (rank 0)
// and SIGTERM. What differs between the two commands is a TrainTask: how a batch is loaded and
// what its losses are.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "dist.hpp"
#include "job.hpp"
#include "runtime.hpp"

namespace smnas {

// One trainer process of a command: the job with its process placement (rank and world size from
// the job or torchrun's environment), the process's rank named in its log lines, its device. A
// command that runs in one process only refuses a world size above 1 (distributed.worldSize).
struct TrainerProcess {
  Job job;
  DistOptions dist;
  torch::Device device;
};
TrainerProcess setupTrainerProcess(const Job& jobIn, bool multiProcess);

struct TrainLoopOptions {
  // Iterations of one epoch over the global batch (batchSize x processes): ceil(N / G) trains the
  // last partial batch (detection), N / G drops it (classification: BN statistics of a tiny batch).
  TORCH_ARG(int64_t, itersPerEpoch) = 1;
  TORCH_ARG(int64_t, totalIterations) = 0;
  // A progress message every this many iterations (and at least every 2 s, and at the end).
  TORCH_ARG(int64_t, emitEvery) = 1;
  TORCH_ARG(bool, profile) = false;  // log the backward's share of the wall time
};

// Autocast of the forward pass: the loop decides, the task opens the guard where its forward runs.
struct AmpSettings {
  c10::DeviceType device = c10::DeviceType::CPU;
  at::ScalarType dtype = at::kFloat;
  bool enabled = false;
};

// The model-specific part of a training step.
class TrainTask {
 public:
  virtual ~TrainTask() = default;
  // A new epoch (or the rest of one, after a resume): `batches[k]` are the data set indices of this
  // process's share of the k-th global batch to train. Sets the model's train mode.
  virtual void beginEpoch(int64_t epoch, std::vector<std::vector<size_t>> batches) = 0;
  // The forward of batch k of the current epoch: losses by name (summed into the training loss,
  // each already in fp32). `images` receives the batch size.
  virtual std::map<std::string, torch::Tensor> losses(int64_t k, const AmpSettings& amp, int64_t& images) = 0;
};

struct TrainOutcome {
  bool diverged = false;
  std::string message;  // diverged: which loss, where
  TrainPosition position;
  int64_t imagesSeen = 0;  // by this process
  double seconds = 0;
};

// Runs from `pos` to totalIterations. Throws Interrupted (after rank 0's checkpoint) on SIGTERM to
// any process. The caller emits the final result.
TrainOutcome runTrainLoop(const Job& job, const TrainLoopOptions& options, torch::nn::Module& model, torch::optim::SGD& opt,
                          TrainTask& task, TrainPosition pos, int64_t datasetSize, const torch::Device& dev, Dist& dist);

// job.resume: loads the newest usable checkpoint (every rank reads the job's outDir, shared between
// hosts); refuses one written with another global batch (batchSize x processes). Then, with
// several processes, rank 0's weights are broadcast and the ranks' positions checked equal.
// Returns the started message's resumedFrom (null when starting from the beginning).
nlohmann::json resumeAndSync(const Job& job, torch::nn::Module& model, torch::optim::SGD& opt, TrainPosition& pos, Dist& dist);

// The data set indices of this process's share of every global batch from `firstBatch` on:
// global batch b covers order[b*G, (b+1)*G) with G = batchSize x processes, and rank r takes its
// r-th slice of batchSize (possibly short or empty in the last, partial batch).
std::vector<std::vector<size_t>> shardEpoch(const std::vector<size_t>& order, int64_t firstBatch, int64_t count, int64_t batchSize,
                                            int rank, int world);

}  // namespace smnas
