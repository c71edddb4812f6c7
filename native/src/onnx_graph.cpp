#include "onnx_graph.hpp"

#include <cstring>
#include <stdexcept>

namespace smnas {

// Field numbers of onnx/onnx.proto (IR version 8).
namespace field {
// ModelProto
constexpr int kModelIrVersion = 1, kModelProducerName = 2, kModelProducerVersion = 3, kModelGraph = 7, kModelOpsetImport = 8,
              kModelMetadataProps = 14;
// OperatorSetIdProto, StringStringEntryProto
constexpr int kOpsetDomain = 1, kOpsetVersion = 2, kEntryKey = 1, kEntryValue = 2;
// GraphProto
constexpr int kGraphNode = 1, kGraphName = 2, kGraphInitializer = 5, kGraphInput = 11, kGraphOutput = 12;
// NodeProto
constexpr int kNodeInput = 1, kNodeOutput = 2, kNodeName = 3, kNodeOpType = 4, kNodeAttribute = 5;
// AttributeProto and its AttributeType values
constexpr int kAttrName = 1, kAttrF = 2, kAttrI = 3, kAttrS = 4, kAttrFloats = 7, kAttrInts = 8, kAttrType = 20;
constexpr int kAttrTypeFloat = 1, kAttrTypeInt = 2, kAttrTypeString = 3, kAttrTypeFloats = 6, kAttrTypeInts = 7;
// TensorProto
constexpr int kTensorDims = 1, kTensorDataType = 2, kTensorName = 8, kTensorRawData = 9;
// ValueInfoProto, TypeProto, TypeProto.Tensor, TensorShapeProto, its Dimension
constexpr int kValueInfoName = 1, kValueInfoType = 2, kTypeTensor = 1, kTensorTypeElem = 1, kTensorTypeShape = 2, kShapeDim = 1,
              kDimValue = 1, kDimParam = 2;
}  // namespace field

// ONNX IR version 8 (onnx 1.10+): every opset this exporter emits (16..18) is valid in it.
constexpr int64_t kIrVersion = 8;

void ProtoWriter::rawVarint(uint64_t v) {
  while (v >= 0x80) {
    buf_.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  buf_.push_back(static_cast<char>(v));
}

void ProtoWriter::varint(int f, uint64_t v) {
  rawVarint(static_cast<uint64_t>(f) << 3);  // wire type 0
  rawVarint(v);
}

void ProtoWriter::float32(int f, float v) {
  rawVarint((static_cast<uint64_t>(f) << 3) | 5);  // wire type 5: 32-bit little-endian
  char b[4];
  std::memcpy(b, &v, 4);
  buf_.append(b, 4);
}

void ProtoWriter::bytes(int f, const std::string& data) {
  rawVarint((static_cast<uint64_t>(f) << 3) | 2);  // wire type 2: length-delimited
  rawVarint(data.size());
  buf_ += data;
}

std::string encodeTensorProto(const std::string& name, OnnxType type, const std::vector<int64_t>& dims, const std::string& raw) {
  ProtoWriter w;
  for (int64_t d : dims) w.int64(field::kTensorDims, d);
  w.varint(field::kTensorDataType, static_cast<uint64_t>(type));
  w.bytes(field::kTensorName, name);
  w.bytes(field::kTensorRawData, raw);
  return w.data();
}

std::string encodeValueInfo(const std::string& name, OnnxType type, const std::vector<int64_t>& dims,
                            const std::vector<std::string>& dimNames) {
  ProtoWriter shape;
  for (size_t i = 0; i < dims.size(); ++i) {
    ProtoWriter dim;
    if (dims[i] >= 0)
      dim.int64(field::kDimValue, dims[i]);
    else
      dim.bytes(field::kDimParam, i < dimNames.size() && !dimNames[i].empty() ? dimNames[i] : "d" + std::to_string(i));
    shape.bytes(field::kShapeDim, dim.data());
  }
  ProtoWriter tensorType;
  tensorType.varint(field::kTensorTypeElem, static_cast<uint64_t>(type));
  tensorType.bytes(field::kTensorTypeShape, shape.data());
  ProtoWriter typeProto;
  typeProto.bytes(field::kTypeTensor, tensorType.data());
  ProtoWriter w;
  w.bytes(field::kValueInfoName, name);
  w.bytes(field::kValueInfoType, typeProto.data());
  return w.data();
}

std::string OnnxGraph::fresh(const std::string& hint) { return hint + "_" + std::to_string(counter_++); }

OnnxValue OnnxGraph::input(const std::string& name, OnnxType type, const std::vector<int64_t>& dims,
                           const std::vector<std::string>& dimNames) {
  inputs_.push_back(encodeValueInfo(name, type, dims, dimNames));
  return name;
}

void OnnxGraph::output(const OnnxValue& value, const std::string& name, OnnxType type, const std::vector<int64_t>& dims,
                       const std::vector<std::string>& dimNames) {
  // the graph output gets its public name through an Identity node
  ProtoWriter n;
  n.bytes(field::kNodeInput, value);
  n.bytes(field::kNodeOutput, name);
  n.bytes(field::kNodeName, "output_" + name);
  n.bytes(field::kNodeOpType, "Identity");
  nodes_.push_back(n.data());
  outputs_.push_back(encodeValueInfo(name, type, dims, dimNames));
}

OnnxValue OnnxGraph::initializer(const std::string& hint, const torch::Tensor& tensor) {
  auto t = tensor.detach().to(torch::kCPU).contiguous();
  OnnxType type;
  switch (t.scalar_type()) {
    case torch::kFloat:
      type = OnnxType::Float;
      break;
    case torch::kLong:
      type = OnnxType::Int64;
      break;
    case torch::kBool:
      type = OnnxType::Bool;
      break;
    default:
      throw std::runtime_error("onnx export: unsupported initializer dtype for " + hint);
  }
  std::string name = fresh(hint);
  std::string raw(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.nbytes()));  // little-endian host
  initializers_.push_back(encodeTensorProto(name, type, t.sizes().vec(), raw));
  return name;
}

OnnxValue OnnxGraph::constFloats(const std::vector<float>& v, const std::vector<int64_t>& dims) {
  std::string key = "f";
  for (auto d : dims) key += std::to_string(d) + ",";
  key += ":";
  for (float x : v) key += std::to_string(x) + "/" + std::to_string(static_cast<double>(x)) + ";";
  auto it = constCache_.find(key);
  if (it != constCache_.end()) return it->second;
  auto t = torch::tensor(v, torch::kFloat).view(dims);
  return constCache_[key] = initializer("const", t);
}

OnnxValue OnnxGraph::constInts(const std::vector<int64_t>& v, const std::vector<int64_t>& dims) {
  std::string key = "i";
  for (auto d : dims) key += std::to_string(d) + ",";
  key += ":";
  for (auto x : v) key += std::to_string(x) + ";";
  auto it = constCache_.find(key);
  if (it != constCache_.end()) return it->second;
  auto t = torch::tensor(v, torch::kLong).view(dims);
  return constCache_[key] = initializer("const", t);
}

std::vector<OnnxValue> OnnxGraph::opN(const std::string& type, const std::vector<OnnxValue>& inputs, int outputs, const OnnxAttrs& attrs) {
  ProtoWriter n;
  for (const auto& i : inputs) n.bytes(field::kNodeInput, i);  // "" = an omitted optional input
  std::vector<OnnxValue> outs;
  for (int o = 0; o < outputs; ++o) {
    outs.push_back(fresh(type));
    n.bytes(field::kNodeOutput, outs.back());
  }
  n.bytes(field::kNodeName, outs.front() + "_node");
  n.bytes(field::kNodeOpType, type);
  for (const auto& a : attrs) {
    ProtoWriter w;
    w.bytes(field::kAttrName, a.name);
    if (auto* i = std::get_if<int64_t>(&a.value)) {
      w.int64(field::kAttrI, *i);
      w.varint(field::kAttrType, field::kAttrTypeInt);
    } else if (auto* f = std::get_if<float>(&a.value)) {
      w.float32(field::kAttrF, *f);
      w.varint(field::kAttrType, field::kAttrTypeFloat);
    } else if (auto* s = std::get_if<std::string>(&a.value)) {
      w.bytes(field::kAttrS, *s);
      w.varint(field::kAttrType, field::kAttrTypeString);
    } else if (auto* is = std::get_if<std::vector<int64_t>>(&a.value)) {
      for (auto x : *is) w.int64(field::kAttrInts, x);
      w.varint(field::kAttrType, field::kAttrTypeInts);
    } else if (auto* fs = std::get_if<std::vector<float>>(&a.value)) {
      for (auto x : *fs) w.float32(field::kAttrFloats, x);
      w.varint(field::kAttrType, field::kAttrTypeFloats);
    }
    n.bytes(field::kNodeAttribute, w.data());
  }
  nodes_.push_back(n.data());
  return outs;
}

OnnxValue OnnxGraph::op(const std::string& type, const std::vector<OnnxValue>& inputs, const OnnxAttrs& attrs) {
  return opN(type, inputs, 1, attrs).front();
}

std::string OnnxGraph::serialize(const std::string& graphName, const std::map<std::string, std::string>& metadata) const {
  ProtoWriter g;
  for (const auto& n : nodes_) g.bytes(field::kGraphNode, n);
  g.bytes(field::kGraphName, graphName);
  for (const auto& t : initializers_) g.bytes(field::kGraphInitializer, t);
  for (const auto& i : inputs_) g.bytes(field::kGraphInput, i);
  for (const auto& o : outputs_) g.bytes(field::kGraphOutput, o);
  ProtoWriter m;
  m.int64(field::kModelIrVersion, kIrVersion);
  m.bytes(field::kModelProducerName, "smnas-trainer");
  m.bytes(field::kModelProducerVersion, "1");
  m.bytes(field::kModelGraph, g.data());
  ProtoWriter opset;
  opset.bytes(field::kOpsetDomain, "");
  opset.int64(field::kOpsetVersion, opset_);
  m.bytes(field::kModelOpsetImport, opset.data());
  for (const auto& [k, v] : metadata) {
    ProtoWriter e;
    e.bytes(field::kEntryKey, k);
    e.bytes(field::kEntryValue, v);
    m.bytes(field::kModelMetadataProps, e.data());
  }
  return m.data();
}

}  // namespace smnas
