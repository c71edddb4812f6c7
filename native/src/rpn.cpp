#include "rpn.hpp"

#include "ops.hpp"

namespace smnas {
namespace F = torch::nn::functional;

ProposalOptions proposalOptionsFrom(const Recipe& r) {
  return ProposalOptions()
      .trainPreNms(r.rpnTrainPreNms)
      .trainPostNms(r.rpnTrainPostNms)
      .testPreNms(r.rpnTestPreNms)
      .testPostNms(r.rpnTestPostNms)
      .nmsIou(r.rpnNmsIou);
}

torch::Tensor selectProposals(const std::vector<LevelCandidates>& levels, const std::array<double, 4>& stds, std::pair<int, int> size,
                              int preNms, int postNms, double nmsIou) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> boxes, scores, ids;
  for (size_t l = 0; l < levels.size(); ++l) {
    const auto& c = levels[l];
    const int64_t k = std::min<int64_t>(preNms, c.scores.numel());
    auto [top, idx] = c.scores.topk(k);
    auto bx = decodeBoxes(c.anchors.index_select(0, idx), c.deltas.index_select(0, idx), stds, size.first, size.second);
    auto valid = ((bx.select(1, 2) - bx.select(1, 0)) > 0) & ((bx.select(1, 3) - bx.select(1, 1)) > 0);
    auto v = valid.nonzero().squeeze(1);
    boxes.push_back(bx.index_select(0, v));
    scores.push_back(top.index_select(0, v));
    ids.push_back(torch::full({v.numel()}, static_cast<int64_t>(l), torch::TensorOptions().dtype(torch::kLong).device(c.scores.device())));
  }
  auto B = torch::cat(boxes), S = torch::cat(scores), I = torch::cat(ids);
  return B.index_select(0, batchedNms(B, S, I, nmsIou, postNms));
}

OnnxValue onnxSelectProposals(OnnxGraph& g, const std::vector<OnnxLevelCandidates>& levels, const std::array<double, 4>& stds,
                              const OnnxImageSize& size, const ProposalOptions& p) {
  std::vector<OnnxValue> boxes, scores, ids;
  auto gather = [&](const OnnxValue& v, const OnnxValue& idx) { return g.op("Gather", {v, idx}, {{"axis", int64_t{0}}}); };
  for (size_t l = 0; l < levels.size(); ++l) {
    const auto& c = levels[l];
    auto [top, idx] = onnxTopK(g, c.scores, p.testPreNms());
    auto bx = onnxDecodeBoxes(g, gather(c.anchors, idx), gather(c.deltas, idx), stds, size);
    auto positive = [&](int hi, int lo) {
      return g.op("Greater", {g.op("Sub", {onnxColumn(g, bx, hi), onnxColumn(g, bx, lo)}), g.scalarFloat(0.f)});
    };
    auto v = onnxFlat(g, g.op("NonZero", {g.op("And", {positive(2, 0), positive(3, 1)})}));
    boxes.push_back(gather(bx, v));
    scores.push_back(gather(top, v));
    ids.push_back(g.op("Expand", {g.scalarFloat(static_cast<float>(l)), g.op("Shape", {v})}));
  }
  auto cat = [&](const std::vector<OnnxValue>& v) { return v.size() == 1 ? v[0] : g.op("Concat", v, {{"axis", int64_t{0}}}); };
  auto B = cat(boxes), S = cat(scores), I = cat(ids);
  return gather(B, onnxBatchedNms(g, B, S, I, p.nmsIou(), p.testPostNms()));
}

std::vector<torch::Tensor> selectBatchProposals(const std::function<std::vector<LevelCandidates>(int64_t)>& candidates,
                                                const std::array<double, 4>& stds, const ImageSizes& sizes, const ProposalOptions& p,
                                                bool train) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> out;
  for (size_t b = 0; b < sizes.size(); ++b)
    out.push_back(selectProposals(candidates(static_cast<int64_t>(b)), stds, sizes[b], train ? p.trainPreNms() : p.testPreNms(),
                                  train ? p.trainPostNms() : p.testPostNms(), p.nmsIou()));
  return out;
}

RpnImpl::RpnImpl(const RpnOptions& o) : options(o) {
  const int C = o.channels(), A = static_cast<int>(o.ratios().size());
  auto head = [](int in, int out, int k) { return ConvOptions(in, out, k).bias(true).init(Init::Normal).std(0.01); };
  conv = register_module("conv", Conv(head(C, C, 3)));
  cls = register_module("cls", Conv(head(C, A, 1)));
  reg = register_module("reg", Conv(head(C, 4 * A, 1)));
}

double RpnImpl::flopsPerLevel(int64_t h, int64_t w) const {
  const double C = options.channels(), A = static_cast<double>(options.ratios().size());
  return h * w * (C * C * 9 + C * A + C * 4 * A);
}

OnnxValue RpnImpl::exportOnnx(OnnxGraph& g, const std::vector<OnnxLevel>& levels, const OnnxImageSize& size) {
  std::vector<OnnxLevelCandidates> c;
  for (const auto& l : levels) {
    auto y = onnxRelu(g, conv->exportOnnx(g, l.x));
    auto nhwc = [&](const OnnxValue& v) { return g.op("Transpose", {v}, {{"perm", std::vector<int64_t>{0, 2, 3, 1}}}); };
    auto scores = g.op("Sigmoid", {onnxFlat(g, nhwc(cls->exportOnnx(g, y)))});
    auto deltas = g.op("Reshape", {nhwc(reg->exportOnnx(g, y)), g.constInts({-1, 4}, {2})});
    c.push_back({scores, deltas, onnxGridAnchors(g, l.x, l.stride, {options.anchorScale()}, options.ratios())});
  }
  return onnxSelectProposals(g, c, kUnitStds, size, options.proposals());
}

std::vector<torch::Tensor> RpnImpl::forward(const std::vector<Level>& levels, const ImageSizes& sizes, const Targets* targets,
                                            LossMap* losses) {
  const int64_t B = levels.front().x.size(0);
  std::vector<torch::Tensor> cl, rg, anchorList;
  for (auto& l : levels) {
    auto y = torch::relu(conv(l.x));
    // outputs in fp32 under autocast: anchors, decoding, NMS and losses stay in full precision
    cl.push_back(cls(y).to(torch::kFloat).permute({0, 2, 3, 1}).reshape({B, -1}));
    rg.push_back(reg(y).to(torch::kFloat).permute({0, 2, 3, 1}).reshape({B, -1, 4}));
    anchorList.push_back(gridAnchors(l.stride, l.x.size(2), l.x.size(3), {options.anchorScale()}, options.ratios(), l.x.device()));
  }
  if (targets) {
    auto cls = torch::cat(cl, 1), reg = torch::cat(rg, 1), anchors = torch::cat(anchorList);
    const auto& s = options.sampling();
    auto opts = cls.options();
    std::vector<torch::Tensor> logits, labels, dPred, dTgt;
    int64_t sampled = 0;
    for (int64_t b = 0; b < B; ++b) {
      auto assigned = assignMaxIou(boxIou(anchors, targets->boxes[b]), s.posIou(), s.negIou(), s.minPosIou(), /*lowQuality=*/true);
      auto picked = sampleRandom(assigned, s.samplesPerImage(), s.positiveFraction());
      logits.push_back(cls[b].index_select(0, torch::cat({picked.pos, picked.neg})));
      labels.push_back(torch::cat({torch::ones({picked.pos.numel()}, opts), torch::zeros({picked.neg.numel()}, opts)}));
      if (picked.pos.numel() > 0) {
        dPred.push_back(reg[b].index_select(0, picked.pos));
        dTgt.push_back(encodeBoxes(anchors.index_select(0, picked.pos),
                                   targets->boxes[b].index_select(0, assigned.index_select(0, picked.pos)), kUnitStds));
      }
      sampled += picked.pos.numel() + picked.neg.numel();
    }
    const double norm = std::max<int64_t>(1, sampled);
    (*losses)["rpn_cls"] = F::binary_cross_entropy_with_logits(torch::cat(logits), torch::cat(labels),
                                                               F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kSum)) /
                           norm;
    (*losses)["rpn_bbox"] = dPred.empty() ? reg.sum() * 0 : (torch::cat(dPred) - torch::cat(dTgt)).abs().sum() / norm;
  }
  auto candidates = [&](int64_t b) {
    std::vector<LevelCandidates> c;
    for (size_t l = 0; l < levels.size(); ++l) c.push_back({cl[l][b].detach().sigmoid(), rg[l][b].detach(), anchorList[l]});
    return c;
  };
  return selectBatchProposals(candidates, kUnitStds, sizes, options.proposals(), /*train=*/targets != nullptr);
}

}  // namespace smnas
