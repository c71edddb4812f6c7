// ONNX export without a protobuf library: a protobuf wire-format writer for the few messages of
// onnx.proto a model needs (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
// ValueInfoProto and the type/shape messages; field numbers as onnx/onnx.proto), and OnnxGraph,
// the builder the modules' exportOnnx methods append their nodes and parameters to.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace smnas {

// Protobuf wire format (proto2, unpacked repeated scalars, as onnx.proto declares them).
class ProtoWriter {
 public:
  void varint(int field, uint64_t v);
  void int64(int field, int64_t v) { varint(field, static_cast<uint64_t>(v)); }
  void float32(int field, float v);
  void bytes(int field, const std::string& data);  // strings, bytes and embedded messages
  const std::string& data() const { return buf_; }

 private:
  void rawVarint(uint64_t v);
  std::string buf_;
};

// TensorProto.DataType values used here.
enum class OnnxType : int { Float = 1, UInt8 = 2, Int32 = 6, Int64 = 7, Bool = 9 };

// An attribute of a node: int, float, string, ints or floats.
struct OnnxAttr {
  std::string name;
  std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>> value;
};
using OnnxAttrs = std::vector<OnnxAttr>;

// One value of the graph (a node output, an input or an initializer), by name.
using OnnxValue = std::string;

// A graph under construction. Every name is unique: op() and initializer() number their outputs.
class OnnxGraph {
 public:
  explicit OnnxGraph(int opset) : opset_(opset) {}
  int opset() const { return opset_; }
  // graph input / output; a negative dim is symbolic, named by dimNames (same index) or "d<i>"
  OnnxValue input(const std::string& name, OnnxType type, const std::vector<int64_t>& dims, const std::vector<std::string>& dimNames = {});
  void output(const OnnxValue& value, const std::string& name, OnnxType type, const std::vector<int64_t>& dims,
              const std::vector<std::string>& dimNames = {});
  // a parameter or a constant tensor (float32, int64 or bool, contiguous copy on the CPU)
  OnnxValue initializer(const std::string& hint, const torch::Tensor& t);
  OnnxValue constFloats(const std::vector<float>& v, const std::vector<int64_t>& dims);
  OnnxValue constInts(const std::vector<int64_t>& v, const std::vector<int64_t>& dims);
  OnnxValue scalarFloat(float v) { return constFloats({v}, {}); }
  OnnxValue scalarInt(int64_t v) { return constInts({v}, {}); }
  // a node with one output / with n outputs
  OnnxValue op(const std::string& type, const std::vector<OnnxValue>& inputs, const OnnxAttrs& attrs = {});
  std::vector<OnnxValue> opN(const std::string& type, const std::vector<OnnxValue>& inputs, int outputs, const OnnxAttrs& attrs = {});
  // ModelProto bytes; metadata goes to metadata_props
  std::string serialize(const std::string& graphName, const std::map<std::string, std::string>& metadata) const;
  size_t nodeCount() const { return nodes_.size(); }

 private:
  std::string fresh(const std::string& hint);
  int opset_;
  int64_t counter_ = 0;
  std::vector<std::string> nodes_, initializers_, inputs_, outputs_;  // serialized messages
  std::map<std::string, OnnxValue> constCache_;
};

// Encoders of single messages (exposed for the unit test).
std::string encodeTensorProto(const std::string& name, OnnxType type, const std::vector<int64_t>& dims, const std::string& raw);
std::string encodeValueInfo(const std::string& name, OnnxType type, const std::vector<int64_t>& dims,
                            const std::vector<std::string>& dimNames);

}  // namespace smnas
