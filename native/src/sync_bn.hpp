// SyncBN: BatchNorm2d in train mode with the batch statistics of every process of a data-parallel
// training (torch.nn.SyncBatchNorm's forward and backward), switched on by the training loop
// for recipe.syncBn. The statistics travel through a sum all-reduce the loop installs.
#pragma once
#include <torch/torch.h>

#include <functional>

namespace smnas {

// In-place sum of a tensor over the processes; empty: SyncBN off (every BN uses its own batch).
using SumAllReduce = std::function<void(torch::Tensor&)>;
void setSyncBatchNorm(SumAllReduce allreduce);
bool syncBatchNormActive();

// y = BN(x) with mean and variance over every process's batch; updates the module's running
// statistics as BatchNorm2d does (unbiased variance, momentum). Gradients of x include the terms
// through the global statistics; those of weight and bias are this process's own (the gradient
// all-reduce sums them).
torch::Tensor syncBatchNorm(const torch::Tensor& x, torch::nn::BatchNorm2d& bn);

}  // namespace smnas
