#include "kernels.hpp"

#include "ops.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace smnas {
namespace {
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// One bilinear sample of a bin: four offsets into an H*W plane and their weights, already divided
// by the bin's sample count (torchvision's pre_calc, per RoI).
struct Sample {
  int64_t offset[4];
  float weight[4];
};

// The samples of RoI `roi` (x1, y1, x2, y2 in image pixels after the batch index), grouped by bin:
// bin b owns samples[binStart[b] .. binStart[b + 1]).
void roiSamples(const float* roi, double scale, int S, int samplingRatio, int64_t H, int64_t W, std::vector<Sample>& samples,
                std::vector<int64_t>& binStart) {
  samples.clear();
  binStart.assign(static_cast<size_t>(S * S + 1), 0);
  const double x1 = roi[1] * scale - 0.5, y1 = roi[2] * scale - 0.5;  // aligned: half-pixel offset
  const double binW = (roi[3] * scale - 0.5 - x1) / S, binH = (roi[4] * scale - 0.5 - y1) / S;
  const int gy = samplingRatio > 0 ? samplingRatio : static_cast<int>(std::max(0.0, std::ceil(binH)));
  const int gx = samplingRatio > 0 ? samplingRatio : static_cast<int>(std::max(0.0, std::ceil(binW)));
  const float inv = 1.f / static_cast<float>(std::max(gy * gx, 1));
  for (int py = 0; py < S; ++py)
    for (int px = 0; px < S; ++px) {
      for (int iy = 0; iy < gy; ++iy) {
        double y = y1 + py * binH + (iy + 0.5) * binH / gy;
        for (int ix = 0; ix < gx; ++ix) {
          double x = x1 + px * binW + (ix + 0.5) * binW / gx;
          if (y < -1.0 || y > static_cast<double>(H) || x < -1.0 || x > static_cast<double>(W)) continue;  // contributes 0
          double yy = std::max(y, 0.0), xx = std::max(x, 0.0);
          int64_t yl = static_cast<int64_t>(yy), xl = static_cast<int64_t>(xx), yh, xh;
          if (yl >= H - 1) {
            yh = yl = H - 1;
            yy = static_cast<double>(yl);
          } else {
            yh = yl + 1;
          }
          if (xl >= W - 1) {
            xh = xl = W - 1;
            xx = static_cast<double>(xl);
          } else {
            xh = xl + 1;
          }
          const double ly = yy - static_cast<double>(yl), lx = xx - static_cast<double>(xl), hy = 1 - ly, hx = 1 - lx;
          samples.push_back({{yl * W + xl, yl * W + xh, yh * W + xl, yh * W + xh},
                             {static_cast<float>(hy * hx) * inv, static_cast<float>(hy * lx) * inv, static_cast<float>(ly * hx) * inv,
                              static_cast<float>(ly * lx) * inv}});
        }
      }
      binStart[static_cast<size_t>(py * S + px + 1)] = static_cast<int64_t>(samples.size());
    }
}

struct RoiAlignCpuFn : public torch::autograd::Function<RoiAlignCpuFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& feature, const torch::Tensor& roisIn, int64_t S, double scale,
                               int64_t ratio) {
    auto f = feature.contiguous();
    auto rois = roisIn.detach().to(torch::kFloat).contiguous();
    const int64_t K = rois.size(0), C = f.size(1), H = f.size(2), W = f.size(3);
    ctx->save_for_backward({rois});
    ctx->saved_data["shape"] = f.sizes().vec();
    ctx->saved_data["S"] = S;
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["ratio"] = ratio;
    auto out = torch::empty({K, C, S, S}, f.options());  // every bin is written below
    const float* fp = f.data_ptr<float>();
    const float* rp = rois.data_ptr<float>();
    float* op = out.data_ptr<float>();
    at::parallel_for(0, K, 1, [&](int64_t begin, int64_t end) {
      std::vector<Sample> samples;
      std::vector<int64_t> binStart;
      for (int64_t k = begin; k < end; ++k) {
        const float* roi = rp + k * 5;
        roiSamples(roi, scale, static_cast<int>(S), static_cast<int>(ratio), H, W, samples, binStart);
        const int64_t b = static_cast<int64_t>(roi[0]);
        for (int64_t c = 0; c < C; ++c) {
          const float* plane = fp + (b * C + c) * H * W;
          float* o = op + (k * C + c) * S * S;
          for (int64_t bin = 0; bin < S * S; ++bin) {
            float sum = 0;
            for (int64_t i = binStart[bin]; i < binStart[bin + 1]; ++i) {
              const Sample& s = samples[i];
              sum += s.weight[0] * plane[s.offset[0]] + s.weight[1] * plane[s.offset[1]] + s.weight[2] * plane[s.offset[2]] +
                     s.weight[3] * plane[s.offset[3]];
            }
            o[bin] = sum;
          }
        }
      }
    });
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto rois = ctx->get_saved_variables()[0];
    const auto shape = ctx->saved_data["shape"].toIntVector();
    const int64_t S = ctx->saved_data["S"].toInt(), ratio = ctx->saved_data["ratio"].toInt();
    const double scale = ctx->saved_data["scale"].toDouble();
    const int64_t K = rois.size(0), C = shape[1], H = shape[2], W = shape[3];
    auto g = grads[0].to(torch::kFloat).contiguous();
    auto gradFeature = torch::zeros(shape, g.options());
    const float* gp = g.data_ptr<float>();
    const float* rp = rois.data_ptr<float>();
    float* fp = gradFeature.data_ptr<float>();
    // Channel blocks per thread: every thread walks all RoIs (recomputing their samples, cheap next
    // to the scatter) and writes only its own channels' planes.
    at::parallel_for(0, C, 1, [&](int64_t cBegin, int64_t cEnd) {
      std::vector<Sample> samples;
      std::vector<int64_t> binStart;
      for (int64_t k = 0; k < K; ++k) {
        const float* roi = rp + k * 5;
        roiSamples(roi, scale, static_cast<int>(S), static_cast<int>(ratio), H, W, samples, binStart);
        const int64_t b = static_cast<int64_t>(roi[0]);
        for (int64_t c = cBegin; c < cEnd; ++c) {
          float* plane = fp + (b * C + c) * H * W;
          const float* go = gp + (k * C + c) * S * S;
          for (int64_t bin = 0; bin < S * S; ++bin) {
            const float v = go[bin];
            if (v == 0.f) continue;
            for (int64_t i = binStart[bin]; i < binStart[bin + 1]; ++i) {
              const Sample& s = samples[i];
              for (int j = 0; j < 4; ++j) plane[s.offset[j]] += s.weight[j] * v;
            }
          }
        }
      }
    });
    return {gradFeature, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// Generic Weight Standardization (any device, any floating dtype) with the closed-form backward.
struct WeightStandardizeFn : public torch::autograd::Function<WeightStandardizeFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& weight, double eps) {
    auto flat = weight.reshape({weight.size(0), -1});
    const int64_t n = flat.size(1);
    auto x = flat - flat.mean(1, true);
    auto sigma = (x.square().sum(1, true) / static_cast<double>(std::max<int64_t>(n - 1, 1))).sqrt();
    ctx->save_for_backward({x, sigma});
    ctx->saved_data["eps"] = eps;
    return (x / (sigma + eps)).view(weight.sizes());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& sigma = saved[1];
    const double eps = ctx->saved_data["eps"].toDouble();
    const int64_t n = x.size(1);
    auto g = grads[0].reshape(x.sizes());
    auto s = sigma + eps;
    auto gs = g / s;
    // d std / dw = x / ((n-1) std); a constant row (std 0) has x = 0, so the clamp only avoids 0/0
    auto coef = (g * x).sum(1, true) / (s * s * sigma.clamp_min(1e-12) * static_cast<double>(std::max<int64_t>(n - 1, 1)));
    auto gw = gs - gs.mean(1, true) - x * coef;
    return {gw.view(grads[0].sizes()), torch::Tensor()};
  }
};

// The same for a contiguous fp32 CPU weight as row loops (parallel over output channels): each row
// is read twice and written once per pass, where the tensor-op version allocates and sweeps ~15
// full-size temporaries per iteration. Saves only the weight (no copy) and the per-row mean/std.
struct WeightStandardizeCpuFn : public torch::autograd::Function<WeightStandardizeCpuFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& weight, double eps) {
    auto w = weight.contiguous();
    const int64_t rows = w.size(0), n = w.numel() / std::max<int64_t>(rows, 1);
    auto out = torch::empty_like(w);
    auto stats = torch::empty({rows, 2}, w.options().dtype(torch::kDouble));  // mean, std
    const float* wp = w.data_ptr<float>();
    float* op = out.data_ptr<float>();
    double* sp = stats.data_ptr<double>();
    at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float* row = wp + r * n;
        double sum = 0;
        for (int64_t i = 0; i < n; ++i) sum += row[i];
        const double mean = sum / static_cast<double>(n);
        double sq = 0;
        for (int64_t i = 0; i < n; ++i) sq += (row[i] - mean) * (row[i] - mean);
        const double sigma = std::sqrt(sq / static_cast<double>(std::max<int64_t>(n - 1, 1)));
        const float m = static_cast<float>(mean), inv = static_cast<float>(1.0 / (sigma + eps));
        float* o = op + r * n;
        for (int64_t i = 0; i < n; ++i) o[i] = (row[i] - m) * inv;
        sp[2 * r] = mean;
        sp[2 * r + 1] = sigma;
      }
    });
    ctx->save_for_backward({w, stats});
    ctx->saved_data["eps"] = eps;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& w = saved[0];
    const auto& stats = saved[1];
    const double eps = ctx->saved_data["eps"].toDouble();
    auto g = grads[0].to(torch::kFloat).contiguous();
    const int64_t rows = w.size(0), n = w.numel() / std::max<int64_t>(rows, 1);
    auto grad = torch::empty_like(w);
    const float* wp = w.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    const double* sp = stats.data_ptr<double>();
    float* dp = grad.data_ptr<float>();
    at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float* row = wp + r * n;
        const float* gr = gp + r * n;
        const double mean = sp[2 * r], sigma = sp[2 * r + 1], s = sigma + eps;
        double sg = 0, sgx = 0;
        for (int64_t i = 0; i < n; ++i) {
          sg += gr[i];
          sgx += gr[i] * (row[i] - mean);
        }
        // grad = (g - mean(g)) / s - x * sum(g x) / (s^2 (n-1) std); std 0 means x = 0 (see above)
        const double coef = sgx / (s * s * std::max(sigma, 1e-12) * static_cast<double>(std::max<int64_t>(n - 1, 1)));
        const float invS = static_cast<float>(1.0 / s), gMean = static_cast<float>(sg / static_cast<double>(n));
        const float m = static_cast<float>(mean), c = static_cast<float>(coef);
        float* d = dp + r * n;
        for (int64_t i = 0; i < n; ++i) d[i] = (gr[i] - gMean) * invS - (row[i] - m) * c;
      }
    });
    return {grad, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor roiAlignCpu(const torch::Tensor& feature, const torch::Tensor& rois, int outSize, double spatialScale, int samplingRatio) {
  TORCH_CHECK(feature.device().is_cpu() && feature.scalar_type() == torch::kFloat && feature.dim() == 4,
              "roiAlignCpu: a 4-d fp32 CPU feature map");
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, "roiAlignCpu: rois [K,5]");
  return RoiAlignCpuFn::apply(feature, rois, static_cast<int64_t>(outSize), spatialScale, static_cast<int64_t>(samplingRatio));
}

torch::Tensor standardizeWeight(const torch::Tensor& weight, double eps) {
  if (weight.device().is_cpu() && weight.scalar_type() == torch::kFloat && weight.dim() >= 2)
    return WeightStandardizeCpuFn::apply(weight, eps);
  return WeightStandardizeFn::apply(weight, eps);
}

}  // namespace smnas
