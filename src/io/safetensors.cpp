#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/threads.h"
#include "io/ggml_quants.h"

namespace quarot {

namespace {

using nlohmann::json;

constexpr uint64_t kAlignment = 8;

bool is_plain(DType t) { return dtype_block_elems(t) == 1; }

uint64_t parse_u64(const json& v, const std::string& path, const std::string& name, const char* what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  fail("{}: tensor {} has a {} that is not a non-negative integer: {}", path, name, what, v.dump());
}

}  // namespace

DType dtype_from_safetensors(const std::string& s, const std::string& source) {
  static const std::map<std::string, DType> kTypes = {
      {"F32", DType::kF32}, {"F16", DType::kF16}, {"BF16", DType::kBF16}, {"F64", DType::kF64},
      {"I8", DType::kI8},   {"I16", DType::kI16}, {"I32", DType::kI32},   {"I64", DType::kI64},
      {"U8", DType::kU8},   {"U16", DType::kU16}, {"U32", DType::kU32},   {"BOOL", DType::kBool}};
  auto it = kTypes.find(s);
  if (it == kTypes.end()) fail("{}: unsupported safetensors dtype '{}'", source, s);
  return it->second;
}

std::string safetensors_dtype_string(DType t) {
  if (!is_plain(t)) fail("safetensors cannot store block-quantized dtype {}", dtype_name(t));
  return dtype_name(t);  // the plain names coincide with safetensors' spelling
}

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(path) {
  const std::string& p = file_.path();
  const uint64_t size = file_.size();
  if (size < 8) fail("{}: not a safetensors file (only {} bytes)", p, size);
  uint64_t header_len;
  std::memcpy(&header_len, file_.data(), 8);
  if (header_len > size - 8)
    fail("{}: header length {} exceeds the file size {} (truncated or not safetensors)", p, header_len, size);
  const char* header_begin = reinterpret_cast<const char*>(file_.data() + 8);

  // nlohmann keeps the last of duplicated keys silently; a callback sees them all.
  std::set<std::string> top_keys;
  std::string duplicate;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1) {
      const std::string key = parsed.get<std::string>();
      if (!top_keys.insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  json header = json::parse(header_begin, header_begin + header_len, on_event, /*allow_exceptions=*/false);
  if (header.is_discarded()) fail("{}: header is not valid JSON", p);
  if (!duplicate.empty()) fail("{}: duplicated tensor name {} in header", p, duplicate);
  if (!header.is_object()) fail("{}: header is not a JSON object", p);

  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = size - data_start;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail("{}: __metadata__ is not a JSON object", p);
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail("{}: __metadata__ value for {} is not a string", p, m.key());
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object()) fail("{}: entry for tensor {} is not a JSON object", p, name);
    if (!v.contains("dtype") || !v["dtype"].is_string()) fail("{}: tensor {} has no dtype string", p, name);
    if (!v.contains("shape") || !v["shape"].is_array()) fail("{}: tensor {} has no shape array", p, name);
    if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
      fail("{}: tensor {} has no data_offsets [begin, end]", p, name);
    TensorInfo t;
    t.name = name;
    t.dtype = dtype_from_safetensors(v["dtype"].get<std::string>(), p + ": tensor " + name);
    uint64_t numel = 1;
    for (const json& d : v["shape"]) {
      const uint64_t dim = parse_u64(d, p, name, "shape entry");
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          __builtin_mul_overflow(numel, dim, &numel) ||
          numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail("{}: tensor {} element count overflows", p, name);
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    const uint64_t begin = parse_u64(v["data_offsets"][0], p, name, "data offset");
    const uint64_t end = parse_u64(v["data_offsets"][1], p, name, "data offset");
    if (end < begin) fail("{}: tensor {} has data_offsets end {} before begin {}", p, name, end, begin);
    if (end > data_size)
      fail("{}: tensor {} data [{}, {}) extends past end of file (data section is {} bytes)", p, name, begin, end,
           data_size);
    uint64_t expected;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_block_bytes(t.dtype)), &expected) ||
        expected != end - begin)
      fail("{}: tensor {} data_offsets span {} bytes but shape {} of {} needs {}", p, name, end - begin,
           v["shape"].dump(), dtype_name(t.dtype), numel * dtype_block_bytes(t.dtype));
    t.offset = data_start + begin;
    t.nbytes = end - begin;
    tensors_.push_back(std::move(t));
  }
  check_tensor_data_disjoint(tensors_, p);
}

std::span<const uint8_t> SafetensorsFile::raw(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (t == nullptr) fail("{}: tensor {} not found", path(), name);
  return {tensor_data(*t), static_cast<size_t>(t->nbytes)};
}

Tensor SafetensorsFile::read(const std::string& name) const {
  const TensorInfo* info = find(name);
  if (info == nullptr) fail("{}: tensor {} not found", path(), name);
  Tensor out(info->shape);
  const int64_t n = out.numel();
  const int64_t elem = dtype_block_bytes(info->dtype);
  const uint8_t* src = tensor_data(*info);
  constexpr int64_t kChunk = 1 << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const DType type = info->dtype;
#pragma omp parallel for schedule(static) num_threads(num_threads()) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk;
    const int64_t count = std::min(kChunk, n - begin);
    dequantize_row(type, src + begin * elem, out.data.data() + begin, count);
  }
  return out;
}

SafetensorsEntry safetensors_entry_f32(const std::string& name, const Tensor& t) {
  SafetensorsEntry e;
  e.name = name;
  e.dtype = DType::kF32;
  e.shape = t.shape;
  e.data.resize(t.data.size() * sizeof(float));
  if (!t.data.empty()) std::memcpy(e.data.data(), t.data.data(), e.data.size());
  return e;
}

void write_safetensors(const std::string& path, const std::vector<SafetensorsEntry>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::set<std::string> names;
  for (const SafetensorsEntry& e : tensors) {
    if (e.name == "__metadata__") fail("{}: tensor name __metadata__ is reserved", path);
    if (!names.insert(e.name).second) fail("{}: duplicated tensor name {}", path, e.name);
    const std::string dtype = safetensors_dtype_string(e.dtype);
    int64_t numel = 1;
    for (int64_t d : e.shape) {
      if (d < 0) fail("{}: tensor {} has negative dimension {}", path, e.name, d);
      numel *= d;
    }
    if (static_cast<uint64_t>(numel * dtype_block_bytes(e.dtype)) != e.data.size())
      fail("{}: tensor {} has {} bytes of data but shape x {} needs {}", path, e.name, e.data.size(), dtype,
           numel * dtype_block_bytes(e.dtype));
  }
  std::vector<const SafetensorsEntry*> order;
  for (const SafetensorsEntry& e : tensors) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(), [](const SafetensorsEntry* a, const SafetensorsEntry* b) {
    return dtype_block_bytes(a->dtype) > dtype_block_bytes(b->dtype);
  });

  json header = json::object();
  if (!metadata.empty()) {
    json md = json::object();
    for (const auto& [k, v] : metadata) md[k] = v;
    header["__metadata__"] = md;
  }
  uint64_t offset = 0;
  for (const SafetensorsEntry* e : order) {
    header[e->name] = {{"dtype", safetensors_dtype_string(e->dtype)},
                       {"shape", e->shape},
                       {"data_offsets", {offset, offset + e->data.size()}}};
    offset += e->data.size();
  }
  std::string text = header.dump();
  // Spaces are valid JSON padding; they put the data section on an 8-byte boundary.
  text.append((kAlignment - (8 + text.size()) % kAlignment) % kAlignment, ' ');
  write_file_atomic(path, [&](std::ostream& out) {
    const uint64_t len = text.size();
    char len_bytes[8];
    std::memcpy(len_bytes, &len, 8);
    out.write(len_bytes, 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const SafetensorsEntry* e : order)
      out.write(reinterpret_cast<const char*>(e->data.data()), static_cast<std::streamsize>(e->data.size()));
  });
}

}  // namespace quarot
