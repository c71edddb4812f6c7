#include "model.hpp"

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>

#include "ops.hpp"

namespace smnas {
namespace F = torch::nn::functional;
using torch::indexing::Slice;

// ---------------------------------------------------------------------------------------------
// building blocks

ConvImpl::ConvImpl(int in, int out, int k, int stride_, int pad_, int groups_, bool withBias, bool ws_, Init init)
    : stride(stride_), pad(pad_), groups(groups_), ws(ws_) {
  weight = register_parameter("weight", torch::empty({out, in / groups_, k, k}));
  switch (init) {
    case Init::KaimingOut: torch::nn::init::kaiming_normal_(weight, 0.0, torch::kFanOut, torch::kReLU); break;
    case Init::Xavier: torch::nn::init::xavier_uniform_(weight); break;
    case Init::Normal001: torch::nn::init::normal_(weight, 0.0, 0.01); break;
  }
  if (withBias) bias = register_parameter("bias", torch::zeros({out}));
}

torch::Tensor ConvImpl::standardized() {
  if (is_training() || torch::GradMode::is_enabled()) return standardizeWeight(weight);
  if (!wsCache.defined() || wsCacheVersion != static_cast<int64_t>(weight._version()) || wsCache.device() != weight.device()) {
    wsCache = standardizeWeight(weight);
    wsCacheVersion = static_cast<int64_t>(weight._version());
  }
  return wsCache;
}

torch::Tensor ConvImpl::forward(const torch::Tensor& x) {
  auto w = ws ? standardized() : weight;
  return F::conv2d(x, w, F::Conv2dFuncOptions().bias(bias).stride(stride).padding(pad).groups(groups));
}

int groupNormGroups(int channels) {
  for (int g = std::min(32, channels); g > 1; --g)
    if (channels % g == 0) return g;
  return 1;
}

NormImpl::NormImpl(const std::string& kind, int channels) {
  if (kind == "bn") bn = register_module("bn", torch::nn::BatchNorm2d(channels));
  else gn = register_module("gn", torch::nn::GroupNorm(torch::nn::GroupNormOptions(groupNormGroups(channels), channels)));
}

torch::Tensor NormImpl::forward(const torch::Tensor& x) {
  if (bn) return bn->forward(x);
  // Under autocast the input is bf16/fp16: GroupNorm runs in fp32 (CUDA autocast's fp32 list does
  // the same; libtorch 1.13's CPU kernel rejects a bf16 input with fp32 affine parameters).
  return gn->forward(x.scalar_type() == gn->weight.scalar_type() ? x : x.to(gn->weight.scalar_type()));
}

BlockImpl::BlockImpl(const BlockLayout& b, const std::string& blockKind, const std::string& norm) {
  const bool ws = norm == "gn+ws";
  kind = blockKind == "basicblock" ? Kind::Basic : blockKind == "mbblock" ? Kind::Inverted : Kind::Bottleneck;
  const Init init = Init::KaimingOut;
  switch (kind) {
    case Kind::Basic:
      conv1 = register_module("conv1", Conv(b.inChannels, b.midChannels, /*k=*/3, b.stride, /*pad=*/1, /*groups=*/1, /*bias=*/false, ws, init));
      n1 = register_module("n1", Norm(norm, b.midChannels));
      conv2 = register_module("conv2", Conv(b.midChannels, b.outChannels, 3, 1, 1, 1, false, ws, init));
      n2 = register_module("n2", Norm(norm, b.outChannels));
      break;
    case Kind::Bottleneck:
      // torchvision's ResNet v1.5: the stride sits on the 3x3 conv
      conv1 = register_module("conv1", Conv(b.inChannels, b.midChannels, /*k=*/1, /*stride=*/1, /*pad=*/0, /*groups=*/1, /*bias=*/false, ws, init));
      n1 = register_module("n1", Norm(norm, b.midChannels));
      conv2 = register_module("conv2", Conv(b.midChannels, b.midChannels, 3, b.stride, 1, b.groups, false, ws, init));
      n2 = register_module("n2", Norm(norm, b.midChannels));
      conv3 = register_module("conv3", Conv(b.midChannels, b.outChannels, 1, 1, 0, 1, false, ws, init));
      n3 = register_module("n3", Norm(norm, b.outChannels));
      break;
    case Kind::Inverted:
      if (b.midChannels != b.inChannels) {  // the stem's expansion-1 block has no expansion conv
        conv1 = register_module("conv1", Conv(b.inChannels, b.midChannels, /*k=*/1, /*stride=*/1, /*pad=*/0, /*groups=*/1, /*bias=*/false, ws, init));
        n1 = register_module("n1", Norm(norm, b.midChannels));
      }
      conv2 = register_module("conv2", Conv(b.midChannels, b.midChannels, /*k=*/3, b.stride, /*pad=*/1, b.groups, /*bias=*/false, ws, init));
      n2 = register_module("n2", Norm(norm, b.midChannels));
      conv3 = register_module("conv3", Conv(b.midChannels, b.outChannels, 1, 1, 0, 1, false, ws, init));
      n3 = register_module("n3", Norm(norm, b.outChannels));
      identity = b.stride == 1 && b.inChannels == b.outChannels;
      break;
  }
  if (b.projection) {
    down = register_module("down", Conv(b.inChannels, b.outChannels, /*k=*/1, b.stride, /*pad=*/0, /*groups=*/1, /*bias=*/false, ws, init));
    dn = register_module("dn", Norm(norm, b.outChannels));
  }
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  if (kind == Kind::Inverted) {
    auto y = conv1 ? torch::clamp(n1(conv1(x)), 0, 6) : x;  // ReLU6
    y = torch::clamp(n2(conv2(y)), 0, 6);
    y = n3(conv3(y));  // linear bottleneck: no activation
    return identity ? x + y : y;
  }
  auto y = torch::relu(n1(conv1(x)));
  if (kind == Kind::Bottleneck) {
    y = torch::relu(n2(conv2(y)));
    y = n3(conv3(y));
  } else {
    y = n2(conv2(y));
  }
  auto shortcut = down ? dn(down(x)) : x;
  return torch::relu(y + shortcut);
}

BackboneImpl::BackboneImpl(const BackboneLayout& L, const std::string& norm, int numStages) : inverted(L.block == "mbblock") {
  const bool ws = norm == "gn+ws";
  if (inverted) {
    // MobileNetV2 stem: 3x3/2 conv to stemChannels (32), norm, ReLU6, then the expansion-1 block to
    // the first stage's input width (16)
    stem = register_module("stem", Conv(3, L.stemChannels, /*k=*/3, /*stride=*/2, /*pad=*/1, /*groups=*/1, /*bias=*/false, ws, Init::KaimingOut));
    stemNorm = register_module("stemNorm", Norm(norm, L.stemChannels));
    const int out = L.stages[0].front().inChannels;
    BlockLayout sb{/*inChannels=*/L.stemChannels, /*outChannels=*/out, /*midChannels=*/L.stemChannels, /*stride=*/1, /*groups=*/L.stemChannels,
                   /*projection=*/false};
    stemBlock = register_module("stemBlock", Block(sb, L.block, norm));
  } else {
    stem = register_module("stem", Conv(3, L.stemChannels, /*k=*/7, /*stride=*/2, /*pad=*/3, /*groups=*/1, /*bias=*/false, ws, Init::KaimingOut));
    stemNorm = register_module("stemNorm", Norm(norm, L.stemChannels));
  }
  for (int s = 0; s < numStages; ++s) {
    torch::nn::Sequential seq;
    for (const auto& b : L.stages[s]) seq->push_back(Block(b, L.block, norm));
    stages.push_back(register_module("stage" + std::to_string(s + 1), seq));
  }
}

std::vector<torch::Tensor> BackboneImpl::forward(const torch::Tensor& x) {
  torch::Tensor y;
  if (inverted) {
    y = stemBlock(torch::clamp(stemNorm(stem(x)), 0, 6));
  } else {
    y = torch::relu(stemNorm(stem(x)));
    y = F::max_pool2d(y, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
  }
  std::vector<torch::Tensor> out;
  for (auto& s : stages) {
    y = s->forward(y);
    out.push_back(y);
  }
  return out;
}

FpnImpl::FpnImpl(const std::array<int, 4>& sc, int from_, int to_, int C) : from(from_), to(to_) {
  lateral = register_module("lateral", torch::nn::ModuleList());
  output = register_module("output", torch::nn::ModuleList());
  extra = register_module("extra", torch::nn::ModuleList());
  for (int p = from; p <= std::min(to, 4); ++p) {
    lateral->push_back(Conv(sc[p - 1], C, 1, 1, 0, 1, true, false, Init::Xavier));
    output->push_back(Conv(C, C, 3, 1, 1, 1, true, false, Init::Xavier));
  }
  for (int p = 5; p <= to; ++p) extra->push_back(Conv(C, C, 3, 2, 1, 1, true, false, Init::Xavier));
}

std::vector<torch::Tensor> FpnImpl::forward(const std::vector<torch::Tensor>& c) {
  const int top = std::min(to, 4);
  std::vector<torch::Tensor> lat;
  for (int p = from; p <= top; ++p) lat.push_back(lateral[p - from]->as<ConvImpl>()->forward(c[p - 1]));
  for (int i = static_cast<int>(lat.size()) - 1; i > 0; --i) {
    auto up = F::interpolate(lat[i], F::InterpolateFuncOptions().size(std::vector<int64_t>{lat[i - 1].size(2), lat[i - 1].size(3)}).mode(torch::kNearest));
    lat[i - 1] = lat[i - 1] + up;
  }
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < lat.size(); ++i) out.push_back(output[i]->as<ConvImpl>()->forward(lat[i]));
  for (int p = 5; p <= to; ++p) {
    auto in = p == 5 ? out.back() : torch::relu(out.back());  // P5 on P4's output, P6 on ReLU(P5)
    out.push_back(extra[p - 5]->as<ConvImpl>()->forward(in));
  }
  return out;
}

RpnHeadImpl::RpnHeadImpl(int C, int A) {
  conv = register_module("conv", Conv(C, C, 3, 1, 1, 1, true, false, Init::Normal001));
  cls = register_module("cls", Conv(C, A, 1, 1, 0, 1, true, false, Init::Normal001));
  reg = register_module("reg", Conv(C, 4 * A, 1, 1, 0, 1, true, false, Init::Normal001));
}

std::pair<torch::Tensor, torch::Tensor> RpnHeadImpl::forward(const torch::Tensor& x) {
  auto y = torch::relu(conv(x));
  // outputs in fp32 under autocast: anchors, decoding, NMS and losses stay in full precision
  return {cls(y).to(torch::kFloat), reg(y).to(torch::kFloat)};
}

BoxHeadImpl::BoxHeadImpl(int C, int roi, int W, int K, bool agnostic) {
  fc1 = register_module("fc1", torch::nn::Linear(C * roi * roi, W));
  fc2 = register_module("fc2", torch::nn::Linear(W, W));
  cls = register_module("cls", torch::nn::Linear(W, K + 1));
  reg = register_module("reg", torch::nn::Linear(W, agnostic ? 4 : 4 * K));
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

RetinaHeadImpl::RetinaHeadImpl(int inC, int C, int stacked, int A, int K) {
  clsConvs = register_module("clsConvs", torch::nn::ModuleList());
  regConvs = register_module("regConvs", torch::nn::ModuleList());
  for (int i = 0; i < stacked; ++i) {
    // Kaiming, not mmdet's N(0, 0.01): with toy widths (16..64 channels) four N(0, 0.01) convs shrink
    // the signal ~1e-4x and the head never learns (measured: focal loss flat at its prior value).
    // Each tower conv is followed by a parameter-free GroupNorm (see forward).
    clsConvs->push_back(Conv(i == 0 ? inC : C, C, 3, 1, 1, 1, true, false, Init::KaimingOut));
    regConvs->push_back(Conv(i == 0 ? inC : C, C, 3, 1, 1, 1, true, false, Init::KaimingOut));
  }
  cls = register_module("cls", Conv(C, A * K, 3, 1, 1, 1, true, false, Init::Normal001));
  reg = register_module("reg", Conv(C, 4 * A, 3, 1, 1, 1, true, false, Init::Normal001));
  torch::NoGradGuard ng;
  cls->bias.fill_(-std::log((1 - 0.01) / 0.01));  // focal-loss prior: every anchor starts at p = 0.01
}

// Tower conv -> GroupNorm without affine parameters -> ReLU. Without a norm the plain tower
// (mmdet's default head) sat on a plateau for ~250 iterations on the toy data and half its ReLUs
// died (focal loss ~1.1, L1 flat; AP50 0.05-0.07 after 6 epochs vs 0.58 after 20); with GN the
// same runs reach AP50 0.43-0.54 in 6 epochs at the toy lr (native/README.md). mmdet's and
// torchvision's GN RetinaNet heads do the same with affine GN; this one has no parameters, so the
// head's parameter count and FLOPs (search/cost.ts) are those of the plain head. In fp32 under
// autocast, like every GroupNorm here.
static torch::Tensor towerNorm(const torch::Tensor& t) {
  return torch::group_norm(t.to(torch::kFloat), groupNormGroups(static_cast<int>(t.size(1))));
}

std::pair<torch::Tensor, torch::Tensor> RetinaHeadImpl::forward(const torch::Tensor& x) {
  auto c = x, r = x;
  for (auto& m : *clsConvs) c = torch::relu(towerNorm(m->as<ConvImpl>()->forward(c)));
  for (auto& m : *regConvs) r = torch::relu(towerNorm(m->as<ConvImpl>()->forward(r)));
  return {cls(c).to(torch::kFloat), reg(r).to(torch::kFloat)};  // fp32 under autocast (focal loss, decoding)
}

// ---------------------------------------------------------------------------------------------
// the detector

namespace {
// SMNAS_PROFILE=1: wall time per training phase on stderr at exit (coarse, for tuning only)
struct PhaseTimes {
  std::map<std::string, double> ms;
  ~PhaseTimes() {
    if (!std::getenv("SMNAS_PROFILE")) return;
    for (auto& [k, v] : ms) std::cerr << "[profile] " << k << " " << v << " ms" << std::endl;
  }
} gPhases;
struct Phase {
  const char* name;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  explicit Phase(const char* n) : name(n) {}
  ~Phase() { gPhases.ms[name] += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(); }
};
const std::array<double, 4> kUnitStds{1, 1, 1, 1};
const std::array<double, 4> kRoiStds{0.1, 0.1, 0.2, 0.2};

std::array<double, 4> stageStds(int t) {  // cascade: [.1,.1,.2,.2] / (t+1) (mmdet's 3 stages; 4th extrapolated)
  return {kRoiStds[0] / (t + 1), kRoiStds[1] / (t + 1), kRoiStds[2] / (t + 1), kRoiStds[3] / (t + 1)};
}

torch::Tensor sigmoidFocalLoss(const torch::Tensor& logits, const torch::Tensor& targets, double alpha = 0.25, double gamma = 2.0) {
  auto p = torch::sigmoid(logits);
  auto ce = F::binary_cross_entropy_with_logits(logits, targets, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  auto pt = p * targets + (1 - p) * (1 - targets);
  auto at = alpha * targets + (1 - alpha) * (1 - targets);
  return (at * ce * (1 - pt).pow(gamma)).sum();
}
}  // namespace

DetectorImpl::DetectorImpl(const Layout& L, const Recipe& r) : layout(L), recipe(r) {
  const bool fpn = L.neck.kind == "fpn";
  // stages built as the cost model counts them (search/layout-resolve.ts builtStages): none -> 3, fpn -> min(to, 4)
  backbone = register_module("backbone", Backbone(L.backbone, r.norm, fpn ? std::min(L.neck.to, 4) : 3));
  if (fpn) neck = register_module("neck", Fpn(L.backbone.stageChannels, L.neck.from, L.neck.to, L.neck.channels));
  const int C = L.neck.channels;
  if (L.head.kind == "retina") {
    retina = register_module("head", RetinaHead(C, L.head.convChannels, L.head.stackedConvs, 9, L.head.numClasses));
  } else {
    rpn = register_module("rpn", RpnHead(C, L.rpn.anchorsPerLocation));
    head = register_module("head", torch::nn::ModuleList());
    const int stages = L.head.kind == "cascade" ? L.head.stages : 1;
    for (int t = 0; t < stages; ++t) head->push_back(BoxHead(C, L.head.roiSize, L.head.fcWidth, L.head.numClasses, L.head.kind == "cascade"));
  }
}

std::vector<Level> DetectorImpl::features(const torch::Tensor& images) {
  auto c = backbone(images);
  std::vector<Level> levels;
  if (!neck) {
    levels.push_back({3, 16, c[2]});
  } else {
    auto p = neck(c);
    for (int l = layout.neck.from; l <= layout.neck.to; ++l) levels.push_back({l, 4 << (l - 1), p[l - layout.neck.from]});
  }
  return levels;
}

torch::Tensor DetectorImpl::anchorsFor(const std::vector<Level>& levels, bool retinaAnchors, std::vector<int64_t>& levelSizes) {
  std::vector<torch::Tensor> all;
  const std::vector<double> ratios{0.5, 1.0, 2.0};
  const std::vector<double> scales = retinaAnchors ? std::vector<double>{4.0, 4.0 * std::pow(2.0, 1.0 / 3), 4.0 * std::pow(2.0, 2.0 / 3)}
                                                   : std::vector<double>{8.0};
  levelSizes.clear();
  for (const auto& l : levels) {
    all.push_back(gridAnchors(l.stride, l.x.size(2), l.x.size(3), scales, ratios, l.x.device()));
    levelSizes.push_back(all.back().size(0));
  }
  return torch::cat(all, 0);
}

std::vector<torch::Tensor> DetectorImpl::proposals(const std::vector<Level>& levels, const torch::Tensor& cls, const torch::Tensor& reg,
                                                   const torch::Tensor& anchors, const std::vector<int64_t>& levelSizes,
                                                   const std::vector<std::pair<int, int>>& sizes, bool train) {
  torch::NoGradGuard ng;
  const int pre = train ? recipe.rpnTrainPreNms : recipe.rpnTestPreNms;
  const int post = train ? recipe.rpnTrainPostNms : recipe.rpnTestPostNms;
  std::vector<torch::Tensor> out;
  for (int64_t b = 0; b < cls.size(0); ++b) {
    std::vector<torch::Tensor> boxes, scores, ids;
    int64_t start = 0;
    for (size_t l = 0; l < levels.size(); ++l) {
      const int64_t n = levelSizes[l];
      auto s = cls[b].slice(0, start, start + n).sigmoid();
      auto k = std::min<int64_t>(pre, n);
      auto [top, idx] = s.topk(k);
      auto bx = decodeBoxes(anchors.slice(0, start, start + n).index_select(0, idx), reg[b].slice(0, start, start + n).index_select(0, idx),
                            kUnitStds, sizes[b].first, sizes[b].second);
      auto valid = ((bx.select(1, 2) - bx.select(1, 0)) > 0) & ((bx.select(1, 3) - bx.select(1, 1)) > 0);
      auto v = valid.nonzero().squeeze(1);
      boxes.push_back(bx.index_select(0, v));
      scores.push_back(top.index_select(0, v));
      ids.push_back(torch::full({v.numel()}, static_cast<int64_t>(l), torch::TensorOptions().dtype(torch::kLong).device(cls.device())));
      start += n;
    }
    auto B = torch::cat(boxes), S = torch::cat(scores), I = torch::cat(ids);
    auto keep = batchedNms(B, S, I, recipe.rpnNmsIou, post);
    out.push_back(B.index_select(0, keep));
  }
  return out;
}

torch::Tensor DetectorImpl::extractRois(const std::vector<Level>& levels, const torch::Tensor& rois) {
  const int S = layout.head.roiSize;
  // RoIAlign samples in fp32 (features are bf16/fp16 under autocast; the box head casts back)
  if (levels.size() == 1) return roiAlign(levels[0].x.to(torch::kFloat), rois, S, 1.0 / levels[0].stride);
  // RoI levels are the FPN levels up to P4 (strides 4..32, mmdet's featmap_strides); finest scale 56
  int pmin = levels.front().p, pmax = std::min(4, levels.back().p);
  auto w = rois.select(1, 3) - rois.select(1, 1), h = rois.select(1, 4) - rois.select(1, 2);
  auto target = (torch::floor(torch::log2(torch::sqrt((w * h).clamp_min(1e-6)) / 56.0 + 1e-6)) + 1).clamp(pmin, pmax).to(torch::kLong);
  auto out = torch::zeros({rois.size(0), levels[0].x.size(1), S, S}, levels[0].x.options().dtype(torch::kFloat));
  for (const auto& l : levels) {
    if (l.p > pmax) break;
    auto idx = (target == l.p).nonzero().squeeze(1);
    if (idx.numel() == 0) continue;
    out = out.index_copy(0, idx, roiAlign(l.x.to(torch::kFloat), rois.index_select(0, idx), S, 1.0 / l.stride));
  }
  return out;
}

std::map<std::string, torch::Tensor> DetectorImpl::losses(const torch::Tensor& images, const std::vector<torch::Tensor>& gtBoxes,
                                                          const std::vector<torch::Tensor>& gtLabels,
                                                          const std::vector<std::pair<int, int>>& sizes) {
  std::vector<Level> levels;
  {
    Phase ph("features");
    levels = features(images);
  }
  const int64_t B = images.size(0);
  const int K = layout.head.numClasses;
  std::map<std::string, torch::Tensor> L;
  std::vector<int64_t> levelSizes;

  if (retina) {
    std::vector<torch::Tensor> cl, rg;
    for (auto& l : levels) {
      auto [c, r] = retina(l.x);
      cl.push_back(c.permute({0, 2, 3, 1}).reshape({B, -1, K}));
      rg.push_back(r.permute({0, 2, 3, 1}).reshape({B, -1, 4}));
    }
    auto cls = torch::cat(cl, 1), reg = torch::cat(rg, 1);
    auto anchors = anchorsFor(levels, true, levelSizes);
    torch::Tensor focal = torch::zeros({}, images.options()), l1 = torch::zeros({}, images.options());
    int64_t numPos = 0;
    for (int64_t b = 0; b < B; ++b) {
      auto assigned = assignMaxIou(boxIou(anchors, gtBoxes[b]), 0.5, 0.4, 0.0, true);
      auto valid = (assigned != -2).nonzero().squeeze(1);
      auto pos = (assigned >= 0).nonzero().squeeze(1);
      auto target = torch::zeros({anchors.size(0), K}, images.options());
      if (pos.numel() > 0) {
        auto gi = assigned.index_select(0, pos);
        target.index_put_({pos, gtLabels[b].index_select(0, gi)}, 1.0);
        auto t = encodeBoxes(anchors.index_select(0, pos), gtBoxes[b].index_select(0, gi), kUnitStds);
        l1 = l1 + (reg[b].index_select(0, pos) - t).abs().sum();
      }
      focal = focal + sigmoidFocalLoss(cls[b].index_select(0, valid), target.index_select(0, valid));
      numPos += pos.numel();
    }
    const double norm = std::max<int64_t>(1, numPos);
    L["focal"] = focal / norm;
    L["l1"] = l1 / norm;
    return L;
  }

  // RPN
  auto phRpn = std::make_unique<Phase>("rpn");
  std::vector<torch::Tensor> cl, rg;
  for (auto& l : levels) {
    auto [c, r] = rpn(l.x);
    cl.push_back(c.permute({0, 2, 3, 1}).reshape({B, -1}));
    rg.push_back(r.permute({0, 2, 3, 1}).reshape({B, -1, 4}));
  }
  auto cls = torch::cat(cl, 1), reg = torch::cat(rg, 1);
  auto anchors = anchorsFor(levels, false, levelSizes);
  {
    std::vector<torch::Tensor> logits, labels, dPred, dTgt;
    int64_t sampled = 0;
    for (int64_t b = 0; b < B; ++b) {
      auto assigned = assignMaxIou(boxIou(anchors, gtBoxes[b]), 0.7, 0.3, 0.3, true);
      auto s = sampleRandom(assigned, recipe.rpnSamples, recipe.rpnPosFraction);
      logits.push_back(cls[b].index_select(0, torch::cat({s.pos, s.neg})));
      labels.push_back(torch::cat({torch::ones({s.pos.numel()}, images.options()), torch::zeros({s.neg.numel()}, images.options())}));
      if (s.pos.numel() > 0) {
        dPred.push_back(reg[b].index_select(0, s.pos));
        dTgt.push_back(encodeBoxes(anchors.index_select(0, s.pos), gtBoxes[b].index_select(0, assigned.index_select(0, s.pos)), kUnitStds));
      }
      sampled += s.pos.numel() + s.neg.numel();
    }
    const double norm = std::max<int64_t>(1, sampled);
    L["rpn_cls"] = F::binary_cross_entropy_with_logits(torch::cat(logits), torch::cat(labels),
                                                       F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kSum)) / norm;
    L["rpn_bbox"] = dPred.empty() ? reg.sum() * 0 : (torch::cat(dPred) - torch::cat(dTgt)).abs().sum() / norm;
  }
  phRpn.reset();
  std::vector<torch::Tensor> props;
  {
    Phase ph("proposals");
    props = proposals(levels, cls.detach(), reg.detach(), anchors, levelSizes, sizes, true);
  }
  Phase phRoi("roi");
  // RoI head stage(s)
  const bool cascade = layout.head.kind == "cascade";
  const int T = static_cast<int>(head->size());
  for (int t = 0; t < T; ++t) {
    const double thr = cascade ? layout.head.iouThresholds[t] : 0.5;
    const auto stds = cascade ? stageStds(t) : kRoiStds;
    std::vector<torch::Tensor> rois, labels, posIdx, posLabels, posTargets, fromGt;
    int64_t offset = 0;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t G = gtBoxes[b].size(0);
      auto cand = torch::cat({gtBoxes[b], props[b]});  // add_gt_as_proposals
      auto assigned = assignMaxIou(boxIou(cand, gtBoxes[b]), thr, thr, thr, false);
      auto s = sampleRandom(assigned, recipe.roiSamples, recipe.roiPosFraction);
      auto idx = torch::cat({s.pos, s.neg});
      auto boxes = cand.index_select(0, idx);
      rois.push_back(torch::cat({torch::full({idx.numel(), 1}, static_cast<double>(b), images.options()), boxes}, 1));
      auto lab = torch::full({idx.numel()}, static_cast<int64_t>(K), torch::TensorOptions().dtype(torch::kLong).device(images.device()));
      if (s.pos.numel() > 0) {
        auto gi = assigned.index_select(0, s.pos);
        auto pl = gtLabels[b].index_select(0, gi);
        lab.slice(0, 0, s.pos.numel()).copy_(pl);
        posIdx.push_back(torch::arange(s.pos.numel(), lab.options()) + offset);
        posLabels.push_back(pl);
        posTargets.push_back(encodeBoxes(cand.index_select(0, s.pos), gtBoxes[b].index_select(0, gi), stds));
      }
      labels.push_back(lab);
      fromGt.push_back(idx < G);
      offset += idx.numel();
    }
    auto R = torch::cat(rois);
    auto Y = torch::cat(labels);
    auto [c, r] = head[t]->as<BoxHeadImpl>()->forward(extractRois(levels, R));
    const double w = cascade ? std::pow(0.5, t) : 1.0;  // mmdet stage_loss_weights [1, 0.5, 0.25]
    std::string p;  // appended piecewise: GCC 12 -O2 -std=c++20 warns falsely (-Wstringop-overflow) on "s" + to_string(t)
    if (cascade) p.append("s").append(std::to_string(t)).append("_");
    L[p + "cls"] = F::cross_entropy(c, Y) * w;
    if (!posIdx.empty()) {
      auto pi = torch::cat(posIdx), pl = torch::cat(posLabels);
      auto pred = cascade ? r.index_select(0, pi) : r.view({r.size(0), K, 4}).index_select(0, pi).gather(1, pl.view({-1, 1, 1}).expand({-1, 1, 4})).squeeze(1);
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

std::vector<Detections> DetectorImpl::detect(const torch::Tensor& images, const std::vector<std::pair<int, int>>& sizes) {
  torch::NoGradGuard ng;
  auto levels = features(images);
  const int64_t B = images.size(0);
  const int K = layout.head.numClasses;
  std::vector<int64_t> levelSizes;
  std::vector<Detections> out;
  auto finish = [&](torch::Tensor boxes, torch::Tensor scores, torch::Tensor labels) {
    auto keep = batchedNms(boxes, scores, labels, recipe.testNmsIou, recipe.testMaxPerImage);
    out.push_back({boxes.index_select(0, keep), scores.index_select(0, keep), labels.index_select(0, keep)});
  };

  if (retina) {
    auto anchors = anchorsFor(levels, true, levelSizes);
    std::vector<torch::Tensor> cl, rg;
    for (auto& l : levels) {
      auto [c, r] = retina(l.x);
      cl.push_back(c.permute({0, 2, 3, 1}).reshape({B, -1, K}));
      rg.push_back(r.permute({0, 2, 3, 1}).reshape({B, -1, 4}));
    }
    for (int64_t b = 0; b < B; ++b) {
      std::vector<torch::Tensor> bx, sc, lb;
      int64_t start = 0;
      for (size_t l = 0; l < levels.size(); ++l) {
        const int64_t n = levelSizes[l];
        auto s = cl[l][b].sigmoid().reshape(-1);
        auto cand = (s > recipe.testScoreThreshold).nonzero().squeeze(1);
        auto cs = s.index_select(0, cand);
        if (cs.numel() > 1000) {  // nms_pre
          auto top = std::get<1>(cs.topk(1000));
          cand = cand.index_select(0, top);
          cs = cs.index_select(0, top);
        }
        auto ai = torch::div(cand, K, "floor");
        bx.push_back(decodeBoxes(anchors.slice(0, start, start + n).index_select(0, ai), rg[l][b].index_select(0, ai), kUnitStds, sizes[b].first,
                                 sizes[b].second));
        sc.push_back(cs);
        lb.push_back(cand.remainder(K));
        start += n;
      }
      finish(torch::cat(bx), torch::cat(sc), torch::cat(lb));
    }
    return out;
  }

  std::vector<torch::Tensor> cl, rg;
  for (auto& l : levels) {
    auto [c, r] = rpn(l.x);
    cl.push_back(c.permute({0, 2, 3, 1}).reshape({B, -1}));
    rg.push_back(r.permute({0, 2, 3, 1}).reshape({B, -1, 4}));
  }
  auto anchors = anchorsFor(levels, false, levelSizes);
  auto props = proposals(levels, torch::cat(cl, 1), torch::cat(rg, 1), anchors, levelSizes, sizes, false);
  const bool cascade = layout.head.kind == "cascade";
  const int T = static_cast<int>(head->size());
  for (int64_t b = 0; b < B; ++b) {
    auto rois = props[b];
    const double W = sizes[b].first, H = sizes[b].second;
    torch::Tensor scoreSum, boxes;
    for (int t = 0; t < T; ++t) {
      auto R = torch::cat({torch::full({rois.size(0), 1}, static_cast<double>(b), rois.options()), rois}, 1);
      auto [c, r] = head[t]->as<BoxHeadImpl>()->forward(extractRois(levels, R));
      auto p = torch::softmax(c, 1);
      scoreSum = t == 0 ? p : scoreSum + p;
      if (cascade) {
        boxes = decodeBoxes(rois, r, stageStds(t), W, H);
        rois = boxes;
      } else {
        auto d = r.view({-1, 4});
        boxes = decodeBoxes(rois.repeat_interleave(K, 0), d, kRoiStds, W, H).view({-1, K, 4});
      }
    }
    auto scores = (scoreSum / T).slice(1, 0, K);  // drop the background column
    if (cascade) boxes = boxes.unsqueeze(1).expand({-1, K, 4});
    auto cand = (scores > recipe.testScoreThreshold).nonzero();
    auto ri = cand.select(1, 0), ki = cand.select(1, 1);
    finish(boxes.index({ri, ki}), scores.index({ri, ki}), ki);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// describe

namespace {
double convMacs(int in, int out, int k, int groups, int64_t hOut, int64_t wOut) {
  return static_cast<double>(out) * hOut * wOut * (in / groups) * k * k;
}
int convOut(int x, int k, int s, int p) { return (x + 2 * p - k) / s + 1; }
}  // namespace

std::map<std::string, ModuleCost> describeModel(Detector& model, const Layout& L, int rois) {
  std::map<std::string, ModuleCost> m;
  for (const char* k : {"backbone", "neck", "rpn", "head"}) m[k] = ModuleCost{};
  for (const auto& p : model->named_parameters()) {
    std::string top = p.key().substr(0, p.key().find('.'));
    m[top].params += static_cast<double>(p.value().numel());
  }
  // FLOPs (MACs) for one image
  const bool inverted = L.backbone.block == "mbblock";
  const int Cs = L.backbone.stemChannels;
  double bb = 0;
  int h, w;
  if (inverted) {  // 3x3/2 conv, then the stem block: depthwise 3x3 and a 1x1 to the first stage's input
    h = convOut(L.height, 3, 2, 1);
    w = convOut(L.width, 3, 2, 1);
    bb = convMacs(3, Cs, 3, 1, h, w) + convMacs(Cs, Cs, 3, Cs, h, w) + convMacs(Cs, L.backbone.stages[0].front().inChannels, 1, 1, h, w);
  } else {  // 7x7/2 conv and a 3x3/2 max-pool
    h = convOut(L.height, 7, 2, 3);
    w = convOut(L.width, 7, 2, 3);
    bb = convMacs(3, Cs, 7, 1, h, w);
    h = convOut(h, 3, 2, 1);
    w = convOut(w, 3, 2, 1);
  }
  const bool fpn = L.neck.kind == "fpn";
  std::array<std::pair<int, int>, 4> stageHW{};
  for (int s = 0; s < (fpn ? std::min(L.neck.to, 4) : 3); ++s) {
    for (const auto& b : L.backbone.stages[s]) {
      int ho = convOut(h, 3, b.stride, 1), wo = convOut(w, 3, b.stride, 1);
      if (L.backbone.block == "basicblock") {
        bb += convMacs(b.inChannels, b.midChannels, 3, 1, ho, wo) + convMacs(b.midChannels, b.outChannels, 3, 1, ho, wo);
      } else {  // bottlenecks and inverted residuals: 1x1, 3x3 (stride, groups), 1x1
        bb += convMacs(b.inChannels, b.midChannels, 1, 1, h, w) + convMacs(b.midChannels, b.midChannels, 3, b.groups, ho, wo) +
              convMacs(b.midChannels, b.outChannels, 1, 1, ho, wo);
      }
      if (b.projection) bb += convMacs(b.inChannels, b.outChannels, 1, 1, convOut(h, 1, b.stride, 0), convOut(w, 1, b.stride, 0));
      h = ho;
      w = wo;
    }
    stageHW[s] = {h, w};
  }
  m["backbone"].flops = bb;
  const int C = L.neck.channels;
  std::vector<std::pair<int, int>> levelHW;  // sizes of the maps the heads see
  if (fpn) {
    double nk = 0;
    for (int p = L.neck.from; p <= std::min(L.neck.to, 4); ++p) {
      auto [lh, lw] = stageHW[p - 1];
      nk += convMacs(L.backbone.stageChannels[p - 1], C, 1, 1, lh, lw) + convMacs(C, C, 3, 1, lh, lw);
      levelHW.push_back({lh, lw});
    }
    for (int p = 5; p <= L.neck.to; ++p) {
      auto [ph, pw] = levelHW.back();
      int eh = convOut(ph, 3, 2, 1), ew = convOut(pw, 3, 2, 1);
      nk += convMacs(C, C, 3, 1, eh, ew);
      levelHW.push_back({eh, ew});
    }
    m["neck"].flops = nk;
  } else {
    levelHW.push_back(stageHW[2]);
  }
  const int K = L.head.numClasses;
  if (L.head.kind == "retina") {
    double hd = 0;
    const int A = 9, Ch = L.head.convChannels;
    for (auto [lh, lw] : levelHW) {
      for (int i = 0; i < L.head.stackedConvs; ++i) hd += 2 * convMacs(i == 0 ? C : Ch, Ch, 3, 1, lh, lw);
      hd += convMacs(Ch, A * K, 3, 1, lh, lw) + convMacs(Ch, 4 * A, 3, 1, lh, lw);
    }
    m["head"].flops = hd;
  } else {
    double rp = 0;
    const int A = L.rpn.anchorsPerLocation;
    for (auto [lh, lw] : levelHW) rp += convMacs(C, C, 3, 1, lh, lw) + convMacs(C, A, 1, 1, lh, lw) + convMacs(C, 4 * A, 1, 1, lh, lw);
    m["rpn"].flops = rp;
    const int S = L.head.roiSize, W = L.head.fcWidth;
    const bool cascade = L.head.kind == "cascade";
    const int stages = cascade ? L.head.stages : 1;
    double perRoi = static_cast<double>(C) * S * S * W + static_cast<double>(W) * W + static_cast<double>(W) * (K + 1) +
                    static_cast<double>(W) * (cascade ? 4 : 4 * K);
    m["head"].flops = perRoi * stages * rois;
  }
  return m;
}

ClassifierImpl::ClassifierImpl(const Layout& L, const std::string& norm, int numClasses) {
  backbone = register_module("backbone", Backbone(L.backbone, norm, 4));
  int features = L.backbone.stageChannels[3];
  if (backbone->inverted) {
    last = register_module("last", Conv(features, kMobileNetLastChannels, /*k=*/1, /*stride=*/1, /*pad=*/0, /*groups=*/1, /*bias=*/false,
                                        norm == "gn+ws", Init::KaimingOut));
    lastNorm = register_module("lastNorm", Norm(norm, kMobileNetLastChannels));
    features = kMobileNetLastChannels;
  }
  fc = register_module("fc", torch::nn::Linear(features, numClasses));
  if (backbone->inverted) {  // torchvision MobileNetV2: N(0, 0.01), zero bias
    torch::nn::init::normal_(fc->weight, 0, 0.01);
    torch::nn::init::zeros_(fc->bias);
  }
}

torch::Tensor ClassifierImpl::forward(const torch::Tensor& x) {
  auto y = backbone(x).back();
  if (last) {
    y = torch::clamp(lastNorm(last(y)), 0, 6);
    y = F::dropout(y.mean({2, 3}), F::DropoutFuncOptions().p(0.2).training(is_training()));
    return fc(y);
  }
  return fc(y.mean({2, 3}));
}

}  // namespace smnas
