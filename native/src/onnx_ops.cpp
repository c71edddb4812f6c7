#include "onnx_ops.hpp"

#include <cmath>

#include "ops.hpp"

namespace smnas {

OnnxValue onnxDim(OnnxGraph& g, const OnnxValue& x, int i) {
  return g.op("Gather", {g.op("Shape", {x}), g.constInts({i}, {1})}, {{"axis", int64_t{0}}});
}

OnnxValue onnxColumn(OnnxGraph& g, const OnnxValue& x, int c) { return g.op("Gather", {x, g.scalarInt(c)}, {{"axis", int64_t{1}}}); }

OnnxValue onnxFlat(OnnxGraph& g, const OnnxValue& x) { return g.op("Reshape", {x, g.constInts({-1}, {1})}); }

OnnxValue onnxClip(OnnxGraph& g, const OnnxValue& x, float lo, float hi) { return g.op("Clip", {x, g.scalarFloat(lo), g.scalarFloat(hi)}); }

OnnxValue onnxGridAnchors(OnnxGraph& g, const OnnxValue& feature, int stride, const std::vector<double>& scales,
                          const std::vector<double>& ratios) {
  // the base anchors are the trainer's own: gridAnchors of a 1x1 map (shift 0)
  auto base = gridAnchors(stride, 1, 1, scales, ratios, torch::kCPU).unsqueeze(0);  // [1,A,4]
  auto baseV = g.initializer("anchors_s" + std::to_string(stride), base);
  auto h = onnxDim(g, feature, 2), w = onnxDim(g, feature, 3);
  auto axis0 = g.constInts({0}, {1});
  auto range = [&](const OnnxValue& n) {  // arange(n) * stride in float, as gridAnchors
    auto r = g.op("Range", {g.scalarInt(0), g.op("Squeeze", {n, axis0}), g.scalarInt(1)});
    return g.op("Mul",
                {g.op("Cast", {r}, {{"to", int64_t{static_cast<int>(OnnxType::Float)}}}), g.scalarFloat(static_cast<float>(stride))});
  };
  auto sx = range(w), sy = range(h);
  auto hw = g.op("Concat", {h, w}, {{"axis", int64_t{0}}});
  auto yy = onnxFlat(g, g.op("Expand", {g.op("Unsqueeze", {sy, g.constInts({1}, {1})}), hw}));
  auto xx = onnxFlat(g, g.op("Expand", {g.op("Unsqueeze", {sx, axis0}), hw}));
  auto col = [&](const OnnxValue& v) { return g.op("Unsqueeze", {v, g.constInts({1}, {1})}); };
  auto shifts = g.op("Concat", {col(xx), col(yy), col(xx), col(yy)}, {{"axis", int64_t{1}}});  // [HW,4]
  auto all = g.op("Add", {g.op("Unsqueeze", {shifts, g.constInts({1}, {1})}), baseV});         // [HW,A,4]
  return g.op("Reshape", {all, g.constInts({-1, 4}, {2})});
}

OnnxValue onnxDecodeBoxes(OnnxGraph& g, const OnnxValue& a, const OnnxValue& d, const std::array<double, 4>& stds,
                          const OnnxImageSize& size) {
  const float clip = static_cast<float>(std::abs(std::log(16.0 / 1000.0)));
  auto half = g.scalarFloat(0.5f);
  auto a0 = onnxColumn(g, a, 0), a1 = onnxColumn(g, a, 1), a2 = onnxColumn(g, a, 2), a3 = onnxColumn(g, a, 3);
  auto aw = g.op("Sub", {a2, a0}), ah = g.op("Sub", {a3, a1});
  auto ax = g.op("Add", {a0, g.op("Mul", {half, aw})}), ay = g.op("Add", {a1, g.op("Mul", {half, ah})});
  auto scaled = [&](int c) { return g.op("Mul", {onnxColumn(g, d, c), g.scalarFloat(static_cast<float>(stds[c]))}); };
  auto dx = scaled(0), dy = scaled(1);
  auto dw = onnxClip(g, scaled(2), -clip, clip), dh = onnxClip(g, scaled(3), -clip, clip);
  auto cx = g.op("Add", {ax, g.op("Mul", {dx, aw})}), cy = g.op("Add", {ay, g.op("Mul", {dy, ah})});
  auto w = g.op("Mul", {aw, g.op("Exp", {dw})}), h = g.op("Mul", {ah, g.op("Exp", {dh})});
  auto zero = g.scalarFloat(0.f);
  auto hw = g.op("Mul", {half, w}), hh = g.op("Mul", {half, h});
  auto x1 = g.op("Clip", {g.op("Sub", {cx, hw}), zero, size.width}), y1 = g.op("Clip", {g.op("Sub", {cy, hh}), zero, size.height});
  auto x2 = g.op("Clip", {g.op("Add", {cx, hw}), zero, size.width}), y2 = g.op("Clip", {g.op("Add", {cy, hh}), zero, size.height});
  auto col = [&](const OnnxValue& v) { return g.op("Unsqueeze", {v, g.constInts({1}, {1})}); };
  return g.op("Concat", {col(x1), col(y1), col(x2), col(y2)}, {{"axis", int64_t{1}}});
}

OnnxValue onnxBatchedNms(OnnxGraph& g, const OnnxValue& boxes, const OnnxValue& scores, const OnnxValue& groups, double iou,
                         int64_t maxKeep) {
  // the coordinate-offset trick of batchedNms: boxes of group i move by i * (max coordinate + 1).
  // The 0 appended keeps ReduceMax defined on no boxes; boxes are clipped to >= 0, so it never wins.
  auto all = g.op("Concat", {onnxFlat(g, boxes), g.constFloats({0.f}, {1})}, {{"axis", int64_t{0}}});
  auto maxCoord = g.op("Add", {g.op("ReduceMax", {all}, {{"keepdims", int64_t{0}}}), g.scalarFloat(1.f)});
  auto offset = g.op("Unsqueeze", {g.op("Mul", {groups, maxCoord}), g.constInts({1}, {1})});
  auto shifted = g.op("Add", {boxes, offset});
  auto b = g.op("Unsqueeze", {shifted, g.constInts({0}, {1})});      // [1,N,4]
  auto s = g.op("Reshape", {scores, g.constInts({1, 1, -1}, {3})});  // [1,1,N]
  auto selected = g.op("NonMaxSuppression", {b, s, g.constInts({maxKeep}, {1}), g.constFloats({static_cast<float>(iou)}, {1})});
  return onnxColumn(g, selected, 2);
}

std::pair<OnnxValue, OnnxValue> onnxTopK(OnnxGraph& g, const OnnxValue& x, int64_t k) {
  auto kk = g.op("Min", {g.constInts({k}, {1}), g.op("Shape", {x})});
  auto out = g.opN("TopK", {x, kk}, 2, {{"axis", int64_t{0}}, {"largest", int64_t{1}}, {"sorted", int64_t{1}}});
  return {out[0], out[1]};
}

}  // namespace smnas
