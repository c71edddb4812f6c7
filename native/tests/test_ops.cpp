// Unit tests of the detection primitives against naive scalar references.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "model.hpp"
#include "kernels.hpp"
#include "ops.hpp"

using namespace smnas;

namespace {
double naiveIou(const float* a, const float* b) {
  double iw = std::max(0.0, std::min<double>(a[2], b[2]) - std::max<double>(a[0], b[0]));
  double ih = std::max(0.0, std::min<double>(a[3], b[3]) - std::max<double>(a[1], b[1]));
  double inter = iw * ih;
  double u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return inter / u;
}

torch::Tensor randomBoxes(int n, double maxSide = 100) {
  auto xy = torch::rand({n, 2}) * maxSide;
  auto wh = torch::rand({n, 2}) * 40 + 1;
  return torch::cat({xy, xy + wh}, 1);
}

// torchvision's RoIAlign kernel (aligned, fixed sampling ratio), written out with scalars.
float bilinear(const torch::TensorAccessor<float, 2>& f, int H, int W, double y, double x) {
  if (y < -1.0 || y > H || x < -1.0 || x > W) return 0;
  y = std::max(y, 0.0);
  x = std::max(x, 0.0);
  int y0 = static_cast<int>(y), x0 = static_cast<int>(x), y1, x1;
  if (y0 >= H - 1) {
    y1 = y0 = H - 1;
    y = y0;
  } else
    y1 = y0 + 1;
  if (x0 >= W - 1) {
    x1 = x0 = W - 1;
    x = x0;
  } else
    x1 = x0 + 1;
  double ly = y - y0, lx = x - x0;
  return (1 - ly) * (1 - lx) * f[y0][x0] + (1 - ly) * lx * f[y0][x1] + ly * (1 - lx) * f[y1][x0] + ly * lx * f[y1][x1];
}
}  // namespace

TEST(Ops, IouMatchesNaive) {
  torch::manual_seed(1);
  auto a = randomBoxes(20), b = randomBoxes(15);
  auto iou = boxIou(a, b);
  for (int i = 0; i < 20; ++i)
    for (int j = 0; j < 15; ++j) EXPECT_NEAR(iou[i][j].item<double>(), naiveIou(a[i].data_ptr<float>(), b[j].data_ptr<float>()), 1e-5);
}

TEST(Ops, BoxCodingRoundTripsAndClamps) {
  torch::manual_seed(2);
  auto p = randomBoxes(50), g = randomBoxes(50);
  std::array<double, 4> stds{0.1, 0.1, 0.2, 0.2};
  auto d = encodeBoxes(p, g, stds);
  auto back = decodeBoxes(p, d, stds, 1e4, 1e4);
  EXPECT_LT((back - g).abs().max().item<double>(), 1e-3);
  // a huge dw is clamped to log(1000/16): width at most 62.5x the anchor's, and clipped to the image
  auto big = torch::tensor({{0.f, 0.f, 100.f, 0.f}});
  auto anchor = torch::tensor({{1000.f, 1000.f, 1010.f, 1010.f}});
  auto out = decodeBoxes(anchor, big, {1, 1, 1, 1}, 1e6, 1e6);
  EXPECT_NEAR((out[0][2] - out[0][0]).item<double>(), 10 * 1000.0 / 16, 1e-2);
  auto clipped = decodeBoxes(anchor, big, {1, 1, 1, 1}, 1200, 1200);
  EXPECT_LE(clipped.max().item<double>(), 1200);
  EXPECT_GE(clipped.min().item<double>(), 0);
}

TEST(Ops, AnchorsFollowMmdet) {
  auto a = gridAnchors(16, 2, 3, {8}, {0.5, 1.0, 2.0}, torch::kCPU);
  ASSERT_EQ(a.size(0), 2 * 3 * 3);
  // location (y=0,x=0), ratio 1: 128x128 centred at (0,0)
  EXPECT_NEAR(a[1][0].item<double>(), -64, 1e-4);
  EXPECT_NEAR(a[1][3].item<double>(), 64, 1e-4);
  // ratio 0.5: w = 128/sqrt(.5), h = 128*sqrt(.5)
  EXPECT_NEAR((a[0][2] - a[0][0]).item<double>(), 128 / std::sqrt(0.5), 1e-3);
  EXPECT_NEAR((a[0][3] - a[0][1]).item<double>(), 128 * std::sqrt(0.5), 1e-3);
  // order (y, x, anchor): entry 3 is location (0, 1), centre x = 16
  EXPECT_NEAR(((a[3][0] + a[3][2]) / 2).item<double>(), 16, 1e-4);
  EXPECT_NEAR(((a[9][1] + a[9][3]) / 2).item<double>(), 16, 1e-4);
}

TEST(Ops, NmsMatchesNaiveGreedy) {
  torch::manual_seed(3);
  auto boxes = randomBoxes(200, 60);
  auto scores = torch::rand({200});
  auto keep = nms(boxes, scores, 0.5);
  // naive: visit in score order, keep if IoU <= thr with every kept box
  auto order = std::get<1>(scores.sort(true, 0, true));
  std::vector<int64_t> expected;
  for (int64_t k = 0; k < 200; ++k) {
    int64_t i = order[k].item<int64_t>();
    bool ok = true;
    for (int64_t j : expected)
      if (naiveIou(boxes[i].data_ptr<float>(), boxes[j].data_ptr<float>()) > 0.5) ok = false;
    if (ok) expected.push_back(i);
  }
  ASSERT_EQ(keep.numel(), static_cast<int64_t>(expected.size()));
  for (size_t k = 0; k < expected.size(); ++k) EXPECT_EQ(keep[k].item<int64_t>(), expected[k]);
  // stopping at maxKeep gives the first maxKeep boxes of the full NMS
  auto first5 = nms(boxes, scores, 0.5, 5);
  ASSERT_EQ(first5.numel(), 5);
  EXPECT_TRUE(first5.equal(keep.slice(0, 0, 5)));
  // batched: boxes of different groups never suppress each other
  auto dup = torch::cat({boxes.slice(0, 0, 1), boxes.slice(0, 0, 1)});
  EXPECT_EQ(batchedNms(dup, torch::tensor({0.9f, 0.8f}), torch::tensor({0L, 1L}), 0.5).numel(), 2);
  EXPECT_EQ(batchedNms(dup, torch::tensor({0.9f, 0.8f}), torch::tensor({1L, 1L}), 0.5).numel(), 1);
}

// Largest difference between roiAlign and torchvision's kernel written out with scalars
// (aligned=True; samplingRatio 0 = adaptive ceil(roi / pooled) samples per bin side, as mmcv).
static double roiAlignMaxDiff(const torch::Tensor& feat, const torch::Tensor& rois, int S, double scale, int samplingRatio) {
  const int H = static_cast<int>(feat.size(2)), W = static_cast<int>(feat.size(3));
  auto out = roiAlign(feat, rois, S, scale, samplingRatio);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{rois.size(0), feat.size(1), S, S}));
  double maxDiff = 0;
  for (int k = 0; k < rois.size(0); ++k) {
    int b = static_cast<int>(rois[k][0].item<float>());
    double x1 = rois[k][1].item<float>() * scale - 0.5, y1 = rois[k][2].item<float>() * scale - 0.5;
    double x2 = rois[k][3].item<float>() * scale - 0.5, y2 = rois[k][4].item<float>() * scale - 0.5;
    double bw = (x2 - x1) / S, bh = (y2 - y1) / S;
    const int gy = samplingRatio > 0 ? samplingRatio : static_cast<int>(std::ceil(bh));
    const int gx = samplingRatio > 0 ? samplingRatio : static_cast<int>(std::ceil(bw));
    const double count = std::max(gy * gx, 1);
    for (int c = 0; c < feat.size(1); ++c) {
      auto f = feat[b][c].contiguous();
      auto acc = f.accessor<float, 2>();
      for (int py = 0; py < S; ++py)
        for (int px = 0; px < S; ++px) {
          double sum = 0;
          for (int iy = 0; iy < gy; ++iy)
            for (int ix = 0; ix < gx; ++ix)
              sum += bilinear(acc, H, W, y1 + py * bh + (iy + 0.5) * bh / gy, x1 + px * bw + (ix + 0.5) * bw / gx);
          maxDiff = std::max(maxDiff, std::abs(sum / count - out[k][c][py][px].item<double>()));
        }
    }
  }
  return maxDiff;
}

TEST(Ops, RoiAlignMatchesScalarReference) {
  torch::manual_seed(4);
  const int H = 12, W = 15, S = 7;
  auto feat = torch::randn({2, 3, H, W});
  const double scale = 1.0 / 8;
  auto boxes = randomBoxes(30, 130);  // some boxes partly outside the map
  auto rois = torch::cat({(torch::rand({30, 1}) * 2).floor(), boxes}, 1);
  EXPECT_LT(roiAlignMaxDiff(feat, rois, S, scale, 2), 1e-4);  // fixed 2x2 grid
}

TEST(Ops, RoiAlignAdaptiveSamplingMatchesScalarReference) {
  torch::manual_seed(5);
  const int H = 40, W = 36, S = 7;
  auto feat = torch::randn({3, 2, H, W});
  const double scale = 1.0 / 4;
  // RoIs from tiny to larger than the map (feature-space sizes ~0.5..45, so 1..7 samples per bin
  // side, different in x and y), some partly outside, spread over the batch
  std::vector<torch::Tensor> parts;
  for (double maxSide : {4.0, 30.0, 90.0, 180.0}) {
    auto xy = torch::rand({12, 2}) * 150 - 10;
    auto wh = torch::rand({12, 2}) * maxSide + 0.5;
    parts.push_back(torch::cat({(torch::rand({12, 1}) * 3).floor(), xy, xy + wh}, 1));
  }
  // a degenerate RoI (zero width: no samples in x) pools to 0 like the reference kernels
  parts.push_back(torch::tensor({{1.f, 20.f, 20.f, 20.f, 60.f}}));
  auto rois = torch::cat(parts);
  EXPECT_LT(roiAlignMaxDiff(feat, rois, S, scale, 0), 1e-4);
  auto out = roiAlign(feat, rois, S, scale);
  EXPECT_EQ(out[rois.size(0) - 1].abs().max().item<float>(), 0.f);
  // the grids really differ (1 up to >= 5 samples per bin side)
  auto side = ((rois.select(1, 3) - rois.select(1, 1)) * scale / S).ceil();
  EXPECT_GE(side.max().item<float>(), 5.f);
  EXPECT_LE(side.min().item<float>(), 1.f);
  // one batch image: same result as the multi-image path
  auto one = rois.index_select(0, (rois.select(1, 0) == 2).nonzero().squeeze(1));
  auto single = roiAlign(feat.slice(0, 2, 3), torch::cat({torch::zeros({one.size(0), 1}), one.slice(1, 1, 5)}, 1), S, scale);
  EXPECT_LT((single - roiAlign(feat, one, S, scale)).abs().max().item<float>(), 1e-5);
}

TEST(Ops, RoiAlignGradientMatchesFiniteDifference) {
  torch::manual_seed(6);
  auto feat = torch::randn({1, 1, 10, 10}, torch::requires_grad());
  auto rois = torch::tensor({{0.f, 3.f, 5.f, 30.f, 38.f}, {0.f, -4.f, 10.f, 12.f, 20.f}});
  auto w = torch::randn({2, 1, 7, 7});
  (roiAlign(feat, rois, 7, 0.25) * w).sum().backward();
  auto g = feat.grad();
  torch::NoGradGuard ng;
  const double eps = 1e-2;
  for (auto [y, x] : std::vector<std::pair<int, int>>{{2, 2}, {4, 6}, {7, 1}, {5, 5}}) {
    auto fp = feat.detach().clone(), fm = feat.detach().clone();
    fp[0][0][y][x] += eps;
    fm[0][0][y][x] -= eps;
    double num =
        ((roiAlign(fp, rois, 7, 0.25) * w).sum().item<double>() - (roiAlign(fm, rois, 7, 0.25) * w).sum().item<double>()) / (2 * eps);
    EXPECT_NEAR(g[0][0][y][x].item<double>(), num, 1e-3) << y << "," << x;
  }
}

// The CPU kernel (kernels.cpp) against the grid_sample formulation: values and the gradient of a
// random projection, over adaptive and fixed grids, RoIs partly outside the map, several images.
TEST(Ops, RoiAlignCpuKernelMatchesGridSamplePath) {
  torch::manual_seed(7);
  auto feat = torch::randn({3, 5, 24, 20});
  std::vector<torch::Tensor> parts;
  for (double maxSide : {3.0, 40.0, 120.0}) {
    auto xy = torch::rand({20, 2}) * 100 - 12;
    auto wh = torch::rand({20, 2}) * maxSide + 0.5;
    parts.push_back(torch::cat({(torch::rand({20, 1}) * 3).floor(), xy, xy + wh}, 1));
  }
  auto rois = torch::cat(parts);
  for (int ratio : {0, 2}) {
    auto a = feat.clone().requires_grad_(true), b = feat.clone().requires_grad_(true);
    auto outKernel = roiAlignCpu(a, rois, 7, 0.25, ratio);
    auto outRef = roiAlignGridSample(b, rois, 7, 0.25, ratio);
    EXPECT_LT((outKernel - outRef).abs().max().item<double>(), 1e-5) << "ratio " << ratio;
    auto w = torch::randn(outRef.sizes());
    (outKernel * w).sum().backward();
    (outRef * w).sum().backward();
    EXPECT_LT((a.grad() - b.grad()).abs().max().item<double>(), 1e-4) << "ratio " << ratio;
    EXPECT_GT(a.grad().abs().sum().item<double>(), 1.0);
  }
}

TEST(Ops, MaxIouAssignerAndSampler) {
  // 4 candidates, 2 gts
  auto iou = torch::tensor({{0.8f, 0.1f}, {0.5f, 0.2f}, {0.1f, 0.25f}, {0.35f, 0.0f}});
  auto a = assignMaxIou(iou, 0.7, 0.3, 0.3, false);
  EXPECT_EQ(a[0].item<int64_t>(), 0);   // >= pos
  EXPECT_EQ(a[1].item<int64_t>(), -2);  // between: ignored
  EXPECT_EQ(a[2].item<int64_t>(), -1);  // < neg
  EXPECT_EQ(a[3].item<int64_t>(), -2);
  // low-quality matching: gt 1's best candidate (0.25) is below min_pos_iou 0.3: stays negative;
  auto lq = assignMaxIou(iou, 0.7, 0.3, 0.2, true);
  EXPECT_EQ(lq[2].item<int64_t>(), 1);  // with min_pos 0.2 it becomes gt 1's positive
  // min_pos 0 (torchvision's allow_low_quality_matches): a gt's best candidate at any overlap is
  // positive, but a gt that overlaps no candidate matches none (IoU 0 is not a best match)
  auto tiny = torch::tensor({{0.6f, 0.05f, 0.0f}, {0.2f, 0.0f, 0.0f}, {0.1f, 0.0f, 0.0f}});
  auto tv = assignMaxIou(tiny, 0.7, 0.3, /*minPosIou=*/0.0, true);
  EXPECT_EQ(tv[0].item<int64_t>(), 1);  // gt 1's only overlap (0.05), later gts win
  EXPECT_EQ(tv[1].item<int64_t>(), -1);
  EXPECT_EQ(tv[2].item<int64_t>(), -1);
  auto mm = assignMaxIou(tiny, 0.7, 0.3, /*minPosIou=*/0.3, true);
  EXPECT_EQ(mm[0].item<int64_t>(), 0);  // gt 1's 0.05 is below 0.3: candidate 0 stays gt 0's
  torch::manual_seed(5);
  auto many = torch::cat({torch::zeros({100}, torch::kLong), torch::full({1000}, -1L), torch::full({50}, -2L)});
  auto smp = sampleRandom(many, 256, 0.25);
  EXPECT_EQ(smp.pos.numel(), 64);
  EXPECT_EQ(smp.neg.numel(), 192);
  EXPECT_TRUE((many.index_select(0, smp.pos) >= 0).all().item<bool>());
  EXPECT_TRUE((many.index_select(0, smp.neg) == -1).all().item<bool>());
  EXPECT_EQ(std::get<0>(torch::_unique(smp.neg)).numel(), 192);  // without replacement
}

TEST(Ops, WeightStandardisation) {
  torch::manual_seed(6);
  auto w = torch::randn({8, 4, 3, 3}) * 3 + 1;
  auto s = standardizeWeight(w).view({8, -1});
  EXPECT_LT(s.mean(1).abs().max().item<double>(), 1e-5);
  // unbiased std (N-1) plus eps on the std: the standardised std is 1 up to eps
  EXPECT_LT((s.std(1, true) - 1).abs().max().item<double>(), 1e-4);
}

// The closed-form backward of standardizeWeight against autograd through the plain formula: the
// fp32 CPU row kernel and (in double) the tensor-op version that other devices use.
TEST(Ops, WeightStandardisationGradientMatchesAutograd) {
  torch::manual_seed(8);
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    auto w = (torch::randn({6, 3, 3, 3}) * 2 + 0.5).to(dtype);
    auto a = w.clone().requires_grad_(true), b = w.clone().requires_grad_(true);
    auto g = torch::randn(w.sizes()).to(dtype);
    (standardizeWeight(a) * g).sum().backward();
    auto flat = b.view({6, -1});
    auto ref = ((flat - flat.mean(1, true)) / (flat.std(1, true, true) + 1e-5)).view_as(b);
    EXPECT_LT((standardizeWeight(w) - ref.detach()).abs().max().item<double>(), 1e-5) << dtype;
    (ref * g).sum().backward();
    EXPECT_LT((a.grad() - b.grad()).abs().max().item<double>(), 1e-4) << dtype;
    EXPECT_GT(a.grad().abs().sum().item<double>(), 1.0);
    // a constant row: finite gradient (no 0/0)
    auto c = torch::ones({2, 9}, dtype).requires_grad_(true);
    standardizeWeight(c).sum().backward();
    EXPECT_TRUE(torch::isfinite(c.grad()).all().item<bool>()) << dtype;
  }
}
