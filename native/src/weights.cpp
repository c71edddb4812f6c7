#include "weights.hpp"

#include <torch/serialize.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "protocol.hpp"
#include "runtime.hpp"

namespace smnas {
namespace {

std::string readWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint64_t le(const std::string& b, size_t at, int bytes, const std::string& what) {
  if (at + bytes > b.size()) throw std::runtime_error(what + ": truncated (offset " + std::to_string(at) + ")");
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(b[at + i]);
  return v;
}

size_t bytesPer(at::ScalarType t) { return c10::elementSize(t); }

std::string shapeStr(at::IntArrayRef s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); ++i) o += (i ? "," : "") + std::to_string(s[i]);
  return o + "]";
}

// ---------------------------------------------------------------------------------------------
// zip archive (stored entries, as torch.save writes them; zip64 sizes and offsets understood)

struct ZipEntry {
  uint64_t offset, size;
};

std::map<std::string, ZipEntry> readZipDirectory(const std::string& b, const std::string& path) {
  const std::string what = path + " (zip)";
  if (b.size() < 22) throw std::runtime_error(what + ": too short for a zip archive");
  size_t eocd = std::string::npos;
  for (size_t i = b.size() - 22 + 1; i-- > 0 && b.size() - i <= 22 + 65535;)
    if (le(b, i, 4, what) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd == std::string::npos) throw std::runtime_error(what + ": no end-of-central-directory record");
  uint64_t entries = le(b, eocd + 10, 2, what), cdOffset = le(b, eocd + 16, 4, what);
  if ((entries == 0xFFFF || cdOffset == 0xFFFFFFFF) && eocd >= 20 && le(b, eocd - 20, 4, what) == 0x07064b50) {
    uint64_t z64 = le(b, eocd - 20 + 8, 8, what);
    if (le(b, z64, 4, what) != 0x06064b50) throw std::runtime_error(what + ": bad zip64 end-of-central-directory record");
    entries = le(b, z64 + 32, 8, what);
    cdOffset = le(b, z64 + 48, 8, what);
  }
  std::map<std::string, ZipEntry> out;
  size_t p = cdOffset;
  for (uint64_t e = 0; e < entries; ++e) {
    if (le(b, p, 4, what) != 0x02014b50) throw std::runtime_error(what + ": bad central directory entry " + std::to_string(e));
    const uint64_t method = le(b, p + 10, 2, what);
    uint64_t csize = le(b, p + 20, 4, what), usize = le(b, p + 24, 4, what), local = le(b, p + 42, 4, what);
    const size_t nameLen = le(b, p + 28, 2, what), extraLen = le(b, p + 30, 2, what), commentLen = le(b, p + 32, 2, what);
    if (p + 46 + nameLen > b.size()) throw std::runtime_error(what + ": truncated central directory");
    std::string name = b.substr(p + 46, nameLen);
    for (size_t x = p + 46 + nameLen; x + 4 <= p + 46 + nameLen + extraLen;) {  // zip64 extra field
      const uint64_t id = le(b, x, 2, what), len = le(b, x + 2, 2, what);
      if (id == 1) {
        size_t f = x + 4;
        if (usize == 0xFFFFFFFF) usize = le(b, f, 8, what), f += 8;
        if (csize == 0xFFFFFFFF) csize = le(b, f, 8, what), f += 8;
        if (local == 0xFFFFFFFF) local = le(b, f, 8, what);
      }
      x += 4 + len;
    }
    if (method != 0)
      throw std::runtime_error(what + ": entry " + name + " is compressed (method " + std::to_string(method) +
                               "); torch.save stores entries");
    if (le(b, local, 4, what) != 0x04034b50) throw std::runtime_error(what + ": bad local header of " + name);
    const uint64_t data = local + 30 + le(b, local + 26, 2, what) + le(b, local + 28, 2, what);
    if (data + usize > b.size()) throw std::runtime_error(what + ": entry " + name + " runs past the end of the file");
    out[name] = {data, usize};
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// a pickle machine for what torch.save writes for a state_dict (protocols 2-4)

struct Py;
using PyPtr = std::shared_ptr<Py>;
struct Py {
  enum Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor, Other } kind = None;
  int64_t i = 0;
  double f = 0;
  std::string s;             // Str; Global "module.name"
  std::vector<PyPtr> items;  // Tuple, List
  std::vector<std::pair<PyPtr, PyPtr>> dict;
  torch::Tensor t;  // Storage (flat), Tensor
};
PyPtr mk(Py::Kind k) {
  auto p = std::make_shared<Py>();
  p->kind = k;
  return p;
}

at::ScalarType storageDtype(const std::string& global, const std::string& what) {
  static const std::map<std::string, at::ScalarType> m = {{"torch.FloatStorage", at::kFloat}, {"torch.DoubleStorage", at::kDouble},
                                                          {"torch.HalfStorage", at::kHalf},   {"torch.BFloat16Storage", at::kBFloat16},
                                                          {"torch.LongStorage", at::kLong},   {"torch.IntStorage", at::kInt},
                                                          {"torch.ShortStorage", at::kShort}, {"torch.CharStorage", at::kChar},
                                                          {"torch.ByteStorage", at::kByte},   {"torch.BoolStorage", at::kBool}};
  auto it = m.find(global);
  if (it == m.end()) throw std::runtime_error(what + ": unsupported storage type " + global);
  return it->second;
}

std::vector<int64_t> intTuple(const PyPtr& p, const std::string& what) {
  if (p->kind != Py::Tuple && p->kind != Py::List) throw std::runtime_error(what + ": expected a tuple of ints");
  std::vector<int64_t> v;
  for (auto& x : p->items) {
    if (x->kind != Py::Int) throw std::runtime_error(what + ": expected a tuple of ints");
    v.push_back(x->i);
  }
  return v;
}

PyPtr unpickle(const std::string& b, size_t pos, size_t end, const std::function<PyPtr(const PyPtr&)>& persistentLoad,
               const std::string& what) {
  std::vector<PyPtr> stack;
  std::vector<size_t> marks;
  std::map<int64_t, PyPtr> memo;
  auto need = [&](size_t n) {
    if (pos + n > end) throw std::runtime_error(what + ": truncated pickle");
  };
  auto pop = [&] {
    if (stack.empty()) throw std::runtime_error(what + ": pickle stack underflow");
    auto v = stack.back();
    stack.pop_back();
    return v;
  };
  auto popMark = [&] {
    if (marks.empty()) throw std::runtime_error(what + ": pickle MARK missing");
    size_t m = marks.back();
    marks.pop_back();
    std::vector<PyPtr> v(stack.begin() + m, stack.end());
    stack.resize(m);
    return v;
  };
  auto readLine = [&] {
    size_t nl = b.find('\n', pos);
    if (nl == std::string::npos || nl >= end) throw std::runtime_error(what + ": truncated pickle");
    std::string s = b.substr(pos, nl - pos);
    pos = nl + 1;
    return s;
  };
  auto str = [&](size_t n) {
    need(n);
    auto p = mk(Py::Str);
    p->s = b.substr(pos, n);
    pos += n;
    stack.push_back(p);
  };
  auto setItems = [&](const PyPtr& d, const std::vector<PyPtr>& kv) {
    if (d->kind != Py::Dict) throw std::runtime_error(what + ": SETITEMS on a non-dict");
    for (size_t k = 0; k + 1 < kv.size(); k += 2) d->dict.push_back({kv[k], kv[k + 1]});
  };
  auto call = [&](const PyPtr& fn, const PyPtr& args) -> PyPtr {
    const std::string name = fn->kind == Py::Global ? fn->s : "?";
    auto& a = args->items;
    if (name == "collections.OrderedDict" || name == "builtins.dict") return mk(Py::Dict);
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      if (a.size() < 4 || a[0]->kind != Py::Storage || a[1]->kind != Py::Int) throw std::runtime_error(what + ": malformed " + name);
      auto t = mk(Py::Tensor);
      t->t = a[0]->t.as_strided(intTuple(a[2], what), intTuple(a[3], what), a[1]->i);
      return t;
    }
    if (name == "torch.jit._pickle.restore_type_tag" && !a.empty()) return a[0];  // torch::pickle_save's typed dict
    if (name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") {
      if (a.empty() || a[0]->kind != Py::Tensor) throw std::runtime_error(what + ": malformed " + name);
      return a[0];
    }
    return mk(Py::Other);  // anything else (e.g. torch.Size, metadata) is kept opaque
  };
  while (true) {
    need(1);
    const uint8_t op = static_cast<uint8_t>(b[pos++]);
    switch (op) {
      case 0x80:
        need(1), pos += 1;
        break;  // PROTO
      case 0x95:
        need(8), pos += 8;
        break;  // FRAME
      case '}':
        stack.push_back(mk(Py::Dict));
        break;
      case ']':
        stack.push_back(mk(Py::List));
        break;
      case ')':
        stack.push_back(mk(Py::Tuple));
        break;
      case '(':
        marks.push_back(stack.size());
        break;
      case 'N':
        stack.push_back(mk(Py::None));
        break;
      case 0x88:
      case 0x89: {
        auto p = mk(Py::Bool);
        p->i = op == 0x88;
        stack.push_back(p);
        break;
      }
      case 'c': {  // GLOBAL module\nname\n
        auto p = mk(Py::Global);
        std::string m = readLine();
        p->s = m + "." + readLine();
        stack.push_back(p);
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        auto n = pop(), m = pop();
        auto p = mk(Py::Global);
        p->s = m->s + "." + n->s;
        stack.push_back(p);
        break;
      }
      case 'X': {  // BINUNICODE
        size_t n = le(b, pos, 4, what);
        pos += 4;
        str(n);
        break;
      }
      case 0x8c:
      case 'C':
      case 'U': {  // SHORT_BINUNICODE / SHORT_BINBYTES / SHORT_BINSTRING
        need(1);
        size_t n = static_cast<uint8_t>(b[pos++]);
        str(n);
        break;
      }
      case 'B':
      case 'T': {  // BINBYTES / BINSTRING
        size_t n = le(b, pos, 4, what);
        pos += 4;
        str(n);
        break;
      }
      case 0x8d:
      case 0x8e: {  // BINUNICODE8 / BINBYTES8
        size_t n = le(b, pos, 8, what);
        pos += 8;
        str(n);
        break;
      }
      case 'q':
        need(1), memo[static_cast<uint8_t>(b[pos++])] = stack.at(stack.size() - 1);
        break;
      case 'r':
        memo[le(b, pos, 4, what)] = stack.at(stack.size() - 1), pos += 4;
        break;
      case 0x94:
        memo[static_cast<int64_t>(memo.size())] = stack.at(stack.size() - 1);
        break;
      case 'h':
      case 'j': {
        int64_t k = op == 'h' ? le(b, pos, 1, what) : le(b, pos, 4, what);
        pos += op == 'h' ? 1 : 4;
        auto it = memo.find(k);
        if (it == memo.end()) throw std::runtime_error(what + ": pickle memo " + std::to_string(k) + " missing");
        stack.push_back(it->second);
        break;
      }
      case 'K':
      case 'M':
      case 'J': {
        auto p = mk(Py::Int);
        const int n = op == 'K' ? 1 : op == 'M' ? 2 : 4;
        uint64_t v = le(b, pos, n, what);
        pos += n;
        p->i = op == 'J' ? static_cast<int64_t>(static_cast<int32_t>(v)) : static_cast<int64_t>(v);
        stack.push_back(p);
        break;
      }
      case 0x8a: {  // LONG1
        need(1);
        size_t n = static_cast<uint8_t>(b[pos++]);
        if (n > 8) throw std::runtime_error(what + ": integer too large in pickle");
        uint64_t v = n ? le(b, pos, static_cast<int>(n), what) : 0;
        if (n && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
        pos += n;
        auto p = mk(Py::Int);
        p->i = static_cast<int64_t>(v);
        stack.push_back(p);
        break;
      }
      case 'G': {  // BINFLOAT, big-endian
        need(8);
        uint64_t v = 0;
        for (int k = 0; k < 8; ++k) v = (v << 8) | static_cast<uint8_t>(b[pos + k]);
        pos += 8;
        auto p = mk(Py::Float);
        std::memcpy(&p->f, &v, 8);
        stack.push_back(p);
        break;
      }
      case 't': {
        auto p = mk(Py::Tuple);
        p->items = popMark();
        stack.push_back(p);
        break;
      }
      case 0x85:
      case 0x86:
      case 0x87: {
        auto p = mk(Py::Tuple);
        const size_t n = op - 0x84;
        if (stack.size() < n) throw std::runtime_error(what + ": pickle stack underflow");
        p->items.assign(stack.end() - n, stack.end());
        stack.resize(stack.size() - n);
        stack.push_back(p);
        break;
      }
      case 'Q':
        stack.push_back(persistentLoad(pop()));
        break;  // BINPERSID
      case 'R':
      case 0x81: {  // REDUCE / NEWOBJ
        auto args = pop(), fn = pop();
        stack.push_back(call(fn, args));
        break;
      }
      case 's': {
        auto v = pop(), k = pop();
        setItems(stack.at(stack.size() - 1), {k, v});
        break;
      }
      case 'u': {
        auto kv = popMark();
        if (stack.empty()) throw std::runtime_error(what + ": pickle stack underflow");
        setItems(stack.back(), kv);
        break;
      }
      case 'a': {
        auto v = pop();
        stack.at(stack.size() - 1)->items.push_back(v);
        break;
      }
      case 'e': {
        auto v = popMark();
        if (stack.empty()) throw std::runtime_error(what + ": pickle stack underflow");
        stack.back()->items.insert(stack.back()->items.end(), v.begin(), v.end());
        break;
      }
      case 'b':
        pop();
        break;  // BUILD: the state (an OrderedDict's _metadata) is not needed
      case '0':
        pop();
        break;  // POP
      case '.':
        return pop();  // STOP
      default: {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        throw std::runtime_error(what + ": unsupported pickle opcode " + hex + " at byte " + std::to_string(pos - 1));
      }
    }
  }
}

const std::set<std::string> kBnSuffixes = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"};

}  // namespace

// ---------------------------------------------------------------------------------------------
// tensor files

NamedTensors readTorchSave(const std::string& path) {
  const std::string b = readWholeFile(path);
  if (b.size() < 4 || b.compare(0, 4, "PK\x03\x04") != 0)
    throw std::runtime_error(
        path + " is not a zip archive: the legacy (pre-1.6) torch.save format is not read; re-save it with torch.save(torch.load(f), f2)");
  auto dir = readZipDirectory(b, path);
  std::string prefix;
  for (auto& [name, e] : dir) {
    if (name.size() >= 8 && name.compare(name.size() - 8, 8, "data.pkl") == 0 && std::count(name.begin(), name.end(), '/') == 1) {
      prefix = name.substr(0, name.size() - 8);
      break;
    }
  }
  if (prefix.empty()) throw std::runtime_error(path + ": no <archive>/data.pkl entry (not a torch.save file)");
  auto bo = dir.find(prefix + "byteorder");
  if (bo != dir.end() && b.substr(bo->second.offset, bo->second.size) != "little")
    throw std::runtime_error(path + ": big-endian tensors are not supported");
  std::map<std::string, torch::Tensor> storages;
  auto persistentLoad = [&](const PyPtr& pid) -> PyPtr {
    // ('storage', <storage class>, key, location, numel)
    if (pid->kind != Py::Tuple || pid->items.size() < 5 || pid->items[0]->s != "storage" || pid->items[1]->kind != Py::Global)
      throw std::runtime_error(path + ": unexpected persistent id in data.pkl");
    const std::string key = pid->items[2]->s;
    const auto dtype = storageDtype(pid->items[1]->s, path);
    const int64_t numel = pid->items[4]->i;
    auto it = storages.find(key);
    if (it == storages.end()) {
      auto e = dir.find(prefix + "data/" + key);
      if (e == dir.end()) throw std::runtime_error(path + ": storage record data/" + key + " is missing");
      if (e->second.size != static_cast<uint64_t>(numel) * bytesPer(dtype))
        throw std::runtime_error(path + ": storage record data/" + key + " has " + std::to_string(e->second.size) + " bytes, expected " +
                                 std::to_string(numel) + " x " + std::to_string(bytesPer(dtype)));
      auto t = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
      if (numel) std::memcpy(t.data_ptr(), b.data() + e->second.offset, e->second.size);
      it = storages.emplace(key, t).first;
    }
    auto p = mk(Py::Storage);
    p->t = it->second;
    return p;
  };
  const auto& pkl = dir.at(prefix + "data.pkl");
  PyPtr root = unpickle(b, pkl.offset, pkl.offset + pkl.size, persistentLoad, path + ": data.pkl");
  // A plain state_dict, or a training checkpoint holding one under 'state_dict' / 'model'.
  auto allTensors = [](const PyPtr& d) {
    if (d->kind != Py::Dict || d->dict.empty()) return false;
    for (auto& [k, v] : d->dict)
      if (k->kind != Py::Str || v->kind != Py::Tensor) return false;
    return true;
  };
  if (!allTensors(root) && root->kind == Py::Dict) {
    for (auto& [k, v] : root->dict)
      if (k->kind == Py::Str && (k->s == "state_dict" || k->s == "model") && allTensors(v)) {
        root = v;
        break;
      }
  }
  if (!allTensors(root)) throw std::runtime_error(path + ": data.pkl is not a dict of name -> tensor (a state_dict)");
  NamedTensors out;
  for (auto& [k, v] : root->dict) out.push_back({k->s, v->t});
  return out;
}

NamedTensors readSafetensors(const std::string& path) {
  const std::string b = readWholeFile(path);
  if (b.size() < 8) throw std::runtime_error(path + ": too short for a safetensors file (no 8-byte header length)");
  const uint64_t n = le(b, 0, 8, path);
  if (n < 2 || n > b.size() - 8)
    throw std::runtime_error(path + ": safetensors header length " + std::to_string(n) + " does not fit the file (" +
                             std::to_string(b.size()) + " bytes)");
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(b.substr(8, n));
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": safetensors header is not valid JSON: " + e.what());
  }
  if (!h.is_object()) throw std::runtime_error(path + ": safetensors header is not a JSON object");
  static const std::map<std::string, at::ScalarType> dtypes = {
      {"F32", at::kFloat}, {"F16", at::kHalf},  {"BF16", at::kBFloat16}, {"F64", at::kDouble}, {"I64", at::kLong},
      {"I32", at::kInt},   {"I16", at::kShort}, {"I8", at::kChar},       {"U8", at::kByte},    {"BOOL", at::kBool}};
  const uint64_t dataSize = b.size() - 8 - n;
  std::vector<std::pair<uint64_t, std::pair<std::string, torch::Tensor>>> byOffset;
  for (auto& [name, rec] : h.items()) {
    if (name == "__metadata__") continue;
    const std::string where = path + ": record '" + name + "'";
    if (!rec.is_object() || !rec.contains("dtype") || !rec.contains("shape") || !rec.contains("data_offsets") ||
        !rec["dtype"].is_string() || !rec["shape"].is_array() || !rec["data_offsets"].is_array() || rec["data_offsets"].size() != 2)
      throw std::runtime_error(where + " needs dtype, shape and data_offsets [begin, end]");
    auto dt = dtypes.find(rec["dtype"].get<std::string>());
    if (dt == dtypes.end()) throw std::runtime_error(where + ": unsupported dtype " + rec["dtype"].get<std::string>());
    std::vector<int64_t> shape;
    uint64_t numel = 1;
    for (auto& d : rec["shape"]) {
      if (!d.is_number_unsigned()) throw std::runtime_error(where + ": shape must hold non-negative integers");
      shape.push_back(d.get<int64_t>());
      numel *= d.get<uint64_t>();
    }
    auto& off = rec["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw std::runtime_error(where + ": data_offsets must be non-negative integers");
    const uint64_t begin = off[0].get<uint64_t>(), endOff = off[1].get<uint64_t>();
    if (begin > endOff || endOff > dataSize)
      throw std::runtime_error(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(endOff) + "] outside the data (" +
                               std::to_string(dataSize) + " bytes)");
    if (endOff - begin != numel * bytesPer(dt->second))
      throw std::runtime_error(where + ": " + std::to_string(endOff - begin) + " bytes for shape " + shapeStr(shape) + " of " + dt->first);
    auto t = torch::empty(shape, torch::TensorOptions().dtype(dt->second));
    if (numel) std::memcpy(t.data_ptr(), b.data() + 8 + n + begin, endOff - begin);
    byOffset.push_back({begin, {name, t}});
  }
  std::stable_sort(byOffset.begin(), byOffset.end(), [](auto& a, auto& c) { return a.first < c.first; });
  NamedTensors out;
  for (auto& e : byOffset) out.push_back(e.second);
  return out;
}

NamedTensors readTensorFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  char magic[4] = {0, 0, 0, 0};
  in.read(magic, 4);
  if (in.gcount() == 4 && std::memcmp(magic, "PK\x03\x04", 4) == 0) return readTorchSave(path);
  return readSafetensors(path);
}

void writeSafetensors(const std::string& path, const NamedTensors& tensors) {
  static const std::map<at::ScalarType, std::string> names = {
      {at::kFloat, "F32"}, {at::kHalf, "F16"},  {at::kBFloat16, "BF16"}, {at::kDouble, "F64"}, {at::kLong, "I64"},
      {at::kInt, "I32"},   {at::kShort, "I16"}, {at::kChar, "I8"},       {at::kByte, "U8"},    {at::kBool, "BOOL"}};
  nlohmann::json h = nlohmann::json::object();
  std::vector<torch::Tensor> data;
  uint64_t off = 0;
  for (auto& [name, t0] : tensors) {
    auto t = t0.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = t.numel() * bytesPer(t.scalar_type());
    h[name] = {{"dtype", names.at(t.scalar_type())}, {"shape", t.sizes().vec()}, {"data_offsets", {off, off + bytes}}};
    off += bytes;
    data.push_back(t);
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');  // the data starts 8-byte aligned, as the reference writer pads
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((static_cast<uint64_t>(header.size()) >> (8 * i)) & 0xFF);
  out += header;
  for (auto& t : data) out.append(static_cast<const char*>(t.data_ptr()), t.numel() * bytesPer(t.scalar_type()));
  writeFileAtomic(path, out);
}

void writeTorchSave(const std::string& path, const NamedTensors& tensors) {
  c10::Dict<std::string, at::Tensor> d;
  for (auto& [name, t] : tensors) d.insert(name, t.detach().to(torch::kCPU).contiguous());
  auto bytes = torch::pickle_save(d);
  writeFileAtomic(path, std::string(bytes.begin(), bytes.end()));
}

// ---------------------------------------------------------------------------------------------
// the name mapping

std::vector<std::pair<std::string, std::string>> torchvisionNameMap(const BackboneLayout& L) {
  std::vector<std::pair<std::string, std::string>> m;
  auto conv = [&](const std::string& tv, const std::string& tr) { m.push_back({tv + "weight", tr + "weight"}); };
  auto bn = [&](const std::string& tv, const std::string& tr) {
    for (const char* s : {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}) m.push_back({tv + s, tr + "bn." + s});
  };
  if (L.block != BlockKind::MBBlock) {
    conv("conv1.", "backbone.stem.");
    bn("bn1.", "backbone.stemNorm.");
    for (int s = 0; s < 4; ++s) {
      for (size_t i = 0; i < L.stages[s].size(); ++i) {
        const auto& b = L.stages[s][i];
        const std::string tv = "layer" + std::to_string(s + 1) + "." + std::to_string(i) + ".";
        const std::string tr = "backbone.stage" + std::to_string(s + 1) + "." + std::to_string(i) + ".";
        for (int k = 1; k <= (L.block == BlockKind::BasicBlock ? 2 : 3); ++k) {
          conv(tv + "conv" + std::to_string(k) + ".", tr + "conv" + std::to_string(k) + ".");
          bn(tv + "bn" + std::to_string(k) + ".", tr + "n" + std::to_string(k) + ".");
        }
        if (b.projection) {
          conv(tv + "downsample.0.", tr + "down.");
          bn(tv + "downsample.1.", tr + "dn.");
        }
      }
    }
    m.push_back({"fc.weight", "fc.weight"});
    m.push_back({"fc.bias", "fc.bias"});
    return m;
  }
  // MobileNetV2: features.0 = stem conv + BN, features.1 = the expansion-1 block (depthwise,
  // projection), features.2.. = the stages' blocks in order, then the 1x1 conv to 1280 + BN.
  conv("features.0.0.", "backbone.stem.");
  bn("features.0.1.", "backbone.stemNorm.");
  conv("features.1.conv.0.0.", "backbone.stemBlock.conv2.");
  bn("features.1.conv.0.1.", "backbone.stemBlock.n2.");
  conv("features.1.conv.1.", "backbone.stemBlock.conv3.");
  bn("features.1.conv.2.", "backbone.stemBlock.n3.");
  int k = 2;
  for (int s = 0; s < 4; ++s) {
    for (size_t i = 0; i < L.stages[s].size(); ++i, ++k) {
      const auto& b = L.stages[s][i];
      const std::string tv = "features." + std::to_string(k) + ".conv.";
      const std::string tr = "backbone.stage" + std::to_string(s + 1) + "." + std::to_string(i) + ".";
      if (b.midChannels != b.inChannels) {  // an expansion conv (torchvision: expand_ratio != 1)
        conv(tv + "0.0.", tr + "conv1.");
        bn(tv + "0.1.", tr + "n1.");
        conv(tv + "1.0.", tr + "conv2.");
        bn(tv + "1.1.", tr + "n2.");
        conv(tv + "2.", tr + "conv3.");
        bn(tv + "3.", tr + "n3.");
      } else {
        conv(tv + "0.0.", tr + "conv2.");
        bn(tv + "0.1.", tr + "n2.");
        conv(tv + "1.", tr + "conv3.");
        bn(tv + "2.", tr + "n3.");
      }
    }
  }
  conv("features." + std::to_string(k) + ".0.", "last.");
  bn("features." + std::to_string(k) + ".1.", "lastNorm.");
  m.push_back({"classifier.1.weight", "fc.weight"});
  m.push_back({"classifier.1.bias", "fc.bias"});
  return m;
}

std::string torchvisionToTrainer(const BackboneLayout& L, const std::string& name) {
  for (auto& [tv, tr] : torchvisionNameMap(L))
    if (tv == name) return tr;
  return "";
}

std::string trainerToTorchvision(const BackboneLayout& L, const std::string& name) {
  for (auto& [tv, tr] : torchvisionNameMap(L))
    if (tr == name) return tv;
  return "";
}

// ---------------------------------------------------------------------------------------------
// import / export

namespace {

std::string listSome(const std::vector<std::string>& v, size_t first = 12) {
  std::string s;
  for (size_t i = 0; i < std::min(first, v.size()); ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > first) s += " and " + std::to_string(v.size() - first) + " more";
  return s;
}

// Copies the file's tensors into `targets` (trainer name relative to a Classifier -> model tensor).
// Keys in the map whose trainer name is not a target are known but unused when `unusedOk` says so.
void importInto(std::map<std::string, torch::Tensor>& targets, const BackboneLayout& L, const std::string& path, const ImportOptions& o,
                const std::function<bool(const std::string&)>& unusedOk, const std::string& what) {
  if (targets.count("backbone.stemNorm.bn.weight") == 0)
    throw JobError(o.field,
                   path + ": a torchvision checkpoint holds BatchNorm layers; this " + what +
                       " has none (norm gn or gn+ws): import it into a model with norm 'bn' (GN / GN+WS models train from scratch)");
  NamedTensors file;
  try {
    file = readTensorFile(path);
  } catch (const std::exception& e) {
    throw JobError(o.field, e.what());
  }
  std::map<std::string, std::string> tvToTr;
  for (auto& [tv, tr] : torchvisionNameMap(L)) tvToTr[tv] = tr;
  std::vector<std::string> unknown, misShaped, unused;
  std::set<std::string> loaded;
  torch::NoGradGuard ng;
  for (auto& [name, t] : file) {
    auto it = tvToTr.find(name);
    if (it == tvToTr.end()) {
      unknown.push_back(name);
      continue;
    }
    auto dst = targets.find(it->second);
    if (dst == targets.end()) {
      if (unusedOk(it->second))
        unused.push_back(name);
      else
        unknown.push_back(name);
      continue;
    }
    if (t.sizes() != dst->second.sizes()) {
      misShaped.push_back(name + " (file " + shapeStr(t.sizes()) + ", model " + shapeStr(dst->second.sizes()) + ")");
      continue;
    }
    if (t.is_floating_point() != dst->second.is_floating_point()) {
      misShaped.push_back(name + " (dtype " + std::string(c10::toString(t.scalar_type())) + ")");
      continue;
    }
    dst->second.copy_(t);
    loaded.insert(it->first);
  }
  std::vector<std::string> missing;
  const size_t misShapedCount = misShaped.size();
  std::map<std::string, std::string> trToTv;
  for (auto& [tv, tr] : tvToTr) trToTv[tr] = tv;
  std::set<std::string> present;
  for (auto& e : file) present.insert(e.first);
  for (auto& [tr, t] : targets) {
    auto tv = trToTv.find(tr);
    const std::string name = tv == trToTv.end() ? tr : tv->second;
    if (present.count(name)) continue;
    // checkpoints saved before BatchNorm counted its batches lack num_batches_tracked (torchvision
    // itself accepts them); the counter stays 0, it is not used with a fixed momentum
    if (tr.size() > 19 && tr.compare(tr.size() - 19, 19, "num_batches_tracked") == 0) continue;
    missing.push_back(name);
  }
  if (!unknown.empty() || !missing.empty() || misShapedCount) {
    std::string msg = path + " does not fit this " + what + " (" + blockKindName(L.block) + ", torchvision naming):";
    if (!unknown.empty()) msg += " " + std::to_string(unknown.size()) + " unknown key(s): " + listSome(unknown) + ";";
    if (!missing.empty()) msg += " " + std::to_string(missing.size()) + " missing key(s): " + listSome(missing) + ";";
    if (misShapedCount) msg += " " + std::to_string(misShapedCount) + " mis-shaped key(s): " + listSome(misShaped) + ";";
    msg.pop_back();
    throw JobError(o.field, msg);
  }
  logInfo("imported " + std::to_string(loaded.size()) + " tensors from " + path + " (torchvision naming)" +
          (unused.empty() ? std::string() : "; " + std::to_string(unused.size()) + " known keys unused by this " + what));
}

std::map<std::string, torch::Tensor> namedTensors(torch::nn::Module& m, const std::string& prefix) {
  std::map<std::string, torch::Tensor> out;
  for (auto& p : m.named_parameters()) out[prefix + p.key()] = p.value();
  for (auto& b : m.named_buffers()) out[prefix + b.key()] = b.value();
  return out;
}

}  // namespace

void importTorchvisionClassifier(Classifier& model, const BackboneLayout& L, const std::string& path, const ImportOptions& o) {
  auto targets = namedTensors(*model, "");
  importInto(
      targets, L, path, o, [](const std::string&) { return false; }, "classifier");
}

void importTorchvisionBackbone(Backbone& backbone, const BackboneLayout& L, const std::string& path, const ImportOptions& o) {
  auto targets = namedTensors(*backbone, "backbone.");
  // the classifier head and the stages the detector does not build
  auto unusedOk = [&](const std::string& tr) { return tr.rfind("backbone.", 0) != 0 || tr.rfind("backbone.stage", 0) == 0; };
  importInto(targets, L, path, o, unusedOk, "backbone");
}

void exportTorchvision(Classifier& model, const BackboneLayout& L, const std::string& path) {
  auto tensors = namedTensors(*model, "");
  NamedTensors out;
  for (auto& [tv, tr] : torchvisionNameMap(L)) {
    auto it = tensors.find(tr);
    if (it == tensors.end()) throw std::runtime_error("export: the classifier has no " + tr + " (norm must be bn for torchvision naming)");
    out.push_back({tv, it->second});
  }
  if (out.size() != tensors.size())
    throw std::runtime_error("export: " + std::to_string(tensors.size() - out.size()) + " classifier tensors have no torchvision name");
  const bool pth = path.size() > 4 && (path.compare(path.size() - 4, 4, ".pth") == 0 || path.compare(path.size() - 3, 3, ".pt") == 0);
  if (pth)
    writeTorchSave(path, out);
  else
    writeSafetensors(path, out);
}

// ---------------------------------------------------------------------------------------------
// pretrained-backbone training settings

void applyBackboneTraining(Backbone& backbone, const BackboneTraining& t) {
  auto frozen = [&](const std::string& child) {
    if (t.frozenStages < 0) return false;
    if (child == "stem" || child == "stemNorm" || child == "stemBlock") return true;
    return child.rfind("stage", 0) == 0 && std::stoi(child.substr(5)) <= t.frozenStages;
  };
  for (auto& c : backbone->named_children()) {
    if (!frozen(c.key())) continue;
    for (auto& p : c.value()->parameters()) p.set_requires_grad(false);
    c.value()->eval();  // its norms keep their statistics (mmdet's _freeze_stages)
  }
  if (t.normEval)
    for (auto& m : backbone->modules(/*include_self=*/false))
      if (m->as<torch::nn::BatchNorm2dImpl>()) m->eval();
}

// ---------------------------------------------------------------------------------------------
// torchvision's ImageNet evaluation transforms

torch::Tensor imagenetEvalTensor(const Image& img, int resize, int crop) {
  // the layout of T.PILToTensor(): a CHW view of the HWC bytes
  auto u8 =
      torch::from_blob(const_cast<uint8_t*>(img.rgb.data()), {img.height, img.width, 3}, torch::kUInt8).permute({2, 0, 1}).unsqueeze(0);
  const int64_t h = img.height, w = img.width;
  const int64_t shortSide = std::min(h, w), longSide = std::max(h, w);
  // torchvision _compute_resized_output_size: int(size * long / short)
  const int64_t newLong = static_cast<int64_t>(static_cast<double>(resize * longSide) / static_cast<double>(shortSide));
  const int64_t nh = h <= w ? resize : newLong, nw = h <= w ? newLong : resize;
  torch::Tensor x = u8;
  if (nh != h || nw != w) {
    // functional_tensor.resize: cast to float32, interpolate(bilinear, align_corners=False,
    // antialias=True), round, cast back to uint8
    auto f = u8.to(torch::kFloat);
    f = at::_upsample_bilinear2d_aa(f, {nh, nw}, /*align_corners=*/false, /*scales_h=*/c10::nullopt, /*scales_w=*/c10::nullopt);
    x = torch::round(f).to(torch::kUInt8);
  }
  // center_crop: int(round((h - crop) / 2.0)), Python's round (half to even)
  const int64_t top = static_cast<int64_t>(std::nearbyint((nh - crop) / 2.0)),
                left = static_cast<int64_t>(std::nearbyint((nw - crop) / 2.0));
  x = x.slice(2, top, top + crop).slice(3, left, left + crop);
  auto y = x.to(torch::kFloat).div(255);  // convert_image_dtype
  auto mean = torch::tensor({0.485f, 0.456f, 0.406f}).view({-1, 1, 1});
  auto stdv = torch::tensor({0.229f, 0.224f, 0.225f}).view({-1, 1, 1});
  return y.squeeze(0).sub_(mean).div_(stdv).contiguous();
}

}  // namespace smnas
