// The detection primitives of ops.hpp as ONNX subgraphs, for the modules' exportOnnx methods:
// anchors from a feature map's runtime shape, the delta box decoder, per-group NMS and the top k.
// Each mirrors its libtorch counterpart operation for operation so the exported model's float
// arithmetic matches the trainer's (test/native/onnx-export.test.ts checks the detections).
#pragma once
#include <array>
#include <vector>

#include "onnx_graph.hpp"

namespace smnas {

// One feature level of the exported graph (Level of layers.hpp).
struct OnnxLevel {
  int p, stride;
  OnnxValue x;  // [1,C,H,W]
};

// The image content size (clipping bounds) as 0-d float values.
struct OnnxImageSize {
  OnnxValue width, height;
};

// dimension i of x's shape as a [1] int64 tensor
OnnxValue onnxDim(OnnxGraph& g, const OnnxValue& x, int i);
// gridAnchors (ops.hpp) for the runtime size of feature [1,C,H,W]: [H*W*A,4]
OnnxValue onnxGridAnchors(OnnxGraph& g, const OnnxValue& feature, int stride, const std::vector<double>& scales,
                          const std::vector<double>& ratios);
// decodeBoxes (ops.hpp): anchors [N,4], deltas [N,4] -> boxes [N,4] clipped to the image
OnnxValue onnxDecodeBoxes(OnnxGraph& g, const OnnxValue& anchors, const OnnxValue& deltas, const std::array<double, 4>& stds,
                          const OnnxImageSize& size);
// batchedNms (ops.hpp) with ONNX NonMaxSuppression: kept indices [M] int64, by decreasing score.
// groups: [N] float ids; maxKeep > 0.
OnnxValue onnxBatchedNms(OnnxGraph& g, const OnnxValue& boxes, const OnnxValue& scores, const OnnxValue& groups, double iou,
                         int64_t maxKeep);
// the min(k, n) largest of a 1-D x: {values, indices}
std::pair<OnnxValue, OnnxValue> onnxTopK(OnnxGraph& g, const OnnxValue& x, int64_t k);
// column c of an [N,4] tensor as [N]
OnnxValue onnxColumn(OnnxGraph& g, const OnnxValue& x, int c);
// x [..] -> [n] 1-D
OnnxValue onnxFlat(OnnxGraph& g, const OnnxValue& x);
// Clip(x, lo, hi) with constant bounds
OnnxValue onnxClip(OnnxGraph& g, const OnnxValue& x, float lo, float hi);

}  // namespace smnas
