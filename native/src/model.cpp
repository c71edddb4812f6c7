#include "model.hpp"

namespace smnas {
namespace F = torch::nn::functional;

int builtStages(const Layout& L) { return L.neck.kind == NeckKind::Fpn ? std::min(L.neck.to, 4) : 3; }

RpnOptions rpnOptionsFrom(const Layout& L, const Recipe& r) {
  auto sampling = AnchorSampling().samplesPerImage(r.rpnSamples).positiveFraction(r.rpnPosFraction);
  if (r.rpnMinPosIou) sampling.minPosIou(*r.rpnMinPosIou);
  return RpnOptions(L.rpn.convChannels).sampling(sampling).proposals(proposalOptionsFrom(r));
}

GaRpnOptions gaRpnOptionsFrom(const Layout& L, const Recipe& r) {
  const auto sampling = AnchorSampling().samplesPerImage(r.rpnSamples).positiveFraction(r.rpnPosFraction);
  return GaRpnOptions(L.rpn.convChannels)
      .deformGroups(L.rpn.deformGroups)
      .shapeSampling(sampling)
      .sampling(sampling)
      .proposals(proposalOptionsFrom(r));
}

RoiHeadsOptions roiHeadsOptionsFrom(const Layout& L, const Recipe& r) {
  const bool cascade = L.head.kind == HeadKind::Cascade;
  return RoiHeadsOptions(L.neck.channels, L.head.numClasses, L.head.fcWidth)
      .roiSize(L.head.roiSize)
      .cascade(cascade)
      .init(r.init)
      .stageIous(cascade ? L.head.iouThresholds : std::vector<double>{0.5})
      .samplesPerImage(r.roiSamples)
      .positiveFraction(r.roiPosFraction)
      .scoreThreshold(r.testScoreThreshold)
      .nmsIou(r.testNmsIou)
      .maxPerImage(r.testMaxPerImage);
}

RetinaOptions retinaOptionsFrom(const Layout& L, const Recipe& r) {
  return RetinaOptions(L.neck.channels, L.head.convChannels, L.head.numClasses)
      .stackedConvs(L.head.stackedConvs)
      .scoreThreshold(r.testScoreThreshold)
      .nmsIou(r.testNmsIou)
      .maxPerImage(r.testMaxPerImage);
}

DetectorImpl::DetectorImpl(const Layout& L, const Recipe& r) : layout(L) {
  backbone = register_module("backbone", Backbone(L.backbone, r.norm, builtStages(L)));
  if (L.neck.kind == NeckKind::Fpn)
    neck = register_module("neck", Fpn(L.backbone.stageChannels, L.neck.from, L.neck.to, L.neck.channels, r.init));
  switch (L.head.kind) {
    case HeadKind::Retina:
      retina = register_module("head", Retina(retinaOptionsFrom(L, r)));
      break;
    case HeadKind::TwoFc:
    case HeadKind::Cascade:
      if (L.rpn.kind == RpnKind::GaRpn)
        rpn = register_module("rpn", std::make_shared<GaRpnImpl>(gaRpnOptionsFrom(L, r)));
      else
        rpn = register_module("rpn", std::make_shared<RpnImpl>(rpnOptionsFrom(L, r)));
      roiHeads = register_module("head", RoiHeads(roiHeadsOptionsFrom(L, r)));
      break;
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

LossMap DetectorImpl::losses(const torch::Tensor& images, const std::vector<torch::Tensor>& gtBoxes,
                             const std::vector<torch::Tensor>& gtLabels, const ImageSizes& sizes) {
  const Targets targets{gtBoxes, gtLabels};
  std::vector<Level> levels;
  {
    ProfilePhase ph("features");
    levels = features(images);
  }
  if (retina) {
    ProfilePhase ph("retina");
    return retina->losses(levels, targets);
  }
  LossMap L;
  std::vector<torch::Tensor> proposals;
  {
    ProfilePhase ph("rpn");
    proposals = rpn->forward(levels, sizes, &targets, &L);
  }
  ProfilePhase ph("roi");
  for (auto& [k, v] : roiHeads->losses(levels, std::move(proposals), sizes, targets)) L[k] = v;
  return L;
}

std::vector<Detections> DetectorImpl::detect(const torch::Tensor& images, const ImageSizes& sizes) {
  torch::NoGradGuard ng;
  auto levels = features(images);
  if (retina) return retina->detect(levels, sizes);
  auto proposals = rpn->forward(levels, sizes, /*targets=*/nullptr, /*losses=*/nullptr);
  return roiHeads->detect(levels, proposals, sizes);
}

OnnxDetections DetectorImpl::exportOnnx(OnnxGraph& g, const OnnxValue& image, const OnnxImageSize& size) {
  torch::NoGradGuard ng;
  auto c = backbone->exportOnnx(g, image);
  std::vector<OnnxLevel> levels;
  if (!neck) {
    levels.push_back({3, 16, c[2]});
  } else {
    auto p = neck->exportOnnx(g, c);
    for (int l = layout.neck.from; l <= layout.neck.to; ++l) levels.push_back({l, 4 << (l - 1), p[l - layout.neck.from]});
  }
  if (retina) return retina->exportOnnx(g, levels, size);
  return roiHeads->exportOnnx(g, levels, rpn->exportOnnx(g, levels, size), size);
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
  const bool inverted = L.backbone.block == BlockKind::MBBlock;
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
  const bool fpn = L.neck.kind == NeckKind::Fpn;
  std::array<std::pair<int, int>, 4> stageHW{};
  for (int s = 0; s < builtStages(L); ++s) {
    for (const auto& b : L.backbone.stages[s]) {
      int ho = convOut(h, 3, b.stride, 1), wo = convOut(w, 3, b.stride, 1);
      if (L.backbone.block == BlockKind::BasicBlock) {
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
  if (L.head.kind == HeadKind::Retina) {
    double hd = 0;
    const int A = 9, Ch = L.head.convChannels;
    for (auto [lh, lw] : levelHW) {
      for (int i = 0; i < L.head.stackedConvs; ++i) hd += 2 * convMacs(i == 0 ? C : Ch, Ch, 3, 1, lh, lw);
      hd += convMacs(Ch, A * K, 3, 1, lh, lw) + convMacs(Ch, 4 * A, 3, 1, lh, lw);
    }
    m["head"].flops = hd;
  } else {
    double rp = 0;
    for (auto [lh, lw] : levelHW) rp += model->rpn->flopsPerLevel(lh, lw);
    m["rpn"].flops = rp;
    const int S = L.head.roiSize, W = L.head.fcWidth;
    const bool cascade = L.head.kind == HeadKind::Cascade;
    const int stages = cascade ? L.head.stages : 1;
    double perRoi = static_cast<double>(C) * S * S * W + static_cast<double>(W) * W + static_cast<double>(W) * (K + 1) +
                    static_cast<double>(W) * (cascade ? 4 : 4 * K);
    m["head"].flops = perRoi * stages * rois;
  }
  return m;
}

ClassifierImpl::ClassifierImpl(const Layout& L, NormKind norm, int numClasses) {
  backbone = register_module("backbone", Backbone(L.backbone, norm, 4));
  int features = L.backbone.stageChannels[3];
  if (backbone->inverted) {
    last = register_module("last", Conv(ConvOptions(features, kMobileNetLastChannels, 1).ws(norm == NormKind::GNWS)));
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
