#include "deform_conv.hpp"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include <cmath>
#include <vector>

namespace smnas {
namespace {
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Sizes of one call. K = kh*kw kernel positions, P = Ho*Wo output positions.
struct Geometry {
  int64_t B, C, H, W, Cout, kh, kw, K, Ho, Wo, P;
  int64_t stride, padding, dilation, groups, deformGroups;
};

Geometry geometry(const torch::Tensor& input, const torch::Tensor& weight, int64_t stride, int64_t padding, int64_t dilation,
                  int64_t groups, int64_t deformGroups) {
  Geometry g{};
  g.B = input.size(0), g.C = input.size(1), g.H = input.size(2), g.W = input.size(3);
  g.Cout = weight.size(0), g.kh = weight.size(2), g.kw = weight.size(3), g.K = g.kh * g.kw;
  g.Ho = (g.H + 2 * padding - dilation * (g.kh - 1) - 1) / stride + 1;
  g.Wo = (g.W + 2 * padding - dilation * (g.kw - 1) - 1) / stride + 1;
  g.P = g.Ho * g.Wo;
  g.stride = stride, g.padding = padding, g.dilation = dilation, g.groups = groups, g.deformGroups = deformGroups;
  return g;
}

void checkArgs(const torch::Tensor& input, const torch::Tensor& offset, const torch::Tensor& weight, const torch::Tensor& bias,
               const DeformConv2dOptions& o) {
  TORCH_CHECK(input.dim() == 4 && offset.dim() == 4 && weight.dim() == 4, "deformConv2d: input, offset and weight must be 4-d");
  TORCH_CHECK(o.stride() >= 1 && o.dilation() >= 1 && o.padding() >= 0 && o.groups() >= 1 && o.deformGroups() >= 1,
              "deformConv2d: stride, dilation, groups, deformGroups >= 1 and padding >= 0");
  TORCH_CHECK(
      offset.device() == input.device() && weight.device() == input.device() && (!bias.defined() || bias.device() == input.device()),
      "deformConv2d: all tensors on one device");
  const auto g = geometry(input, weight, o.stride(), o.padding(), o.dilation(), o.groups(), o.deformGroups());
  TORCH_CHECK(g.C % o.groups() == 0 && g.Cout % o.groups() == 0 && weight.size(1) == g.C / o.groups(),
              "deformConv2d: weight [Cout, Cin/groups, kh, kw] with Cin and Cout divisible by groups; got input ", input.sizes(),
              ", weight ", weight.sizes(), ", groups ", o.groups());
  TORCH_CHECK(g.C % o.deformGroups() == 0, "deformConv2d: Cin (", g.C, ") not divisible by deformGroups (", o.deformGroups(), ")");
  TORCH_CHECK(g.Ho > 0 && g.Wo > 0, "deformConv2d: empty output for input ", input.sizes(), " and kernel ", weight.sizes());
  TORCH_CHECK(offset.size(0) == g.B && offset.size(1) == 2 * o.deformGroups() * g.K && offset.size(2) == g.Ho && offset.size(3) == g.Wo,
              "deformConv2d: offset must be [", g.B, ", ", 2 * o.deformGroups() * g.K, ", ", g.Ho, ", ", g.Wo, "], got ", offset.sizes());
  TORCH_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == g.Cout), "deformConv2d: bias must be [Cout = ", g.Cout, "]");
  TORCH_CHECK(g.H * g.W < (int64_t{1} << 31), "deformConv2d: H*W must fit in 32 bits (the CPU kernel's sample indices)");
}

// One bilinear sample: four corner indices into an H*W plane, their weights (0 for a corner outside
// the image), the fractional position and a bit per corner inside the image (both for the offset
// gradient). Computed once per (deform group, kernel position, output position) and shared by the
// group's channels (torchvision and mmcv recompute it per channel). 44 bytes in fp32: the loops
// below stream these rows once per channel, so their size is most of the kernel's memory traffic.
template <typename T>
struct Sample {
  int32_t idx[4];  // (y0,x0), (y0,x1), (y1,x0), (y1,x1); 0 where the corner is outside
  T w[4];
  T ly, lx;
  uint32_t inside;  // bit j: corner j is inside the image
};

// The samples of image b: rows r = g*K + k, each P long. `off` points at the image's offset
// [2*deformGroups*K, P]. Parallel over rows.
template <typename T>
void buildSamples(const T* off, const Geometry& g, std::vector<Sample<T>>& samples) {
  samples.resize(static_cast<size_t>(g.deformGroups * g.K * g.P));
  at::parallel_for(0, g.deformGroups * g.K, /*grain_size=*/1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t k = r % g.K, i = k / g.kw, j = k % g.kw;
      const T* offY = off + 2 * r * g.P;
      const T* offX = offY + g.P;
      Sample<T>* s = samples.data() + r * g.P;
      for (int64_t ho = 0; ho < g.Ho; ++ho)
        for (int64_t wo = 0; wo < g.Wo; ++wo) {
          const int64_t p = ho * g.Wo + wo;
          const T y = static_cast<T>(ho * g.stride - g.padding + i * g.dilation) + offY[p];
          const T x = static_cast<T>(wo * g.stride - g.padding + j * g.dilation) + offX[p];
          Sample<T>& t = s[p];
          if (!(y > -1 && y < static_cast<T>(g.H) && x > -1 && x < static_cast<T>(g.W))) {  // also catches NaN
            for (int c = 0; c < 4; ++c) t.idx[c] = 0, t.w[c] = 0;
            t.ly = t.lx = 0;
            t.inside = 0;
            continue;
          }
          const T fy = std::floor(y), fx = std::floor(x);
          const int64_t y0 = static_cast<int64_t>(fy), x0 = static_cast<int64_t>(fx), y1 = y0 + 1, x1 = x0 + 1;
          const T ly = y - fy, lx = x - fx, hy = 1 - ly, hx = 1 - lx;
          const bool iy0 = y0 >= 0, iy1 = y1 < g.H, ix0 = x0 >= 0, ix1 = x1 < g.W;
          const bool in[4] = {iy0 && ix0, iy0 && ix1, iy1 && ix0, iy1 && ix1};
          const int64_t idx[4] = {y0 * g.W + x0, y0 * g.W + x1, y1 * g.W + x0, y1 * g.W + x1};
          const T w[4] = {hy * hx, hy * lx, ly * hx, ly * lx};
          t.inside = 0;
          for (int c = 0; c < 4; ++c) {
            t.idx[c] = in[c] ? static_cast<int32_t>(idx[c]) : 0;
            t.w[c] = in[c] ? w[c] : T(0);
            t.inside |= in[c] ? 1u << c : 0u;
          }
          t.ly = ly;
          t.lx = lx;
        }
    }
  });
}

// Deformable im2col of one image: col [C*K, P], row c*K + k (the weight's [Cin/groups, kh, kw]
// flattening within each group). Parallel over rows, enumerated (deform group, kernel position,
// channel) so that consecutive rows reuse one row of samples from the cache.
template <typename T>
void im2col(const T* in, const std::vector<Sample<T>>& samples, const Geometry& g, T* col) {
  const int64_t Cg = g.C / g.deformGroups, HW = g.H * g.W;
  at::parallel_for(0, g.C * g.K, /*grain_size=*/1, [&](int64_t begin, int64_t end) {
    for (int64_t q = begin; q < end; ++q) {
      const int64_t r = q / Cg, k = r % g.K, c = (r / g.K) * Cg + q % Cg;  // r = deform group * K + k
      const T* plane = in + c * HW;
      const Sample<T>* s = samples.data() + r * g.P;
      T* dst = col + (c * g.K + k) * g.P;
      for (int64_t p = 0; p < g.P; ++p) {
        const Sample<T>& t = s[p];
        dst[p] = t.w[0] * plane[t.idx[0]] + t.w[1] * plane[t.idx[1]] + t.w[2] * plane[t.idx[2]] + t.w[3] * plane[t.idx[3]];
      }
    }
  });
}

// Input gradient of one image from the column gradient (col2im with the bilinear weights). Parallel
// over channels: each thread owns its channels' planes, so no atomics (as RoIAlign's backward).
// Kernel position outer, channels inner: one row of samples stays in the cache for all of a
// thread's channels (channel-outer re-read all K rows per channel: 2-5x slower at C=64, 50x50).
template <typename T>
void col2im(const T* gradCol, const std::vector<Sample<T>>& samples, const Geometry& g, T* gradIn) {
  const int64_t Cg = g.C / g.deformGroups, HW = g.H * g.W;
  at::parallel_for(0, g.C, /*grain_size=*/1, [&](int64_t begin, int64_t end) {
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t c = begin; c < end; ++c) {
        T* plane = gradIn + c * HW;
        const Sample<T>* s = samples.data() + ((c / Cg) * g.K + k) * g.P;
        const T* gc = gradCol + (c * g.K + k) * g.P;
        for (int64_t p = 0; p < g.P; ++p) {
          const T v = gc[p];
          if (v == T(0)) continue;
          const Sample<T>& t = s[p];
          for (int j = 0; j < 4; ++j) plane[t.idx[j]] += t.w[j] * v;  // outside corners: weight 0 on index 0
        }
      }
  });
}

// Offset gradient of one image: d sample / dy = (1-lx)(v10 - v00) + lx (v11 - v01), d / dx =
// (1-ly)(v01 - v00) + ly (v11 - v10) with outside corners reading 0, summed over the deform group's
// channels against the column gradient (kOffset), fused with the recomputation of the columns for
// the weight gradient (kCols): both read the same four corners. Parallel over (deform group, kernel
// position) rows r; each writes only its own y and x rows of gradOff [2*deformGroups*K, P] and the
// column rows c*K + k of its group's channels.
template <typename T, bool kOffset, bool kCols>
void offsetGradAndCols(const T* in, const T* gradCol, const std::vector<Sample<T>>& samples, const Geometry& g, T* gradOff, T* col) {
  const int64_t Cg = g.C / g.deformGroups, HW = g.H * g.W;
  at::parallel_for(0, g.deformGroups * g.K, /*grain_size=*/1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t grp = r / g.K, k = r % g.K;
      const Sample<T>* s = samples.data() + r * g.P;
      T* gy = kOffset ? gradOff + 2 * r * g.P : nullptr;
      T* gx = kOffset ? gy + g.P : nullptr;
      for (int64_t c = grp * Cg; c < (grp + 1) * Cg; ++c) {  // channel-outer: gradCol, col and the plane are read in order
        const T* plane = in + c * HW;
        const T* gc = kOffset ? gradCol + (c * g.K + k) * g.P : nullptr;
        T* dst = kCols ? col + (c * g.K + k) * g.P : nullptr;
        for (int64_t p = 0; p < g.P; ++p) {
          const Sample<T>& t = s[p];
          const T v00 = t.inside & 1u ? plane[t.idx[0]] : T(0), v01 = t.inside & 2u ? plane[t.idx[1]] : T(0);
          const T v10 = t.inside & 4u ? plane[t.idx[2]] : T(0), v11 = t.inside & 8u ? plane[t.idx[3]] : T(0);
          if constexpr (kCols) dst[p] = t.w[0] * v00 + t.w[1] * v01 + t.w[2] * v10 + t.w[3] * v11;
          if constexpr (kOffset) {
            const T v = gc[p];
            gy[p] += v * ((1 - t.lx) * (v10 - v00) + t.lx * (v11 - v01));
            gx[p] += v * ((1 - t.ly) * (v01 - v00) + t.ly * (v11 - v10));
          }
        }
      }
    }
  });
}

// Forward and backward image by image, so the column buffer stays [C*K, P] whatever the batch
// (mmcv's im2col_step = 1). The GEMMs are torch::mm per convolution group on that buffer.
// Why not just the tensor-op formulation on the CPU: it materialises the columns of the whole batch
// plus grid_sample's per-sample work per channel, and its backward goes through grid_sample's
// generic backward and a batched matmul. Measured (tests' DeformConv.Speed: B=2, C=64->64, 50x50,
// 3x3, pad 1, deformGroups 4, fp32, 1 thread, OPENBLAS_NUM_THREADS=1, 2-core VM shared with other
// builds; median process CPU time): forward 10-11 ms vs 19.5-20 ms, forward+backward 37-38 ms vs
// 55-57 ms. The GEMMs (one per image forward, two backward; ~2.5-3.5 ms each timed alone) are
// roughly half of the kernel's time.
struct DeformConv2dCpuFn : public torch::autograd::Function<DeformConv2dCpuFn> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& inputIn, const torch::Tensor& offsetIn,
                               const torch::Tensor& weightIn, const torch::Tensor& bias, int64_t stride, int64_t padding, int64_t dilation,
                               int64_t groups, int64_t deformGroups) {
    c10::impl::ExcludeDispatchKeyGuard noAutocast(c10::autocast_dispatch_keyset);
    auto input = inputIn.contiguous(), offset = offsetIn.contiguous(), weight = weightIn.contiguous();
    const auto g = geometry(input, weight, stride, padding, dilation, groups, deformGroups);
    ctx->save_for_backward({input, offset, weight});
    ctx->saved_data["options"] = std::vector<int64_t>{stride, padding, dilation, groups, deformGroups};
    const bool hasBias = bias.numel() > 0;  // an empty placeholder when there is none (apply rejects undefined tensors)
    ctx->saved_data["bias"] = hasBias;
    auto out = torch::empty({g.B, g.Cout, g.Ho, g.Wo}, input.options());  // every row is written by the GEMMs
    auto col = torch::empty({g.C * g.K, g.P}, input.options());
    const int64_t CgK = g.C / groups * g.K, CoutG = g.Cout / groups;
    auto w2 = weight.view({groups, CoutG, CgK});
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "deformConv2dCpu.forward", [&] {
      std::vector<Sample<scalar_t>> samples;
      for (int64_t b = 0; b < g.B; ++b) {
        buildSamples(offset[b].data_ptr<scalar_t>(), g, samples);
        im2col(input[b].data_ptr<scalar_t>(), samples, g, col.data_ptr<scalar_t>());
        auto outB = out[b].view({g.Cout, g.P});
        for (int64_t gi = 0; gi < groups; ++gi) {
          auto dst = outB.narrow(0, gi * CoutG, CoutG);
          torch::mm_out(dst, w2[gi], col.narrow(0, gi * CgK, CgK));
        }
      }
    });
    if (hasBias) out.add_(bias.view({1, -1, 1, 1}));
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    c10::impl::ExcludeDispatchKeyGuard noAutocast(c10::autocast_dispatch_keyset);
    const auto saved = ctx->get_saved_variables();
    const auto &input = saved[0], &offset = saved[1], &weight = saved[2];
    const auto opt = ctx->saved_data["options"].toIntVector();
    const int64_t groups = opt[3];
    const auto g = geometry(input, weight, opt[0], opt[1], opt[2], groups, opt[4]);
    const bool hasBias = ctx->saved_data["bias"].toBool();
    const bool needIn = ctx->needs_input_grad(0), needOff = ctx->needs_input_grad(1), needW = ctx->needs_input_grad(2);
    auto gradOut = grads[0].to(input.dtype()).contiguous();
    torch::Tensor gradIn, gradOff, gradW, gradBias;
    if (needIn) gradIn = torch::zeros_like(input);
    if (needOff) gradOff = torch::zeros_like(offset);
    if (needW) gradW = torch::zeros_like(weight);
    if (hasBias && ctx->needs_input_grad(3)) gradBias = gradOut.sum({0, 2, 3});
    const int64_t CgK = g.C / groups * g.K, CoutG = g.Cout / groups;
    auto w2 = weight.view({groups, CoutG, CgK});
    auto gradCol = needIn || needOff ? torch::empty({g.C * g.K, g.P}, input.options()) : torch::Tensor();
    auto col = needW ? torch::empty({g.C * g.K, g.P}, input.options()) : torch::Tensor();
    auto gw2 = needW ? gradW.view({groups, CoutG, CgK}) : torch::Tensor();
    AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "deformConv2dCpu.backward", [&] {
      std::vector<Sample<scalar_t>> samples;
      for (int64_t b = 0; b < g.B; ++b) {
        buildSamples(offset[b].data_ptr<scalar_t>(), g, samples);
        auto gOutB = gradOut[b].view({g.Cout, g.P});
        if (needIn || needOff) {
          for (int64_t gi = 0; gi < groups; ++gi) {
            auto dst = gradCol.narrow(0, gi * CgK, CgK);
            torch::mm_out(dst, w2[gi].t(), gOutB.narrow(0, gi * CoutG, CoutG));
          }
          if (needIn) col2im(gradCol.data_ptr<scalar_t>(), samples, g, gradIn[b].data_ptr<scalar_t>());
        }
        // the columns are recomputed rather than kept from the forward pass (B times their size)
        const scalar_t* in = input[b].data_ptr<scalar_t>();
        if (needOff && needW)
          offsetGradAndCols<scalar_t, true, true>(in, gradCol.data_ptr<scalar_t>(), samples, g, gradOff[b].data_ptr<scalar_t>(),
                                                  col.data_ptr<scalar_t>());
        else if (needOff)
          offsetGradAndCols<scalar_t, true, false>(in, gradCol.data_ptr<scalar_t>(), samples, g, gradOff[b].data_ptr<scalar_t>(), nullptr);
        else if (needW)
          offsetGradAndCols<scalar_t, false, true>(in, nullptr, samples, g, nullptr, col.data_ptr<scalar_t>());
        if (needW)
          for (int64_t gi = 0; gi < groups; ++gi) gw2[gi].addmm_(gOutB.narrow(0, gi * CoutG, CoutG), col.narrow(0, gi * CgK, CgK).t());
      }
    });
    return {gradIn, gradOff, gradW, gradBias, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor deformConv2dReference(const torch::Tensor& input, const torch::Tensor& offset, const torch::Tensor& weight,
                                    const torch::Tensor& bias, const DeformConv2dOptions& o) {
  checkArgs(input, offset, weight, bias, o);
  const auto g = geometry(input, weight, o.stride(), o.padding(), o.dilation(), o.groups(), o.deformGroups());
  const int64_t dg = o.deformGroups(), Cg = g.C / dg;
  auto fopts = input.options();
  // base sampling positions per kernel position: y depends on (i, ho), x on (j, wo)
  auto ki = torch::arange(g.kh, fopts).repeat_interleave(g.kw), kj = torch::arange(g.kw, fopts).repeat({g.kh});  // [K]
  auto baseY = (torch::arange(g.Ho, fopts) * static_cast<double>(g.stride) - static_cast<double>(g.padding)).view({1, -1, 1}) +
               (ki * static_cast<double>(g.dilation)).view({-1, 1, 1});  // [K,Ho,1]
  auto baseX = (torch::arange(g.Wo, fopts) * static_cast<double>(g.stride) - static_cast<double>(g.padding)).view({1, 1, -1}) +
               (kj * static_cast<double>(g.dilation)).view({-1, 1, 1});  // [K,1,Wo]
  auto off = offset.reshape({g.B, dg, g.K, 2, g.Ho, g.Wo});
  auto y = baseY + off.select(/*dim=*/3, /*index=*/0), x = baseX + off.select(/*dim=*/3, /*index=*/1);  // [B,dg,K,Ho,Wo]
  // grid_sample's align_corners=false unnormalisation is pixel = ((u + 1) * size - 1) / 2; zeros
  // padding reads 0 for every corner outside, i.e. torchvision's rule (y <= -1 etc. gives 0)
  auto grid = torch::stack({(x * 2 + 1) / static_cast<double>(g.W) - 1, (y * 2 + 1) / static_cast<double>(g.H) - 1}, /*dim=*/-1)
                  .view({g.B * dg, g.K * g.Ho, g.Wo, 2});
  namespace F = torch::nn::functional;
  auto opts = F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false);
  auto sampled = F::grid_sample(input.reshape({g.B * dg, Cg, g.H, g.W}), grid, opts);  // [B*dg, Cg, K*Ho, Wo]
  // rows (deform group, channel, kernel position) = channel c*K + k, the weight's flattening
  auto cols = sampled.view({g.B, o.groups(), g.C / o.groups() * g.K, g.P});
  auto w = weight.reshape({o.groups(), g.Cout / o.groups(), -1}).unsqueeze(0);  // [1,G,Cout/G,Cin/G*K]
  auto out = torch::matmul(w, cols).view({g.B, g.Cout, g.Ho, g.Wo});
  if (bias.defined()) out = out + bias.view({1, -1, 1, 1});
  return out;
}

torch::Tensor deformConv2d(const torch::Tensor& input, const torch::Tensor& offset, const torch::Tensor& weight, const torch::Tensor& bias,
                           const DeformConv2dOptions& o) {
  checkArgs(input, offset, weight, bias, o);
  // Never autocast inside (matmul would drop to bf16/fp16 again): reduced-precision inputs are cast
  // to fp32, like the detector's other sampling ops; the casts carry the gradients back.
  c10::impl::ExcludeDispatchKeyGuard noAutocast(c10::autocast_dispatch_keyset);
  const auto dtype = input.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  auto cast = [dtype](const torch::Tensor& t) { return t.defined() && t.scalar_type() != dtype ? t.to(dtype) : t; };
  if (input.device().is_cpu()) {
    auto b = bias.defined() ? cast(bias) : torch::empty({0}, input.options().dtype(dtype));
    return DeformConv2dCpuFn::apply(cast(input), cast(offset), cast(weight), b, o.stride(), o.padding(), o.dilation(), o.groups(),
                                    o.deformGroups());
  }
  return deformConv2dReference(cast(input), cast(offset), cast(weight), cast(bias), o);
}

}  // namespace smnas
