// Unit tests of the ONNX wire-format writer (onnx_graph.hpp) against bytes worked out by hand from
// the protobuf encoding rules and onnx.proto's field numbers; the whole-model check (onnx.checker
// and onnxruntime) is test/native/onnx-export.test.ts.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "onnx_graph.hpp"

using namespace smnas;

namespace {
std::string bytes(const std::vector<int>& v) {
  std::string s;
  for (int b : v) s.push_back(static_cast<char>(b));
  return s;
}
}  // namespace

TEST(OnnxWire, Varints) {
  ProtoWriter w;
  w.varint(1, 300);  // tag 0x08, 300 = 0xac 0x02
  w.int64(2, -1);    // negative int64: ten bytes, two's complement
  EXPECT_EQ(w.data(), bytes({0x08, 0xac, 0x02, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}));
}

TEST(OnnxWire, FloatAndBytes) {
  ProtoWriter w;
  w.float32(2, 1.0f);  // wire type 5: tag 0x15, little-endian 0x3f800000
  w.bytes(4, "ab");    // wire type 2: tag 0x22, length 2
  EXPECT_EQ(w.data(), bytes({0x15, 0x00, 0x00, 0x80, 0x3f, 0x22, 0x02, 'a', 'b'}));
}

TEST(OnnxWire, TensorProto) {
  const float v[2] = {1.0f, -2.0f};
  std::string raw(reinterpret_cast<const char*>(v), sizeof v);
  // dims (1) = 2, data_type (2) = FLOAT, name (8) = "w", raw_data (9)
  EXPECT_EQ(encodeTensorProto("w", OnnxType::Float, {2}, raw),
            bytes({0x08, 0x02, 0x10, 0x01, 0x42, 0x01, 'w', 0x4a, 0x08, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0}));
}

TEST(OnnxWire, ValueInfoWithSymbolicDim) {
  // name (1) "x"; type (2) { tensor_type (1) { elem_type (1) FLOAT; shape (2) { dim { dim_value 1 } dim { dim_param "h" } } } }
  EXPECT_EQ(encodeValueInfo("x", OnnxType::Float, {1, -1}, {"", "h"}),
            bytes({0x0a, 0x01, 'x', 0x12, 0x0f, 0x0a, 0x0d, 0x08, 0x01, 0x12, 0x09, 0x0a, 0x02, 0x08, 0x01, 0x0a, 0x03, 0x12, 0x01, 'h'}));
}

TEST(OnnxGraph, NamesAreUniqueAndConstantsShared) {
  OnnxGraph g(17);
  auto x = g.input("x", OnnxType::Float, {1, 4});
  auto a = g.op("Relu", {x});
  auto b = g.op("Relu", {x});
  EXPECT_NE(a, b);
  EXPECT_EQ(g.scalarFloat(0.5f), g.scalarFloat(0.5f));
  EXPECT_NE(g.scalarFloat(0.5f), g.scalarFloat(0.25f));
  EXPECT_NE(g.constInts({1}, {1}), g.constInts({1}, {}));  // same value, another shape
  EXPECT_EQ(g.nodeCount(), 2u);
}
