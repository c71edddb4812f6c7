// Deformable convolution (src/deform_conv.hpp): the CPU kernel and the tensor-op formulation against
// a naive scalar reference (torchvision's sampling rule written out in double), torch::conv2d at
// zero offsets, finite differences, each other, and (when a dump is given) torchvision itself.
#include <gtest/gtest.h>
#include <malloc.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "autocast.hpp"
#include "deform_conv.hpp"

using namespace smnas;

namespace {

struct Case {
  int64_t B, Cin, Cout, H, W, kh, kw, stride, padding, dilation, groups, deformGroups;
  DeformConv2dOptions options() const {
    return DeformConv2dOptions().stride(stride).padding(padding).dilation(dilation).groups(groups).deformGroups(deformGroups);
  }
  int64_t Ho() const { return (H + 2 * padding - dilation * (kh - 1) - 1) / stride + 1; }
  int64_t Wo() const { return (W + 2 * padding - dilation * (kw - 1) - 1) / stride + 1; }
};

std::string describe(const Case& c) {
  return "B" + std::to_string(c.B) + " Cin" + std::to_string(c.Cin) + " Cout" + std::to_string(c.Cout) + " " + std::to_string(c.H) + "x" +
         std::to_string(c.W) + " k" + std::to_string(c.kh) + "x" + std::to_string(c.kw) + " s" + std::to_string(c.stride) + " p" +
         std::to_string(c.padding) + " d" + std::to_string(c.dilation) + " g" + std::to_string(c.groups) + " dg" +
         std::to_string(c.deformGroups);
}

// stride 1/2, padding 0..2, dilation 1/2, groups 1/2, deformGroups 1/2/4, non-square kernels and maps
const std::vector<Case> kCases = {
    {2, 4, 6, 7, 9, 3, 3, 1, 1, 1, 1, 1},    //
    {1, 8, 4, 9, 8, 3, 3, 2, 1, 1, 2, 2},    //
    {2, 8, 6, 10, 11, 3, 3, 1, 2, 2, 2, 4},  //
    {1, 4, 4, 8, 7, 2, 3, 2, 0, 2, 1, 2},    //
    {2, 6, 3, 6, 6, 1, 1, 1, 0, 1, 1, 1},    //
    {1, 8, 8, 12, 10, 3, 3, 2, 2, 2, 4, 4},
};

// torchvision's bilinear_interpolate (deform_conv2d_kernel.cpp): 0 beyond one pixel outside, 0 for
// each corner outside.
double bilinearTv(const torch::TensorAccessor<double, 2>& f, int64_t H, int64_t W, double y, double x) {
  if (y <= -1 || y >= H || x <= -1 || x >= W) return 0;
  const int64_t y0 = static_cast<int64_t>(std::floor(y)), x0 = static_cast<int64_t>(std::floor(x)), y1 = y0 + 1, x1 = x0 + 1;
  const double ly = y - y0, lx = x - x0;
  auto at = [&](int64_t yy, int64_t xx) { return yy >= 0 && yy < H && xx >= 0 && xx < W ? f[yy][xx] : 0.0; };
  return (1 - ly) * (1 - lx) * at(y0, x0) + (1 - ly) * lx * at(y0, x1) + ly * (1 - lx) * at(y1, x0) + ly * lx * at(y1, x1);
}

// Deformable convolution written out with scalar loops in double.
torch::Tensor naiveDeformConv(const torch::Tensor& input, const torch::Tensor& offset, const torch::Tensor& weight,
                              const torch::Tensor& bias, const Case& c) {
  auto in = input.to(torch::kDouble).contiguous(), off = offset.to(torch::kDouble).contiguous(), w = weight.to(torch::kDouble).contiguous();
  auto ia = in.accessor<double, 4>();
  auto oa = off.accessor<double, 4>();
  auto wa = w.accessor<double, 4>();
  const int64_t Ho = c.Ho(), Wo = c.Wo(), K = c.kh * c.kw, CinG = c.Cin / c.groups, CoutG = c.Cout / c.groups;
  const int64_t Cdg = c.Cin / c.deformGroups;
  auto out = torch::zeros({c.B, c.Cout, Ho, Wo}, torch::kDouble);
  auto ra = out.accessor<double, 4>();
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t co = 0; co < c.Cout; ++co)
      for (int64_t ho = 0; ho < Ho; ++ho)
        for (int64_t wo = 0; wo < Wo; ++wo) {
          double sum = bias.defined() ? bias[co].item<double>() : 0.0;
          const int64_t gi = co / CoutG;
          for (int64_t ci = 0; ci < CinG; ++ci) {
            const int64_t ch = gi * CinG + ci, dgi = ch / Cdg;
            for (int64_t i = 0; i < c.kh; ++i)
              for (int64_t j = 0; j < c.kw; ++j) {
                const int64_t k = i * c.kw + j;
                const double y = ho * c.stride - c.padding + i * c.dilation + oa[b][2 * (dgi * K + k)][ho][wo];
                const double x = wo * c.stride - c.padding + j * c.dilation + oa[b][2 * (dgi * K + k) + 1][ho][wo];
                sum += wa[co][ci][i][j] * bilinearTv(ia[b][ch], c.H, c.W, y, x);
              }
          }
          ra[b][co][ho][wo] = sum;
        }
  return out;
}

struct Inputs {
  torch::Tensor input, offset, weight, bias;
};

// Offsets ~ N(0, scale^2) (scale 3 pushes many samples outside the map), or integers in [-3, 3].
Inputs randomInputs(const Case& c, double offsetScale, bool integerOffsets, torch::ScalarType dtype) {
  Inputs r;
  r.input = torch::randn({c.B, c.Cin, c.H, c.W}, dtype);
  const std::vector<int64_t> offShape{c.B, 2 * c.deformGroups * c.kh * c.kw, c.Ho(), c.Wo()};
  r.offset = integerOffsets ? torch::randint(-3, 4, offShape, dtype) : torch::randn(offShape, dtype) * offsetScale;
  r.weight = torch::randn({c.Cout, c.Cin / c.groups, c.kh, c.kw}, dtype);
  r.bias = torch::randn({c.Cout}, dtype);
  return r;
}

double maxAbs(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

}  // namespace

// Both implementations against the scalar loops: random offsets (many samples outside the map at
// scale 3), integer offsets (samples on pixels and on the -1 / H borders), in double and fp32.
TEST(DeformConv, MatchesScalarReference) {
  torch::manual_seed(11);
  for (const auto& c : kCases)
    for (int mode = 0; mode < 3; ++mode) {
      auto in = randomInputs(c, /*offsetScale=*/mode == 1 ? 3.0 : 1.0, /*integerOffsets=*/mode == 2, torch::kDouble);
      auto ref = naiveDeformConv(in.input, in.offset, in.weight, in.bias, c);
      const std::string what = describe(c) + " mode " + std::to_string(mode);
      EXPECT_LT(maxAbs(deformConv2d(in.input, in.offset, in.weight, in.bias, c.options()), ref), 1e-12) << what;
      EXPECT_LT(maxAbs(deformConv2dReference(in.input, in.offset, in.weight, in.bias, c.options()), ref), 1e-12) << what;
      auto f = [](const torch::Tensor& t) { return t.to(torch::kFloat); };
      // fp32: sums of Cin/groups*K ~N(0,1) products, |out| up to ~20
      EXPECT_LT(maxAbs(deformConv2d(f(in.input), f(in.offset), f(in.weight), f(in.bias), c.options()), ref), 2e-5) << what;
      EXPECT_LT(maxAbs(deformConv2dReference(f(in.input), f(in.offset), f(in.weight), f(in.bias), c.options()), ref), 2e-5) << what;
    }
}

TEST(DeformConv, SamplesOutsideTheImageReadZero) {
  torch::manual_seed(12);
  const Case c{1, 4, 3, 6, 7, 3, 3, 1, 1, 1, 1, 2};
  auto in = randomInputs(c, /*offsetScale=*/1.0, /*integerOffsets=*/false, torch::kFloat);
  // every sample beyond the border: the output is the bias
  for (double shift : {-8.0, 8.0}) {
    auto off = torch::full(in.offset.sizes(), shift);
    EXPECT_LT(maxAbs(deformConv2d(in.input, off, in.weight, in.bias, c.options()), in.bias.view({1, -1, 1, 1}).expand({1, 3, 6, 7})), 1e-6);
  }
  // exactly one pixel outside (y = -1 / y = H) reads 0, like torchvision
  auto off = torch::zeros(in.offset.sizes());
  off.select(1, 0).fill_(-1.0);  // kernel position (0,0) of deform group 0: y = ho - 2 -> -1 on row 1
  auto ref = naiveDeformConv(in.input, off, in.weight, in.bias, c);
  EXPECT_LT(maxAbs(deformConv2d(in.input, off, in.weight, in.bias, c.options()), ref), 2e-5);
}

// Zero offsets are a plain convolution; a constant integer offset (dy, dx) is a convolution of the
// zero-padded input shifted by it.
TEST(DeformConv, ZeroAndIntegerShiftOffsetsEqualConv2d) {
  torch::manual_seed(13);
  for (const auto& c : kCases) {
    auto in = randomInputs(c, /*offsetScale=*/1.0, /*integerOffsets=*/false, torch::kFloat);
    auto zero = torch::zeros(in.offset.sizes());
    auto conv = torch::conv2d(in.input, in.weight, in.bias, c.stride, c.padding, c.dilation, c.groups);
    EXPECT_LT(maxAbs(deformConv2d(in.input, zero, in.weight, in.bias, c.options()), conv), 1e-5) << describe(c);
    EXPECT_LT(maxAbs(deformConv2dReference(in.input, zero, in.weight, in.bias, c.options()), conv), 1e-5) << describe(c);
    EXPECT_LT(maxAbs(deformConv2d(in.input, zero, in.weight, torch::Tensor(), c.options()),
                     torch::conv2d(in.input, in.weight, {}, c.stride, c.padding, c.dilation, c.groups)),
              1e-5)
        << describe(c) << " without bias";
    const int64_t dy = 1, dx = -2;
    // shifted[u] = input[u - padding + dy] (zeros outside), convolved without padding
    const int64_t margin = c.padding + 3;
    auto big = torch::constant_pad_nd(in.input, {margin, margin, margin, margin});
    auto shifted = big.narrow(2, margin - c.padding + dy, c.H + 2 * c.padding).narrow(3, margin - c.padding + dx, c.W + 2 * c.padding);
    auto off = torch::zeros(in.offset.sizes()).view({c.B, -1, 2, c.Ho(), c.Wo()});
    off.select(2, 0).fill_(static_cast<double>(dy));
    off.select(2, 1).fill_(static_cast<double>(dx));
    off = off.view(in.offset.sizes());
    const int64_t noPadding = 0;
    auto convShifted = torch::conv2d(shifted, in.weight, in.bias, c.stride, noPadding, c.dilation, c.groups);
    EXPECT_LT(maxAbs(deformConv2d(in.input, off, in.weight, in.bias, c.options()), convShifted), 1e-5) << describe(c) << " shifted";
  }
}

// Central differences in double for every element of input, offset, weight and bias. Offsets have
// fractional parts in [0.1, 0.9]: bilinear sampling is not differentiable at integer positions (and
// the border cut-offs at -1, H, W are integers), so no sample crosses one within eps.
TEST(DeformConv, GradientsMatchFiniteDifferences) {
  torch::manual_seed(14);
  const std::vector<Case> cases = {
      {2, 4, 4, 5, 6, 3, 3, 1, 1, 1, 2, 2}, {1, 4, 2, 7, 6, 3, 3, 2, 2, 2, 1, 4}, {1, 2, 2, 4, 5, 2, 3, 1, 0, 1, 1, 1}};
  for (const auto& c : cases) {
    auto in = randomInputs(c, /*offsetScale=*/1.0, /*integerOffsets=*/false, torch::kDouble);
    in.offset = torch::randint(-3, 3, in.offset.sizes(), torch::kDouble) + torch::rand(in.offset.sizes(), torch::kDouble) * 0.8 + 0.1;
    auto proj = torch::randn({c.B, c.Cout, c.Ho(), c.Wo()}, torch::kDouble);
    std::vector<torch::Tensor> params{in.input, in.offset, in.weight, in.bias};
    for (auto& p : params) p.requires_grad_(true);
    auto loss = [&](const std::vector<torch::Tensor>& v) { return (deformConv2d(v[0], v[1], v[2], v[3], c.options()) * proj).sum(); };
    auto grads = torch::autograd::grad({loss(params)}, params);
    torch::NoGradGuard noGrad;
    const char* names[] = {"input", "offset", "weight", "bias"};
    for (size_t t = 0; t < params.size(); ++t) {
      auto flat = params[t].detach().clone().view({-1});
      const double eps = 1e-6;
      double worst = 0;
      for (int64_t e = 0; e < flat.numel(); ++e) {
        std::vector<torch::Tensor> v;
        for (const auto& p : params) v.push_back(p.detach());
        const double x0 = flat[e].item<double>();
        flat[e] = x0 + eps;
        v[t] = flat.view(params[t].sizes());
        const double up = loss(v).item<double>();
        flat[e] = x0 - eps;
        const double down = loss(v).item<double>();
        flat[e] = x0;
        const double num = (up - down) / (2 * eps), ana = grads[t].view({-1})[e].item<double>();
        worst = std::max(worst, std::abs(num - ana) / (1 + std::abs(num)));
      }
      EXPECT_LT(worst, 1e-6) << describe(c) << " d/d" << names[t];
      EXPECT_GT(grads[t].abs().sum().item<double>(), 0.0) << names[t];
    }
  }
}

// The CPU kernel against the tensor-op formulation: values and all four gradients of a random
// projection, in fp32 and double, with offsets reaching outside the map.
TEST(DeformConv, CpuKernelMatchesTensorOps) {
  torch::manual_seed(15);
  for (auto dtype : {torch::kFloat, torch::kDouble})
    for (const auto& c : kCases) {
      auto in = randomInputs(c, /*offsetScale=*/2.0, /*integerOffsets=*/false, dtype);
      std::vector<torch::Tensor> a{in.input, in.offset, in.weight, in.bias}, b;
      for (auto& t : a) {
        t.requires_grad_(true);
        b.push_back(t.detach().clone().requires_grad_(true));
      }
      auto outK = deformConv2d(a[0], a[1], a[2], a[3], c.options());
      auto outR = deformConv2dReference(b[0], b[1], b[2], b[3], c.options());
      const bool f32 = dtype == torch::kFloat;
      EXPECT_LT(maxAbs(outK, outR), f32 ? 5e-5 : 1e-12) << describe(c) << " " << dtype;
      auto proj = torch::randn(outR.sizes(), dtype);
      (outK * proj).sum().backward();
      (outR * proj).sum().backward();
      const char* names[] = {"input", "offset", "weight", "bias"};
      for (size_t t = 0; t < a.size(); ++t) {
        // fp32 offset gradients are differences of pixel values times sums over channels
        const double tol = f32 ? 1e-4 * (1 + b[t].grad().abs().max().item<double>()) : 1e-10;
        EXPECT_LT(maxAbs(a[t].grad(), b[t].grad()), tol) << describe(c) << " " << dtype << " d/d" << names[t];
      }
    }
}

// Only some inputs requiring gradients (the kernel skips the others' work), no bias.
TEST(DeformConv, PartialGradientsAndNoBias) {
  torch::manual_seed(16);
  const Case c{2, 4, 4, 6, 6, 3, 3, 1, 1, 1, 2, 2};
  auto in = randomInputs(c, /*offsetScale=*/1.5, /*integerOffsets=*/false, torch::kFloat);
  for (int which = 0; which < 3; ++which) {
    std::vector<torch::Tensor> a{in.input.clone(), in.offset.clone(), in.weight.clone()}, b;
    a[which].requires_grad_(true);
    for (auto& t : a) b.push_back(t.detach().clone().requires_grad_(true));
    deformConv2d(a[0], a[1], a[2], torch::Tensor(), c.options()).square().sum().backward();
    deformConv2dReference(b[0], b[1], b[2], torch::Tensor(), c.options()).square().sum().backward();
    EXPECT_LT(maxAbs(a[which].grad(), b[which].grad()), 1e-4 * (1 + b[which].grad().abs().max().item<double>())) << which;
  }
}

// bf16 autocast on the CPU: the op computes in fp32 on the bf16 values and returns fp32; the
// gradient reaches the bf16 input as bf16.
TEST(DeformConv, RunsInFp32UnderAutocast) {
  torch::manual_seed(17);
  const Case c{1, 4, 4, 6, 7, 3, 3, 1, 1, 1, 1, 2};
  auto in = randomInputs(c, /*offsetScale=*/1.0, /*integerOffsets=*/false, torch::kFloat);
  auto x = in.input.to(torch::kBFloat16).requires_grad_(true);
  auto off = in.offset.to(torch::kBFloat16);
  torch::Tensor out;
  {
    AutocastGuard amp(torch::kCPU, torch::kBFloat16, true);
    out = deformConv2d(x, off, in.weight, in.bias, c.options());
  }
  EXPECT_EQ(out.scalar_type(), torch::kFloat);
  auto expected = deformConv2d(x.detach().to(torch::kFloat), off.to(torch::kFloat), in.weight, in.bias, c.options());
  EXPECT_LT(maxAbs(out, expected), 1e-6);
  out.sum().backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().scalar_type(), torch::kBFloat16);
}

TEST(DeformConv, RejectsBadShapes) {
  const Case c{1, 4, 4, 6, 6, 3, 3, 1, 1, 1, 1, 2};
  auto in = randomInputs(c, /*offsetScale=*/1.0, /*integerOffsets=*/false, torch::kFloat);
  EXPECT_THROW(deformConv2d(in.input, in.offset.narrow(1, 0, 18), in.weight, in.bias, c.options()), c10::Error);
  EXPECT_THROW(deformConv2d(in.input, in.offset, in.weight, in.bias, c.options().deformGroups(3)), c10::Error);
  EXPECT_THROW(deformConv2d(in.input, in.offset, in.weight, in.bias, c.options().groups(3)), c10::Error);
  EXPECT_THROW(deformConv2d(in.input, in.offset, in.weight, in.bias.narrow(0, 0, 2), c.options()), c10::Error);
}

// One-time cross-check against torchvision.ops.deform_conv2d: tools/deform_conv_torchvision.py
// writes cases (inputs, options, torchvision's output and gradients) with torch.save; this test
// reads them when SMNAS_DEFORM_TORCHVISION names that file and is skipped otherwise.
TEST(DeformConv, MatchesTorchvisionDump) {
  const char* path = std::getenv("SMNAS_DEFORM_TORCHVISION");
  if (!path) GTEST_SKIP() << "set SMNAS_DEFORM_TORCHVISION to the file written by tools/deform_conv_torchvision.py";
  std::ifstream f(path, std::ios::binary);
  ASSERT_TRUE(f.good()) << path;
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto cases = torch::pickle_load(bytes).toList();
  ASSERT_GT(cases.size(), 0u);
  for (size_t i = 0; i < cases.size(); ++i) {
    auto d = cases.get(i).toGenericDict();
    auto get = [&](const char* k) { return d.at(k).toTensor(); };
    auto o = get("options");  // stride, padding, dilation, groups, deformGroups
    auto opt = DeformConv2dOptions()
                   .stride(o[0].item<int64_t>())
                   .padding(o[1].item<int64_t>())
                   .dilation(o[2].item<int64_t>())
                   .groups(o[3].item<int64_t>())
                   .deformGroups(o[4].item<int64_t>());
    std::vector<torch::Tensor> v{get("input"), get("offset"), get("weight"), get("bias")};
    for (auto& t : v) t = t.detach().clone().requires_grad_(true);
    auto out = deformConv2d(v[0], v[1], v[2], v[3], opt);
    (out * get("grad_out")).sum().backward();
    const bool f32 = v[0].scalar_type() == torch::kFloat;
    const double dOut = maxAbs(out, get("out"));
    std::printf("torchvision case %zu (%s): out %.3g, input %.3g, offset %.3g, weight %.3g, bias %.3g\n", i, f32 ? "fp32" : "fp64", dOut,
                maxAbs(v[0].grad(), get("grad_input")), maxAbs(v[1].grad(), get("grad_offset")), maxAbs(v[2].grad(), get("grad_weight")),
                maxAbs(v[3].grad(), get("grad_bias")));
    EXPECT_LT(dOut, f32 ? 1e-4 : 1e-10) << i;
    const char* names[] = {"grad_input", "grad_offset", "grad_weight", "grad_bias"};
    for (size_t t = 0; t < 4; ++t) {
      auto expect = get(names[t]);
      EXPECT_LT(maxAbs(v[t].grad(), expect), (f32 ? 1e-4 : 1e-10) * (1 + expect.abs().max().item<double>())) << i << " " << names[t];
    }
  }
}

// Timing of the CPU kernel against the tensor-op formulation (not a check; run with
// --gtest_also_run_disabled_tests --gtest_filter='*DeformConv*Speed*', OPENBLAS_NUM_THREADS=1 as the
// trainer sets it). Prints the fastest wall time of 15 runs and the median process CPU time per run
// (all threads; steadier than wall time on a shared, oversubscribed machine). The allocator settings
// are the trainer's (main.cpp), so freed buffers are reused instead of page-faulted in again.
TEST(DeformConv, DISABLED_Speed) {
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  torch::manual_seed(18);
  const Case c{2, 64, 64, 50, 50, 3, 3, 1, 1, 1, 1, 4};
  auto in = randomInputs(c, /*offsetScale=*/2.0, /*integerOffsets=*/false, torch::kFloat);
  for (auto& t : {in.input, in.offset, in.weight, in.bias}) t.requires_grad_(true);
  auto time = [&](bool kernel, bool backward) {
    auto run = [&] {
      auto out = kernel ? deformConv2d(in.input, in.offset, in.weight, in.bias, c.options())
                        : deformConv2dReference(in.input, in.offset, in.weight, in.bias, c.options());
      if (backward) out.sum().backward();
    };
    run();
    std::vector<double> wall, cpu;
    for (int i = 0; i < 15; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      const std::clock_t c0 = std::clock();
      run();
      cpu.push_back(1000.0 * static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC);
      wall.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(wall.begin(), wall.end());
    std::sort(cpu.begin(), cpu.end());
    char buf[96];
    std::snprintf(buf, sizeof buf, "%.1f wall / %.1f cpu", wall.front(), cpu[cpu.size() / 2]);
    return std::string(buf);
  };
  std::printf("%s, %d threads, ms:\n  forward: kernel %s, tensor ops %s\n  forward+backward: kernel %s, tensor ops %s\n",
              describe(c).c_str(), at::get_num_threads(), time(/*kernel=*/true, /*backward=*/false).c_str(), time(false, false).c_str(),
              time(true, true).c_str(), time(false, true).c_str());
}
