// Data-parallel training with libtorch's own c10d: a TCPStore rendezvous, a Gloo process group
// (CPU; NCCL for CUDA tensors where the build has it), bucketed gradient all-reduce launched from
// autograd hooks while the backward pass still runs, broadcasts and gathers. With one process
// every call is a no-op and nothing of c10d is touched. The c10d headers stay in dist.cpp.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "job.hpp"

namespace smnas {

// A collective failed: a peer died (connection closed) or did not answer within the timeout.
// Reported as kind peer_lost, exit code kPeerLost: the training is retried from its checkpoint.
struct PeerLost : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The process's place in the training: from the job (distributed.*) with torchrun's environment
// variables taking precedence (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).
struct DistOptions {
  TORCH_ARG(int, rank) = 0;
  TORCH_ARG(int, worldSize) = 1;
  TORCH_ARG(int, localRank) = 0;
  TORCH_ARG(std::string, masterAddr) = "127.0.0.1";
  TORCH_ARG(int, masterPort) = 29500;
  TORCH_ARG(double, timeoutSeconds) = 120;
  TORCH_ARG(int64_t, bucketBytes) = 25 << 20;  // DDP's default bucket cap (25 MiB)
  TORCH_ARG(DistBackend, backend) = DistBackend::Auto;
};
// Throws JobError naming the variable or field when they are inconsistent.
DistOptions distOptionsFor(const Job& job);

class Dist {
 public:
  // World size 1: an inactive group (every method a no-op). Otherwise the rendezvous (rank 0
  // hosts the TCPStore) and the process group; throws PeerLost when the peers do not all arrive
  // within the timeout.
  Dist(const DistOptions& options, const torch::Device& dev);
  ~Dist();
  Dist(const Dist&) = delete;
  Dist& operator=(const Dist&) = delete;

  int rank() const { return options_.rank(); }
  int world() const { return options_.worldSize(); }
  bool root() const { return options_.rank() == 0; }
  bool active() const { return options_.worldSize() > 1; }
  const DistOptions& options() const { return options_; }
  std::string backendName() const;

  // In place, blocking. `what` names the collective in a PeerLost message.
  void allreduceSum(torch::Tensor& t, const char* what);
  void allreduceMax(torch::Tensor& t, const char* what);
  // Rank 0's values into every rank's tensors (in place).
  void broadcast(std::vector<torch::Tensor> tensors, const char* what);
  // Every rank's bytes, indexed by rank.
  std::vector<std::string> allgather(const std::string& bytes, const char* what);

  // Gradient reduction of `params` (those requiring a gradient), in buckets of up to bucketBytes
  // in reverse parameter order (the order the backward pass produces them). Each bucket's
  // all-reduce starts from the parameters' hooks as soon as its last gradient is there, on the
  // process group's own threads, while the backward pass goes on.
  void attachGradients(const std::vector<torch::Tensor>& params);
  // false: the buckets are all-reduced after the backward pass, not from its hooks (SyncBN runs
  // collectives inside the backward pass; both must come in the same order on every rank).
  void overlapWithBackward(bool on);
  // Before backward: this rank's gradients count `weight` (its share of the global batch).
  void beginBackward(double weight);
  // After backward: starts the buckets still waiting (parameters without a gradient here count
  // zero), waits for all, and sets every parameter's gradient to the weighted sum over ranks;
  // a parameter without a gradient on every rank keeps none (as in a single process).
  void finishBackward();

 private:
  struct Impl;
  DistOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace smnas
