// Small layouts and recipes shared by the unit tests (the layouts resolveLayout would give).
#pragma once
#include <string>
#include <vector>

#include "job.hpp"

namespace smnas::fixtures {

// A residual backbone from the notation's parts: block kind, base width and per-stage codes
// ('1' keeps the width, '2' doubles it), e.g. ("basicblock", 8, {"1", "21", "21", "21"}).
inline BackboneLayout residualBackbone(const std::string& kind, int base, const std::vector<std::string>& code) {
  BackboneLayout L;
  L.block = blockKindNamed(kind);
  L.stemChannels = base;
  const int exp = kind == "basicblock" ? 1 : 4;
  int planes = base, in = base;
  for (int s = 0; s < 4; ++s) {
    for (size_t i = 0; i < code[s].size(); ++i) {
      if (code[s][i] == '2') planes *= 2;
      int out = planes * exp, stride = (s > 0 && i == 0) ? 2 : 1;
      int mid = kind == "Xbottleneck" ? planes * 4 / 64 * 32 : planes;
      L.stages[s].push_back({in, out, mid, stride, kind == "Xbottleneck" ? 32 : 1, stride != 1 || in != out});
      in = out;
    }
    L.stageChannels[s] = in;
  }
  return L;
}

// 64x64 basicblock_8_1-21-21-21 with fpn(P2-P4,c=16), 3 classes; head "2fc", "retina" or "2fc-ga"
// (ga-rpn + 2fc).
inline Layout smallLayout(const std::string& head = "2fc") {
  Layout L;
  L.width = L.height = 64;
  L.backbone = residualBackbone("basicblock", 8, {"1", "21", "21", "21"});
  L.neck.kind = NeckKind::Fpn;
  L.neck.channels = 16;
  L.neck.from = 2;
  L.neck.to = 4;
  const bool retina = head == "retina", ga = head == "2fc-ga";
  L.rpn = {retina ? RpnKind::None
           : ga   ? RpnKind::GaRpn
                  : RpnKind::Rpn,
           /*anchorsPerLocation=*/
           retina ? 0
           : ga   ? 1
                  : 3,
           /*convChannels=*/retina ? 0 : 16, /*deformGroups=*/ga ? 4 : 0};
  L.head.kind = headKindNamed(ga ? "2fc" : head);
  L.head.numClasses = 3;
  L.head.fcWidth = 32;
  L.head.convChannels = 16;
  L.head.stackedConvs = 2;
  L.head.anchorsPerLocation = 9;
  return L;
}

inline Recipe smallRecipe(NormKind norm = NormKind::GN) {
  Recipe r;
  r.name = "unit";
  r.norm = norm;
  r.epochs = 1;
  r.batchSize = 2;
  r.workers = 0;
  r.optimizer = {0.01, 0.9, 1e-4, 0, true};
  r.schedule.kind = "cosine";
  r.rpnSamples = 64;
  r.rpnTrainPreNms = 200;
  r.rpnTrainPostNms = 50;
  r.roiSamples = 32;
  return r;
}

}  // namespace smnas::fixtures
