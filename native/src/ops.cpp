#include "ops.hpp"

#include "kernels.hpp"

#include <cmath>

namespace smnas {
namespace F = torch::nn::functional;
using torch::indexing::Slice;

torch::Tensor boxIou(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.size(0) == 0 || b.size(0) == 0) return torch::zeros({a.size(0), b.size(0)}, a.options());
  auto areaA = (a.select(1, 2) - a.select(1, 0)).clamp_min(0) * (a.select(1, 3) - a.select(1, 1)).clamp_min(0);
  auto areaB = (b.select(1, 2) - b.select(1, 0)).clamp_min(0) * (b.select(1, 3) - b.select(1, 1)).clamp_min(0);
  auto lt = torch::max(a.index({Slice(), torch::indexing::None, Slice(0, 2)}), b.index({torch::indexing::None, Slice(), Slice(0, 2)}));
  auto rb = torch::min(a.index({Slice(), torch::indexing::None, Slice(2, 4)}), b.index({torch::indexing::None, Slice(), Slice(2, 4)}));
  auto wh = (rb - lt).clamp_min(0);
  auto inter = wh.select(2, 0) * wh.select(2, 1);
  auto uni = areaA.unsqueeze(1) + areaB.unsqueeze(0) - inter;
  return inter / uni.clamp_min(1e-6);
}

torch::Tensor encodeBoxes(const torch::Tensor& p, const torch::Tensor& g, const std::array<double, 4>& stds) {
  auto pw = p.select(1, 2) - p.select(1, 0), ph = p.select(1, 3) - p.select(1, 1);
  auto px = p.select(1, 0) + 0.5 * pw, py = p.select(1, 1) + 0.5 * ph;
  auto gw = g.select(1, 2) - g.select(1, 0), gh = g.select(1, 3) - g.select(1, 1);
  auto gx = g.select(1, 0) + 0.5 * gw, gy = g.select(1, 1) + 0.5 * gh;
  pw = pw.clamp_min(1e-6);
  ph = ph.clamp_min(1e-6);
  auto dx = (gx - px) / pw / stds[0], dy = (gy - py) / ph / stds[1];
  auto dw = torch::log(gw.clamp_min(1e-6) / pw) / stds[2], dh = torch::log(gh.clamp_min(1e-6) / ph) / stds[3];
  return torch::stack({dx, dy, dw, dh}, 1);
}

torch::Tensor decodeBoxes(const torch::Tensor& a, const torch::Tensor& d, const std::array<double, 4>& stds, double maxW, double maxH) {
  static const double kClip = std::abs(std::log(16.0 / 1000.0));
  auto aw = a.select(1, 2) - a.select(1, 0), ah = a.select(1, 3) - a.select(1, 1);
  auto ax = a.select(1, 0) + 0.5 * aw, ay = a.select(1, 1) + 0.5 * ah;
  auto dx = d.select(1, 0) * stds[0], dy = d.select(1, 1) * stds[1];
  auto dw = (d.select(1, 2) * stds[2]).clamp(-kClip, kClip), dh = (d.select(1, 3) * stds[3]).clamp(-kClip, kClip);
  auto cx = ax + dx * aw, cy = ay + dy * ah;
  auto w = aw * torch::exp(dw), h = ah * torch::exp(dh);
  auto x1 = (cx - 0.5 * w).clamp(0, maxW), y1 = (cy - 0.5 * h).clamp(0, maxH);
  auto x2 = (cx + 0.5 * w).clamp(0, maxW), y2 = (cy + 0.5 * h).clamp(0, maxH);
  return torch::stack({x1, y1, x2, y2}, 1);
}

std::vector<double> octaveScales(double octaveBaseScale, int scalesPerOctave) {
  std::vector<double> scales;
  for (int i = 0; i < scalesPerOctave; ++i) scales.push_back(octaveBaseScale * std::pow(2.0, static_cast<double>(i) / scalesPerOctave));
  return scales;
}

torch::Tensor gridAnchors(int stride, int height, int width, const std::vector<double>& scales, const std::vector<double>& ratios,
                          const torch::Device& device) {
  std::vector<float> base;  // mmdet order: ratios outer, scales inner
  for (double r : ratios)
    for (double s : scales) {
      double size = stride * s;
      double w = size / std::sqrt(r), h = size * std::sqrt(r);
      base.insert(base.end(),
                  {static_cast<float>(-0.5 * w), static_cast<float>(-0.5 * h), static_cast<float>(0.5 * w), static_cast<float>(0.5 * h)});
    }
  auto b = torch::tensor(base).view({-1, 4});
  auto sx = torch::arange(width, torch::kFloat) * stride, sy = torch::arange(height, torch::kFloat) * stride;
  auto grid = torch::meshgrid({sy, sx}, "ij");
  auto yy = grid[0].reshape(-1), xx = grid[1].reshape(-1);
  auto shifts = torch::stack({xx, yy, xx, yy}, 1);  // [HW,4]
  return (shifts.unsqueeze(1) + b.unsqueeze(0)).reshape({-1, 4}).to(device);
}

torch::Tensor nms(const torch::Tensor& boxes, const torch::Tensor& scores, double thr, int64_t maxKeep) {
  const int64_t n = boxes.size(0);
  if (n == 0) return torch::zeros({0}, torch::TensorOptions().dtype(torch::kLong).device(boxes.device()));
  auto order = std::get<1>(scores.sort(/*stable=*/true, 0, /*descending=*/true));
  // Greedy scan on the host, each candidate against the boxes kept so far: O(n * kept), and it
  // stops at maxKeep (the first maxKeep kept boxes of a full NMS). The [n, n] IoU-matrix version
  // spent ~90% of a toy training iteration here (large temporaries for ~1500 proposals per image).
  auto sorted = boxes.index_select(0, order).to(torch::kCPU, torch::kFloat).contiguous();
  const float* bx = sorted.data_ptr<float>();
  std::vector<int64_t> keep;
  const int64_t limit = maxKeep < 0 ? n : std::min(n, maxKeep);
  keep.reserve(limit);
  for (int64_t i = 0; i < n && static_cast<int64_t>(keep.size()) < limit; ++i) {
    const float* a = bx + 4 * i;
    const float areaA = std::max(0.f, a[2] - a[0]) * std::max(0.f, a[3] - a[1]);
    bool suppressed = false;
    for (int64_t k : keep) {
      const float* b = bx + 4 * k;
      const float iw = std::max(0.f, std::min(a[2], b[2]) - std::max(a[0], b[0]));
      const float ih = std::max(0.f, std::min(a[3], b[3]) - std::max(a[1], b[1]));
      const float inter = iw * ih;
      const float areaB = std::max(0.f, b[2] - b[0]) * std::max(0.f, b[3] - b[1]);
      if (inter / std::max(areaA + areaB - inter, 1e-6f) > thr) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) keep.push_back(i);
  }
  auto k = torch::tensor(keep, torch::kLong).to(boxes.device());
  return order.index_select(0, k);
}

torch::Tensor batchedNms(const torch::Tensor& boxes, const torch::Tensor& scores, const torch::Tensor& groups, double thr,
                         int64_t maxKeep) {
  if (boxes.size(0) == 0) return torch::zeros({0}, torch::TensorOptions().dtype(torch::kLong).device(boxes.device()));
  auto maxCoord = boxes.max() + 1;
  auto shifted = boxes + (groups.to(boxes.dtype()) * maxCoord).unsqueeze(1);
  return nms(shifted, scores, thr, maxKeep);
}

torch::Tensor roiAlign(const torch::Tensor& feature, const torch::Tensor& rois, int outSize, double scale, int samplingRatio) {
  if (feature.device().is_cpu() && feature.scalar_type() == torch::kFloat && feature.dim() == 4 && rois.size(0) > 0)
    return roiAlignCpu(feature, rois, outSize, scale, samplingRatio);
  return roiAlignGridSample(feature, rois, outSize, scale, samplingRatio);
}

torch::Tensor roiAlignGridSample(const torch::Tensor& feature, const torch::Tensor& rois, int outSize, double scale, int samplingRatio) {
  const int64_t K = rois.size(0), C = feature.size(1), H = feature.size(2), W = feature.size(3);
  const int64_t S = outSize, S2 = S * S;
  if (K == 0) return torch::zeros({0, C, S, S}, feature.options());
  auto r = rois.detach().to(torch::kFloat);
  auto x1 = r.select(1, 1) * scale - 0.5, y1 = r.select(1, 2) * scale - 0.5;  // aligned: half-pixel offset
  auto x2 = r.select(1, 3) * scale - 0.5, y2 = r.select(1, 4) * scale - 0.5;
  auto binW = (x2 - x1) / S, binH = (y2 - y1) / S;  // aligned: no clamp to >= 1
  auto lopts = torch::TensorOptions().dtype(torch::kLong).device(rois.device());
  // samples per bin side: the fixed ratio, or mmcv/torchvision's adaptive ceil(roi / pooled) (>= 0;
  // a RoI with 0 samples pools to 0 like their kernels)
  torch::Tensor gh, gw;
  if (samplingRatio > 0) {
    gh = torch::full({K}, samplingRatio, lopts);
    gw = gh;
  } else {
    gh = torch::ceil(binH).clamp_min(0).to(torch::kLong);
    gw = torch::ceil(binW).clamp_min(0).to(torch::kLong);
  }
  // Every sample of every RoI in one flat list: RoI k has S*S*gh*gw samples, enumerated as
  // (bin row, sample row, bin col, sample col). One grid_sample per batch image reads them all; an
  // index_add sums them into their bins with weight 1/(gh*gw), so RoIs with different grids cost
  // exactly their own samples.
  auto counts = S2 * gh * gw;  // [K]
  const int64_t N = counts.sum().item<int64_t>();
  if (N == 0) return torch::zeros({K, C, S, S}, feature.options());
  auto roiOf = torch::repeat_interleave(torch::arange(K, lopts), counts);  // [N]
  auto offsets = counts.cumsum(0) - counts;
  auto local = torch::arange(N, lopts) - offsets.index_select(0, roiOf);
  auto ghN = gh.index_select(0, roiOf), gwN = gw.index_select(0, roiOf);
  auto ix = local.remainder(gwN);
  auto t = local.div(gwN, "floor");
  auto px = t.remainder(S);
  t = t.div(S, "floor");
  auto iy = t.remainder(ghN);
  auto py = t.div(ghN, "floor");
  auto bwN = binW.index_select(0, roiOf), bhN = binH.index_select(0, roiOf);
  auto xs = x1.index_select(0, roiOf) + px.to(torch::kFloat) * bwN + (ix.to(torch::kFloat) + 0.5) * bwN / gwN.to(torch::kFloat);
  auto ys = y1.index_select(0, roiOf) + py.to(torch::kFloat) * bhN + (iy.to(torch::kFloat) + 0.5) * bhN / ghN.to(torch::kFloat);
  // samples beyond one pixel outside the map contribute 0; inside, border padding = the kernels' clamping
  auto valid = (xs >= -1) & (xs <= W) & (ys >= -1) & (ys <= H);
  auto weight = valid.to(torch::kFloat) / (ghN * gwN).to(torch::kFloat);
  auto bin = roiOf * S2 + py * S + px;
  auto grid = torch::stack({(xs + 0.5) * 2.0 / W - 1.0, (ys + 0.5) * 2.0 / H - 1.0}, 1).to(feature.dtype());  // [N,2]
  auto batchOf = r.select(1, 0).to(torch::kLong).index_select(0, roiOf);
  auto opts = F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kBorder).align_corners(false);
  auto out = torch::zeros({C, K * S2}, feature.options());
  const int64_t B = feature.size(0);
  for (int64_t b = 0; b < B; ++b) {
    auto sel = B == 1 ? torch::Tensor() : (batchOf == b).nonzero().squeeze(1);
    if (sel.defined() && sel.numel() == 0) continue;
    auto g = sel.defined() ? grid.index_select(0, sel) : grid;
    auto w = sel.defined() ? weight.index_select(0, sel) : weight;
    auto bi = sel.defined() ? bin.index_select(0, sel) : bin;
    auto sampled = F::grid_sample(feature.slice(0, b, b + 1), g.view({1, 1, -1, 2}), opts).view({C, -1});  // [C,Nb]
    out = out.index_add(1, bi, sampled * w.to(feature.dtype()).unsqueeze(0));
  }
  return out.view({C, K, S, S}).permute({1, 0, 2, 3}).contiguous();
}

torch::Tensor assignMaxIou(const torch::Tensor& iou, double posThr, double negThr, double minPosIou, bool lowQuality) {
  const int64_t N = iou.size(0);
  auto assigned = torch::full({N}, kAssignedIgnored, torch::TensorOptions().dtype(torch::kLong).device(iou.device()));
  if (N == 0) return assigned;
  if (iou.size(1) == 0) return assigned.fill_(kAssignedNegative);
  auto [maxIou, argmax] = iou.max(1);
  assigned.masked_fill_(maxIou < negThr, kAssignedNegative);
  auto pos = maxIou >= posThr;
  assigned = torch::where(pos, argmax, assigned);
  if (lowQuality) {
    auto gtMax = std::get<0>(iou.max(0));  // [G]
    // mmdet gt_max_assign_all: every candidate whose IoU equals a gt's best gets that gt (later gts win)
    for (int64_t g = 0; g < iou.size(1); ++g) {
      double m = gtMax[g].item<double>();
      // a gt no candidate overlaps has no best candidates (at minPosIou 0, IoU 0 would match all)
      if (m <= 0 || m < minPosIou) continue;
      auto hit = iou.select(1, g) == gtMax[g];
      assigned.masked_fill_(hit, g);
    }
  }
  return assigned;
}

Sampled sampleRandom(const torch::Tensor& assigned, int num, double posFraction) {
  auto pos = (assigned >= 0).nonzero().squeeze(1);
  auto neg = (assigned == kAssignedNegative).nonzero().squeeze(1);
  int64_t numPos = std::min<int64_t>(pos.numel(), static_cast<int64_t>(num * posFraction));
  if (pos.numel() > numPos)
    pos =
        pos.index_select(0, torch::randperm(pos.numel(), torch::TensorOptions().dtype(torch::kLong)).slice(0, 0, numPos).to(pos.device()));
  int64_t numNeg = std::min<int64_t>(neg.numel(), num - numPos);
  if (neg.numel() > numNeg)
    neg =
        neg.index_select(0, torch::randperm(neg.numel(), torch::TensorOptions().dtype(torch::kLong)).slice(0, 0, numNeg).to(neg.device()));
  return {pos, neg};
}

}  // namespace smnas
