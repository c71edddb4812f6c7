#include "sync_bn.hpp"

namespace smnas {

namespace {
SumAllReduce gAllReduce;

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// forward(x, weight, bias, mean, invstd): the statistics are computed (and all-reduced) outside,
// so that this node only needs one more all-reduce in its backward.
struct SyncBnFn : public torch::autograd::Function<SyncBnFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                               const torch::Tensor& mean, const torch::Tensor& invstd, double count) {
    ctx->save_for_backward({x, weight, mean, invstd});
    ctx->saved_data["count"] = count;
    auto shape = std::vector<int64_t>{1, -1, 1, 1};
    return (x - mean.view(shape)) * (invstd * weight).view(shape) + bias.view(shape);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &weight = saved[1], &mean = saved[2], &invstd = saved[3];
    const double count = ctx->saved_data["count"].toDouble();
    auto dy = grads[0].contiguous();
    auto shape = std::vector<int64_t>{1, -1, 1, 1};
    auto xmu = x - mean.view(shape);
    auto sumDy = dy.sum({0, 2, 3}), sumDyXmu = (dy * xmu).sum({0, 2, 3});
    const int64_t C = sumDy.size(0);
    auto both = torch::cat({sumDy, sumDyXmu});
    gAllReduce(both);  // the whole batch's sums
    auto meanDy = both.narrow(0, 0, C) / count, meanDyXmu = both.narrow(0, C, C) / count;
    auto dx = (dy - meanDy.view(shape) - xmu * (invstd * invstd * meanDyXmu).view(shape)) * (invstd * weight).view(shape);
    // this process's share of the parameter gradients
    return {ctx->needs_input_grad(0) ? dx : torch::Tensor(),
            ctx->needs_input_grad(1) ? sumDyXmu * invstd : torch::Tensor(),
            ctx->needs_input_grad(2) ? sumDy : torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};
}  // namespace

void setSyncBatchNorm(SumAllReduce allreduce) { gAllReduce = std::move(allreduce); }
bool syncBatchNormActive() { return static_cast<bool>(gAllReduce); }

torch::Tensor syncBatchNorm(const torch::Tensor& xIn, torch::nn::BatchNorm2d& bn) {
  auto x = xIn.scalar_type() == torch::kFloat ? xIn : xIn.to(torch::kFloat);
  const int64_t C = x.size(1);
  auto stats = torch::cat({x.detach().sum({0, 2, 3}), (x.detach() * x.detach()).sum({0, 2, 3}),
                           torch::full({1}, static_cast<double>(x.numel() / C), x.options())});
  gAllReduce(stats);
  const double count = stats[2 * C].item<double>();
  if (count <= 1)
    throw std::runtime_error("SyncBN: a batch of " + std::to_string(static_cast<int64_t>(count)) +
                             " values per channel over all processes");
  auto mean = stats.narrow(0, 0, C) / count;
  auto var = (stats.narrow(0, C, C) / count - mean * mean).clamp_min(0);
  const double eps = bn->options.eps();
  auto invstd = (var + eps).rsqrt();
  {
    torch::NoGradGuard ng;
    const double m = bn->options.momentum().value_or(0.1);
    bn->running_mean.mul_(1 - m).add_(mean, m);
    bn->running_var.mul_(1 - m).add_(var * (count / (count - 1)), m);
    bn->num_batches_tracked.add_(1);
  }
  return SyncBnFn::apply(x, bn->weight, bn->bias, mean, invstd, count);
}

}  // namespace smnas
