#include "ga_rpn.hpp"

#include <cmath>

#include "deform_conv.hpp"
#include "ops.hpp"

namespace smnas {
namespace F = torch::nn::functional;

namespace {
constexpr int kShapeChannels = 2;  // dw, dh of the one anchor per location
constexpr int kKernel = 3;         // the feature adaption's deformable conv

// Anchors of a square with deltas (0, 0, dw, dh): centre kept, sides scaled, not clipped
// (mmdet decodes guided anchors without max_shape; wh_ratio_clip 1e-6 bounds the exponent).
torch::Tensor guidedAnchors(const torch::Tensor& squares, const torch::Tensor& shape, const std::array<double, 4>& stds) {
  static const double kClip = std::abs(std::log(1e-6));
  auto sw = squares.select(1, 2) - squares.select(1, 0), sh = squares.select(1, 3) - squares.select(1, 1);
  auto cx = squares.select(1, 0) + 0.5 * sw, cy = squares.select(1, 1) + 0.5 * sh;
  auto w = sw * torch::exp((shape.select(1, 0) * stds[2]).clamp(-kClip, kClip));
  auto h = sh * torch::exp((shape.select(1, 1) * stds[3]).clamp(-kClip, kClip));
  return torch::stack({cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h}, 1);
}

torch::Tensor smoothL1(const torch::Tensor& d, double beta) {
  auto a = d.abs();
  return torch::where(a < beta, 0.5 * a * a / beta, a - 0.5 * beta);
}

// mmdet calc_region: the box scaled about its centre to the fraction 1 - 2 ratio of its sides,
// rounded (half to even, like torch.round) and clipped to the map
std::array<int64_t, 4> region(const float* b, double ratio, int64_t H, int64_t W) {
  auto r = [](double v) { return static_cast<int64_t>(std::nearbyint(v)); };
  int64_t x1 = r((1 - ratio) * b[0] + ratio * b[2]), y1 = r((1 - ratio) * b[1] + ratio * b[3]);
  int64_t x2 = r(ratio * b[0] + (1 - ratio) * b[2]), y2 = r(ratio * b[1] + (1 - ratio) * b[3]);
  return {std::clamp<int64_t>(x1, 0, W - 1), std::clamp<int64_t>(y1, 0, H - 1), std::clamp<int64_t>(x2, 0, W - 1),
          std::clamp<int64_t>(y2, 0, H - 1)};
}
}  // namespace

torch::Tensor boundedIouLoss(const torch::Tensor& pred, const torch::Tensor& target, double beta, double eps) {
  auto pw = pred.select(1, 2) - pred.select(1, 0), ph = pred.select(1, 3) - pred.select(1, 1);
  auto px = pred.select(1, 0) + 0.5 * pw, py = pred.select(1, 1) + 0.5 * ph;
  auto t = target.detach();
  auto tw = t.select(1, 2) - t.select(1, 0), th = t.select(1, 3) - t.select(1, 1);
  auto tx = t.select(1, 0) + 0.5 * tw, ty = t.select(1, 1) + 0.5 * th;
  auto dx = tx - px, dy = ty - py;
  auto zero = torch::zeros_like(dx);
  auto lx = 1 - torch::max((tw - 2 * dx.abs()) / (tw + 2 * dx.abs() + eps), zero);
  auto ly = 1 - torch::max((th - 2 * dy.abs()) / (th + 2 * dy.abs() + eps), zero);
  auto lw = 1 - torch::min(tw / (pw + eps), pw / (tw + eps));
  auto lh = 1 - torch::min(th / (ph + eps), ph / (th + eps));
  auto l = torch::stack({lx, ly, lw, lh}, 1);
  return torch::where(l < beta, 0.5 * l * l / beta, l - 0.5 * beta);
}

GaRpnImpl::GaRpnImpl(const GaRpnOptions& o) : options(o) {
  const int C = o.channels();
  auto normal = [](int in, int out, int k, double std) { return ConvOptions(in, out, k).bias(true).init(Init::Normal).std(std); };
  conv = register_module("conv", Conv(normal(C, C, 3, 0.01)));
  loc = register_module("loc", Conv(normal(C, 1, 1, 0.01)));
  shape = register_module("shape", Conv(normal(C, kShapeChannels, 1, 0.01)));
  // offsets of the deformable conv from the shape prediction: (y, x) per kernel tap per deform group
  offset =
      register_module("offset", Conv(ConvOptions(kShapeChannels, o.deformGroups() * 2 * kKernel * kKernel, 1).init(Init::Normal).std(0.1)));
  adaptWeight = register_parameter("adapt", torch::empty({C, C, kKernel, kKernel}));
  torch::nn::init::normal_(adaptWeight, 0.0, 0.01);
  cls = register_module("cls", Conv(normal(C, 1, 1, 0.01)));
  reg = register_module("reg", Conv(normal(C, 4, 1, 0.01)));
  torch::NoGradGuard ng;
  loc->bias.fill_(-std::log((1 - 0.01) / 0.01));  // mmdet: bias_init_with_prob(0.01)
}

double GaRpnImpl::flopsPerLevel(int64_t h, int64_t w) const {
  const double C = options.channels(), D = options.deformGroups() * 2.0 * kKernel * kKernel;
  // shared conv, location, shape, offsets, the deformable conv (as a dense 3x3), objectness, deltas
  return h * w * (C * C * 9 + C + C * kShapeChannels + kShapeChannels * D + C * C * 9 + C + C * 4);
}

GaRpnImpl::LocTargets GaRpnImpl::locTargets(const Targets& t, const std::vector<Level>& levels) const {
  const int64_t B = static_cast<int64_t>(t.boxes.size()), L = static_cast<int64_t>(levels.size());
  const double r1 = (1 - options.centerRatio()) / 2, r2 = (1 - options.ignoreRatio()) / 2;
  std::vector<torch::Tensor> tg, wt, ignore;
  double locations = 0;
  for (const auto& l : levels) {
    const int64_t H = l.x.size(2), W = l.x.size(3);
    tg.push_back(torch::zeros({B, 1, H, W}));
    wt.push_back(torch::full({B, 1, H, W}, -1.0));
    ignore.push_back(torch::zeros({B, 1, H, W}));
    locations += static_cast<double>(B * H * W);
  }
  const double minAnchor = options.octaveBaseScale() * levels.front().stride;
  auto fill = [](torch::Tensor& m, int64_t b, const std::array<int64_t, 4>& r, float v) {
    m[b][0].slice(0, r[1], r[3] + 1).slice(1, r[0], r[2] + 1).fill_(v);
  };
  for (int64_t b = 0; b < B; ++b) {
    auto boxes = t.boxes[b].to(torch::kCPU, torch::kFloat).contiguous();
    const float* bp = boxes.data_ptr<float>();
    for (int64_t g = 0; g < boxes.size(0); ++g) {
      const float* box = bp + 4 * g;
      const double scale = std::sqrt(std::max(1e-6, static_cast<double>(box[2] - box[0]) * (box[3] - box[1])));
      const int64_t lvl = std::clamp<int64_t>(static_cast<int64_t>(std::floor(std::log2(scale) - std::log2(minAnchor) + 0.5)), 0, L - 1);
      auto scaled = [&](int64_t at) {
        const float s = static_cast<float>(levels[at].stride);
        return std::array<float, 4>{box[0] / s, box[1] / s, box[2] / s, box[3] / s};
      };
      const int64_t H = levels[lvl].x.size(2), W = levels[lvl].x.size(3);
      auto own = scaled(lvl);
      auto ign = region(own.data(), r2, H, W), ctr = region(own.data(), r1, H, W);
      fill(tg[lvl], b, ctr, 1);
      fill(wt[lvl], b, ign, 0);
      fill(wt[lvl], b, ctr, 1);
      for (int64_t n : {lvl - 1, lvl + 1}) {  // the neighbouring levels ignore the box's central half
        if (n < 0 || n >= L) continue;
        auto s = scaled(n);
        fill(ignore[n], b, region(s.data(), r2, levels[n].x.size(2), levels[n].x.size(3)), 1);
      }
    }
  }
  LocTargets out;
  for (int64_t l = 0; l < L; ++l) {
    auto w = wt[l];
    w.masked_fill_((w < 0) & (ignore[l] > 0), 0);
    w.masked_fill_(w < 0, options.negativeLocWeight());
    out.targets.push_back(tg[l].to(levels[l].x.device()));
    out.weights.push_back(w.to(levels[l].x.device()));
  }
  out.avgFactor = locations / 200;  // mmdet's loc_avg_factor
  return out;
}

std::vector<torch::Tensor> GaRpnImpl::forward(const std::vector<Level>& levels, const ImageSizes& sizes, const Targets* targets,
                                              LossMap* losses) {
  const int64_t B = levels.front().x.size(0);
  const auto& o = options;
  std::vector<torch::Tensor> locs, shapes, cl, rg, squares, guided;  // per level
  for (const auto& l : levels) {
    auto y = torch::relu(conv(l.x));
    auto lo = loc(y).to(torch::kFloat), sh = shape(y).to(torch::kFloat);
    auto off = offset(sh.detach().to(y.scalar_type()));
    // the deformable conv runs in fp32 (bilinear sampling; the op casts under autocast as well).
    // Its input is detached unless options.adaptionGradient: see GaRpnOptions.
    auto adaptIn = (o.adaptionGradient() ? y : y.detach()).to(torch::kFloat);
    auto feat = torch::relu(deformConv2d(adaptIn, off.to(torch::kFloat), adaptWeight.to(torch::kFloat), /*bias=*/torch::Tensor(),
                                         DeformConv2dOptions().padding(kKernel / 2).deformGroups(o.deformGroups())));
    locs.push_back(lo);
    shapes.push_back(sh.permute({0, 2, 3, 1}).reshape({B, -1, kShapeChannels}));
    cl.push_back(cls(feat).to(torch::kFloat).permute({0, 2, 3, 1}).reshape({B, -1}));
    rg.push_back(reg(feat).to(torch::kFloat).permute({0, 2, 3, 1}).reshape({B, -1, 4}));
    squares.push_back(gridAnchors(l.stride, l.x.size(2), l.x.size(3), {o.octaveBaseScale()}, {1.0}, l.x.device()));
  }
  // guided anchors per image and level (no gradient: the shape branch learns from its own loss)
  std::vector<std::vector<torch::Tensor>> anchors(B);
  {
    torch::NoGradGuard ng;
    for (int64_t b = 0; b < B; ++b)
      for (size_t l = 0; l < levels.size(); ++l) anchors[b].push_back(guidedAnchors(squares[l], shapes[l][b].detach(), o.anchorStds()));
  }
  if (targets) {
    auto opts = cl.front().options();
    // location: focal loss over every location, weighted (1 centre, 0 ignored, 0.1 elsewhere)
    auto lt = locTargets(*targets, levels);
    torch::Tensor locLoss = torch::zeros({}, opts);
    for (size_t l = 0; l < levels.size(); ++l) locLoss = locLoss + sigmoidFocalLoss(locs[l], lt.targets[l], 0.25, 2.0, lt.weights[l]);
    (*losses)["rpn_loc"] = locLoss / std::max(1.0, lt.avgFactor);

    // shape: squares assigned through their 9 approx anchors (the best IoU of the 9 per gt)
    const auto approxScales = octaveScales(o.octaveBaseScale(), o.scalesPerOctave());
    const int64_t perLoc = static_cast<int64_t>(approxScales.size() * o.ratios().size());
    std::vector<torch::Tensor> approxList;
    for (const auto& l : levels)
      approxList.push_back(gridAnchors(l.stride, l.x.size(2), l.x.size(3), approxScales, o.ratios(), l.x.device()));
    auto approxes = torch::cat(approxList), squaresAll = torch::cat(squares), shapeAll = torch::cat(shapes, 1);
    auto clsAll = torch::cat(cl, 1), regAll = torch::cat(rg, 1);
    const auto& ss = o.shapeSampling();
    const auto& as = o.sampling();
    std::vector<torch::Tensor> shapePred, shapeSquares, shapeGt, logits, labels, dPred, dTgt;
    int64_t shapeSampled = 0, sampled = 0;
    for (int64_t b = 0; b < B; ++b) {
      const auto& gt = targets->boxes[b];
      auto overlaps = gt.size(0) == 0 ? torch::zeros({squaresAll.size(0), 0}, opts)
                                      : std::get<0>(boxIou(approxes, gt).view({-1, perLoc, gt.size(0)}).max(1));
      auto assigned = assignMaxIou(overlaps, ss.posIou(), ss.negIou(), ss.minPosIou(), /*lowQuality=*/true);
      auto picked = sampleRandom(assigned, ss.samplesPerImage(), ss.positiveFraction());
      shapeSampled += std::max<int64_t>(1, picked.pos.numel()) + std::max<int64_t>(1, picked.neg.numel());
      if (picked.pos.numel() > 0) {
        shapePred.push_back(shapeAll[b].index_select(0, picked.pos));
        shapeSquares.push_back(squaresAll.index_select(0, picked.pos));
        shapeGt.push_back(gt.index_select(0, assigned.index_select(0, picked.pos)));
      }
      // objectness and deltas of the guided anchors, assigned and sampled as the RPN's
      auto ga = torch::cat(anchors[b]);
      auto a2 = assignMaxIou(boxIou(ga, gt), as.posIou(), as.negIou(), as.minPosIou(), /*lowQuality=*/true);
      auto p2 = sampleRandom(a2, as.samplesPerImage(), as.positiveFraction());
      logits.push_back(clsAll[b].index_select(0, torch::cat({p2.pos, p2.neg})));
      labels.push_back(torch::cat({torch::ones({p2.pos.numel()}, opts), torch::zeros({p2.neg.numel()}, opts)}));
      if (p2.pos.numel() > 0) {
        dPred.push_back(regAll[b].index_select(0, p2.pos));
        dTgt.push_back(encodeBoxes(ga.index_select(0, p2.pos), gt.index_select(0, a2.index_select(0, p2.pos)), o.bboxStds()));
      }
      sampled += p2.pos.numel() + p2.neg.numel();
    }
    if (shapePred.empty()) {
      (*losses)["rpn_shape"] = shapeAll.sum() * 0;
    } else {
      auto pred = guidedAnchors(torch::cat(shapeSquares), torch::cat(shapePred), o.anchorStds());
      (*losses)["rpn_shape"] = boundedIouLoss(pred, torch::cat(shapeGt), o.boundedIouBeta()).sum() / static_cast<double>(shapeSampled);
    }
    const double norm = std::max<int64_t>(1, sampled);
    (*losses)["rpn_cls"] = F::binary_cross_entropy_with_logits(torch::cat(logits), torch::cat(labels),
                                                               F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kSum)) /
                           norm;
    (*losses)["rpn_bbox"] =
        dPred.empty() ? regAll.sum() * 0 : smoothL1(torch::cat(dPred) - torch::cat(dTgt), o.smoothL1Beta()).sum() / norm;
  }
  const bool train = targets != nullptr;
  auto candidates = [&](int64_t b) {
    std::vector<LevelCandidates> cands;
    for (size_t l = 0; l < levels.size(); ++l) {
      auto scores = cl[l][b].detach().sigmoid(), deltas = rg[l][b].detach(), a = anchors[b][l];
      if (!train) {  // test: only where the location branch expects an object (mmdet loc_filter_thr)
        auto keep = (locs[l][b].detach().sigmoid().reshape(-1) >= o.locFilter()).nonzero().squeeze(1);
        scores = scores.index_select(0, keep);
        deltas = deltas.index_select(0, keep);
        a = a.index_select(0, keep);
      }
      cands.push_back({scores, deltas, a});
    }
    return cands;
  };
  return selectBatchProposals(candidates, o.bboxStds(), sizes, o.proposals(), train);
}

}  // namespace smnas
