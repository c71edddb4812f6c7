#include "roi_heads.hpp"

#include <cmath>

#include "ops.hpp"

namespace smnas {
namespace F = torch::nn::functional;

BoxHeadImpl::BoxHeadImpl(int C, int roi, int W, int K, bool agnostic, InitScheme init) {
  fc1 = register_module("fc1", torch::nn::Linear(C * roi * roi, W));
  fc2 = register_module("fc2", torch::nn::Linear(W, W));
  cls = register_module("cls", torch::nn::Linear(W, K + 1));
  reg = register_module("reg", torch::nn::Linear(W, agnostic ? 4 : 4 * K));
  // torchvision's TwoMLPHead and FastRCNNPredictor keep torch::nn::Linear's own init
  // (kaiming_uniform(a=sqrt(5)), bias U(+-1/sqrt(fan_in))), which libtorch shares with PyTorch
  if (init == InitScheme::Torchvision) return;
  for (auto* l : {&fc1, &fc2}) {
    torch::nn::init::xavier_uniform_((*l)->weight);
    torch::nn::init::zeros_((*l)->bias);
  }
  torch::nn::init::normal_(cls->weight, 0, 0.01);
  torch::nn::init::zeros_(cls->bias);
  torch::nn::init::normal_(reg->weight, 0, 0.001);
  torch::nn::init::zeros_(reg->bias);
}

std::pair<torch::Tensor, torch::Tensor> BoxHeadImpl::forward(const torch::Tensor& rois) {
  auto y = torch::relu(fc1(rois.flatten(1)));
  y = torch::relu(fc2(y));
  return {cls(y).to(torch::kFloat), reg(y).to(torch::kFloat)};  // fp32 under autocast (losses, decoding)
}

std::pair<OnnxValue, OnnxValue> BoxHeadImpl::exportOnnx(OnnxGraph& g, const OnnxValue& rois) {
  auto linear = [&](torch::nn::Linear& l, const OnnxValue& x) {
    return g.op("Gemm", {x, g.initializer("fc_w", l->weight), g.initializer("fc_b", l->bias)}, {{"transB", int64_t{1}}});
  };
  auto y = onnxRelu(g, linear(fc1, g.op("Flatten", {rois}, {{"axis", int64_t{1}}})));
  y = onnxRelu(g, linear(fc2, y));
  return {linear(cls, y), linear(reg, y)};
}

RoiHeadsImpl::RoiHeadsImpl(const RoiHeadsOptions& o) : options(o) {
  for (size_t t = 0; t < o.stageIous().size(); ++t)
    stages.push_back(register_module(
        std::to_string(t), BoxHead(o.channels(), o.roiSize(), o.fcWidth(), o.numClasses(), /*classAgnostic=*/o.cascade(), o.init())));
}

// 2fc: [.1,.1,.2,.2]; cascade stage t: that / (t+1) (mmdet's 3 stages; the 4th extrapolated)
std::array<double, 4> RoiHeadsImpl::stageStds(int t) const {
  if (!options.cascade()) return kRoiStds;
  return {kRoiStds[0] / (t + 1), kRoiStds[1] / (t + 1), kRoiStds[2] / (t + 1), kRoiStds[3] / (t + 1)};
}

torch::Tensor RoiHeadsImpl::extractRois(const std::vector<Level>& levels, const torch::Tensor& rois) const {
  const int S = options.roiSize();
  // RoIAlign samples in fp32 (features are bf16/fp16 under autocast; the box head casts back)
  if (levels.size() == 1) return roiAlign(levels[0].x.to(torch::kFloat), rois, S, 1.0 / levels[0].stride);
  // RoI levels are the FPN levels up to P4 (strides 4..32, mmdet's featmap_strides)
  int pmin = levels.front().p, pmax = std::min(4, levels.back().p);
  auto w = rois.select(1, 3) - rois.select(1, 1), h = rois.select(1, 4) - rois.select(1, 2);
  auto target = (torch::floor(torch::log2(torch::sqrt((w * h).clamp_min(1e-6)) / options.finestScale() + 1e-6)) + 1)
                    .clamp(pmin, pmax)
                    .to(torch::kLong);
  auto out = torch::zeros({rois.size(0), levels[0].x.size(1), S, S}, levels[0].x.options().dtype(torch::kFloat));
  for (const auto& l : levels) {
    if (l.p > pmax) break;
    auto idx = (target == l.p).nonzero().squeeze(1);
    if (idx.numel() == 0) continue;
    out = out.index_copy(0, idx, roiAlign(l.x.to(torch::kFloat), rois.index_select(0, idx), S, 1.0 / l.stride));
  }
  return out;
}

OnnxValue RoiHeadsImpl::exportRois(OnnxGraph& g, const std::vector<OnnxLevel>& levels, const OnnxValue& rois) const {
  const int64_t S = options.roiSize();
  auto batch = g.op("Expand", {g.scalarInt(0), onnxDim(g, rois, 0)});
  auto align = [&](const OnnxLevel& l) {
    // aligned=true is half_pixel; sampling_ratio 0 the adaptive ceil(roi / S) grid (mmdet's setting)
    return g.op("RoiAlign", {l.x, rois, batch},
                {{"mode", std::string("avg")},
                 {"output_height", S},
                 {"output_width", S},
                 {"sampling_ratio", int64_t{0}},
                 {"spatial_scale", static_cast<float>(1.0 / l.stride)},
                 {"coordinate_transformation_mode", std::string("half_pixel")}});
  };
  if (levels.size() == 1) return align(levels[0]);
  const int pmin = levels.front().p, pmax = std::min(4, levels.back().p);
  auto w = g.op("Sub", {onnxColumn(g, rois, 2), onnxColumn(g, rois, 0)}), h = g.op("Sub", {onnxColumn(g, rois, 3), onnxColumn(g, rois, 1)});
  auto scale = g.op("Div", {g.op("Sqrt", {g.op("Max", {g.op("Mul", {w, h}), g.scalarFloat(1e-6f)})}),
                            g.scalarFloat(static_cast<float>(options.finestScale()))});
  auto log2 = g.op("Div", {g.op("Log", {g.op("Add", {scale, g.scalarFloat(1e-6f)})}), g.scalarFloat(static_cast<float>(std::log(2.0)))});
  auto target = onnxClip(g, g.op("Add", {g.op("Floor", {log2}), g.scalarFloat(1.f)}), static_cast<float>(pmin), static_cast<float>(pmax));
  target = g.op("Reshape", {target, g.constInts({-1, 1, 1, 1}, {4})});
  OnnxValue out;
  for (const auto& l : levels) {
    if (l.p > pmax) break;
    auto pooled = align(l);
    out = out.empty() ? pooled : g.op("Where", {g.op("Equal", {target, g.scalarFloat(static_cast<float>(l.p))}), pooled, out});
  }
  return out;
}

OnnxDetections RoiHeadsImpl::exportOnnx(OnnxGraph& g, const std::vector<OnnxLevel>& levels, const OnnxValue& proposals,
                                        const OnnxImageSize& size) {
  const int64_t K = options.numClasses();
  const bool cascade = options.cascade();
  const int T = numStages();
  auto repeatK = [&](const OnnxValue& boxes) {  // [N,4] -> [N,K,4]
    return g.op("Tile", {g.op("Unsqueeze", {boxes, g.constInts({1}, {1})}), g.constInts({1, K, 1}, {3})});
  };
  OnnxValue rois = proposals, scoreSum, boxes;
  for (int t = 0; t < T; ++t) {
    auto [c, r] = stages[t]->exportOnnx(g, exportRois(g, levels, rois));
    auto p = g.op("Softmax", {c}, {{"axis", int64_t{1}}});
    scoreSum = t == 0 ? p : g.op("Add", {scoreSum, p});
    if (cascade) {
      boxes = onnxDecodeBoxes(g, rois, r, stageStds(t), size);
      rois = boxes;
    } else {
      auto flat = [&](const OnnxValue& v) { return g.op("Reshape", {v, g.constInts({-1, 4}, {2})}); };
      boxes = g.op("Reshape", {onnxDecodeBoxes(g, flat(repeatK(rois)), flat(r), kRoiStds, size), g.constInts({-1, K, 4}, {3})});
    }
  }
  auto mean = T == 1 ? scoreSum : g.op("Div", {scoreSum, g.scalarFloat(static_cast<float>(T))});
  auto scores = g.op("Slice", {mean, g.constInts({0}, {1}), g.constInts({K}, {1}), g.constInts({1}, {1})});  // drop background
  if (cascade) boxes = repeatK(boxes);
  auto cand = g.op("NonZero", {g.op("Greater", {scores, g.scalarFloat(static_cast<float>(options.scoreThreshold()))})});  // [2,M]
  auto ri = g.op("Gather", {cand, g.scalarInt(0)}, {{"axis", int64_t{0}}}),
       ki = g.op("Gather", {cand, g.scalarInt(1)}, {{"axis", int64_t{0}}});
  auto flatIdx = g.op("Add", {g.op("Mul", {ri, g.scalarInt(K)}), ki});
  auto pickedBoxes = g.op("Gather", {g.op("Reshape", {boxes, g.constInts({-1, 4}, {2})}), flatIdx}, {{"axis", int64_t{0}}});
  auto pickedScores = g.op("Gather", {onnxFlat(g, scores), flatIdx}, {{"axis", int64_t{0}}});
  return onnxFinishDetections(g, pickedBoxes, pickedScores, ki, options.nmsIou(), options.maxPerImage());
}

LossMap RoiHeadsImpl::losses(const std::vector<Level>& levels, std::vector<torch::Tensor> props, const ImageSizes& sizes,
                             const Targets& targets) {
  LossMap L;
  const int64_t B = static_cast<int64_t>(props.size());
  const int K = options.numClasses();
  const bool cascade = options.cascade();
  const auto opts = levels.front().x.options().dtype(torch::kFloat);
  const int T = numStages();
  for (int t = 0; t < T; ++t) {
    const double thr = options.stageIous()[t];
    const auto stds = stageStds(t);
    std::vector<torch::Tensor> rois, labels, posIdx, posLabels, posTargets, fromGt;
    int64_t offset = 0;
    for (int64_t b = 0; b < B; ++b) {
      const auto& gt = targets.boxes[b];
      const int64_t G = gt.size(0);
      auto cand = torch::cat({gt, props[b]});  // add_gt_as_proposals
      auto assigned = assignMaxIou(boxIou(cand, gt), /*posThr=*/thr, /*negThr=*/thr, /*minPosIou=*/thr, /*lowQuality=*/false);
      auto s = sampleRandom(assigned, options.samplesPerImage(), options.positiveFraction());
      auto idx = torch::cat({s.pos, s.neg});
      auto boxes = cand.index_select(0, idx);
      rois.push_back(torch::cat({torch::full({idx.numel(), 1}, static_cast<double>(b), opts), boxes}, 1));
      auto lab = torch::full({idx.numel()}, static_cast<int64_t>(K), torch::TensorOptions().dtype(torch::kLong).device(opts.device()));
      if (s.pos.numel() > 0) {
        auto gi = assigned.index_select(0, s.pos);
        auto pl = targets.labels[b].index_select(0, gi);
        lab.slice(0, 0, s.pos.numel()).copy_(pl);
        posIdx.push_back(torch::arange(s.pos.numel(), lab.options()) + offset);
        posLabels.push_back(pl);
        posTargets.push_back(encodeBoxes(cand.index_select(0, s.pos), gt.index_select(0, gi), stds));
      }
      labels.push_back(lab);
      fromGt.push_back(idx < G);
      offset += idx.numel();
    }
    auto R = torch::cat(rois);
    auto Y = torch::cat(labels);
    auto [c, r] = stages[t]->forward(extractRois(levels, R));
    const double w = cascade ? std::pow(0.5, t) : 1.0;  // mmdet stage_loss_weights [1, 0.5, 0.25]
    std::string p;  // appended piecewise: GCC 12 -O2 -std=c++20 warns falsely (-Wstringop-overflow) on "s" + to_string(t)
    if (cascade) p.append("s").append(std::to_string(t)).append("_");
    L[p + "cls"] = F::cross_entropy(c, Y) * w;
    if (!posIdx.empty()) {
      auto pi = torch::cat(posIdx), pl = torch::cat(posLabels);
      auto pred = cascade ? r.index_select(0, pi)
                          : r.view({r.size(0), K, 4}).index_select(0, pi).gather(1, pl.view({-1, 1, 1}).expand({-1, 1, 4})).squeeze(1);
      L[p + "bbox"] = (pred - torch::cat(posTargets)).abs().sum() / std::max<int64_t>(1, R.size(0)) * w;
    } else {
      L[p + "bbox"] = r.sum() * 0;
    }
    if (t + 1 < T) {  // next stage's proposals: this stage's regressed boxes, detached, GT-added ones dropped
      torch::NoGradGuard ng;
      auto isGt = torch::cat(fromGt);
      std::vector<torch::Tensor> next;
      for (int64_t b = 0; b < B; ++b) {
        auto sel = ((R.select(1, 0) == static_cast<double>(b)) & ~isGt).nonzero().squeeze(1);
        next.push_back(decodeBoxes(R.index_select(0, sel).slice(1, 1, 5), r.index_select(0, sel), stds, sizes[b].first, sizes[b].second));
      }
      props = next;
    }
  }
  return L;
}

std::vector<Detections> RoiHeadsImpl::detect(const std::vector<Level>& levels, const std::vector<torch::Tensor>& props,
                                             const ImageSizes& sizes) {
  torch::NoGradGuard ng;
  const int K = options.numClasses();
  const bool cascade = options.cascade();
  const int T = numStages();
  std::vector<Detections> out;
  for (size_t b = 0; b < props.size(); ++b) {
    auto rois = props[b];
    const double W = sizes[b].first, H = sizes[b].second;
    torch::Tensor scoreSum, boxes;
    for (int t = 0; t < T; ++t) {
      auto R = torch::cat({torch::full({rois.size(0), 1}, static_cast<double>(b), rois.options()), rois}, 1);
      auto [c, r] = stages[t]->forward(extractRois(levels, R));
      auto p = torch::softmax(c, 1);
      scoreSum = t == 0 ? p : scoreSum + p;  // test scores: the mean of the stages' scores
      if (cascade) {
        boxes = decodeBoxes(rois, r, stageStds(t), W, H);
        rois = boxes;
      } else {
        boxes = decodeBoxes(rois.repeat_interleave(K, 0), r.view({-1, 4}), kRoiStds, W, H).view({-1, K, 4});
      }
    }
    auto scores = (scoreSum / T).slice(1, 0, K);  // drop the background column
    if (cascade) boxes = boxes.unsqueeze(1).expand({-1, K, 4});
    auto cand = (scores > options.scoreThreshold()).nonzero();
    auto ri = cand.select(1, 0), ki = cand.select(1, 1);
    out.push_back(finishDetections(boxes.index({ri, ki}), scores.index({ri, ki}), ki, options.nmsIou(), options.maxPerImage()));
  }
  return out;
}

}  // namespace smnas
