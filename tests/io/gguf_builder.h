#pragma once
// Test helper: emits GGUF v3 (or v2) bytes with metadata and F32 / F16 / Q8_0 (or
// raw) tensors, so tests can fabricate tiny models and deliberately broken files.
// Written from the GGUF specification, independent of io/gguf.cpp:
//   "GGUF" u32 version, u64 n_tensors, u64 n_kv, kv pairs, tensor infos
//   (name, u32 n_dims, u64 ne[] innermost first, u32 ggml type, u64 offset),
//   padding to the alignment, tensor data (each tensor aligned).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/half.h"

namespace quarot::testing {

// GGUF metadata value type ids.
enum GgufValueType : uint32_t {
  kGgufU8 = 0, kGgufI8 = 1, kGgufU16 = 2, kGgufI16 = 3, kGgufU32 = 4, kGgufI32 = 5, kGgufF32 = 6,
  kGgufBool = 7, kGgufString = 8, kGgufArray = 9, kGgufU64 = 10, kGgufI64 = 11, kGgufF64 = 12,
};

// ggml tensor type ids used by the builder.
inline constexpr uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ4_0 = 2, kGgmlQ4_1 = 3, kGgmlQ8_0 = 8,
                          kGgmlQ4_K = 12, kGgmlQ6_K = 14, kGgmlBF16 = 30;

// Little-endian byte appender.
struct ByteWriter {
  std::vector<uint8_t> bytes;
  template <typename T>
  ByteWriter& put(T v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    bytes.insert(bytes.end(), b, b + sizeof(T));
    return *this;
  }
  ByteWriter& str(const std::string& s) {
    put<uint64_t>(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
    return *this;
  }
  ByteWriter& raw(const std::vector<uint8_t>& b) {
    bytes.insert(bytes.end(), b.begin(), b.end());
    return *this;
  }
};

class GgufBuilder {
 public:
  struct TensorSpec {
    std::string name;
    std::vector<uint64_t> ne;  // innermost first, as stored
    uint32_t ggml_type = kGgmlF32;
    std::vector<uint8_t> data;
    std::optional<uint64_t> offset;  // relative to the data section; default: next aligned slot
  };

  GgufBuilder& version(uint32_t v) { version_ = v; return *this; }
  // Sets the data alignment and records it as general.alignment.
  GgufBuilder& alignment(uint32_t a) { alignment_ = a; return add_u32("general.alignment", a); }

  // Encoded value bytes (without key) for composing nested arrays by hand.
  GgufBuilder& add_raw_kv(const std::string& key, uint32_t type, const std::vector<uint8_t>& value) {
    ByteWriter w;
    w.str(key).put<uint32_t>(type).raw(value);
    kv_.raw(w.bytes);
    ++n_kv_;
    return *this;
  }
  template <typename T>
  static std::vector<uint8_t> scalar(T v) { ByteWriter w; w.put<T>(v); return w.bytes; }

  GgufBuilder& add_u8(const std::string& k, uint8_t v) { return add_raw_kv(k, kGgufU8, scalar(v)); }
  GgufBuilder& add_i8(const std::string& k, int8_t v) { return add_raw_kv(k, kGgufI8, scalar(v)); }
  GgufBuilder& add_u16(const std::string& k, uint16_t v) { return add_raw_kv(k, kGgufU16, scalar(v)); }
  GgufBuilder& add_i16(const std::string& k, int16_t v) { return add_raw_kv(k, kGgufI16, scalar(v)); }
  GgufBuilder& add_u32(const std::string& k, uint32_t v) { return add_raw_kv(k, kGgufU32, scalar(v)); }
  GgufBuilder& add_i32(const std::string& k, int32_t v) { return add_raw_kv(k, kGgufI32, scalar(v)); }
  GgufBuilder& add_u64(const std::string& k, uint64_t v) { return add_raw_kv(k, kGgufU64, scalar(v)); }
  GgufBuilder& add_i64(const std::string& k, int64_t v) { return add_raw_kv(k, kGgufI64, scalar(v)); }
  GgufBuilder& add_f32(const std::string& k, float v) { return add_raw_kv(k, kGgufF32, scalar(v)); }
  GgufBuilder& add_f64(const std::string& k, double v) { return add_raw_kv(k, kGgufF64, scalar(v)); }
  GgufBuilder& add_bool(const std::string& k, bool v) { return add_raw_kv(k, kGgufBool, scalar<uint8_t>(v)); }
  GgufBuilder& add_string(const std::string& k, const std::string& v) {
    ByteWriter w;
    w.str(v);
    return add_raw_kv(k, kGgufString, w.bytes);
  }
  GgufBuilder& add_string_array(const std::string& k, const std::vector<std::string>& v) {
    ByteWriter w;
    w.put<uint32_t>(kGgufString).put<uint64_t>(v.size());
    for (const auto& s : v) w.str(s);
    return add_raw_kv(k, kGgufArray, w.bytes);
  }
  GgufBuilder& add_f32_array(const std::string& k, const std::vector<float>& v) {
    ByteWriter w;
    w.put<uint32_t>(kGgufF32).put<uint64_t>(v.size());
    for (float x : v) w.put<float>(x);
    return add_raw_kv(k, kGgufArray, w.bytes);
  }
  GgufBuilder& add_i32_array(const std::string& k, const std::vector<int32_t>& v) {
    ByteWriter w;
    w.put<uint32_t>(kGgufI32).put<uint64_t>(v.size());
    for (int32_t x : v) w.put<int32_t>(x);
    return add_raw_kv(k, kGgufArray, w.bytes);
  }

  // Tensor with explicit GGUF dims (innermost first) and raw data.
  GgufBuilder& add_tensor_raw(const std::string& name, std::vector<uint64_t> ne, uint32_t ggml_type,
                              std::vector<uint8_t> data, std::optional<uint64_t> offset = std::nullopt) {
    tensors_.push_back({name, std::move(ne), ggml_type, std::move(data), offset});
    return *this;
  }
  // `shape` is outermost first (PyTorch order); values row-major.
  GgufBuilder& add_tensor_f32(const std::string& name, const std::vector<int64_t>& shape,
                              const std::vector<float>& values) {
    ByteWriter w;
    for (float v : values) w.put<float>(v);
    return add_tensor_raw(name, to_ne(shape), kGgmlF32, w.bytes);
  }
  GgufBuilder& add_tensor_f16(const std::string& name, const std::vector<int64_t>& shape,
                              const std::vector<float>& values) {
    ByteWriter w;
    for (float v : values) w.put<uint16_t>(fp32_to_fp16(v));
    return add_tensor_raw(name, to_ne(shape), kGgmlF16, w.bytes);
  }
  // Q8_0 blocks of 32: d = max|x| / 127 (stored fp16), q = round(x / d).
  GgufBuilder& add_tensor_q8_0(const std::string& name, const std::vector<int64_t>& shape,
                               const std::vector<float>& values) {
    if (values.size() % 32 != 0) throw std::invalid_argument("Q8_0 needs a multiple of 32 values");
    ByteWriter w;
    for (size_t b = 0; b < values.size(); b += 32) {
      float amax = 0.0f;
      for (size_t j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(values[b + j]));
      const uint16_t d16 = fp32_to_fp16(amax / 127.0f);
      const float d = fp16_to_fp32(d16);
      w.put<uint16_t>(d16);
      for (size_t j = 0; j < 32; ++j) {
        const float q = d == 0.0f ? 0.0f : std::round(values[b + j] / d);
        w.put<int8_t>(static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f)));
      }
    }
    return add_tensor_raw(name, to_ne(shape), kGgmlQ8_0, w.bytes);
  }

  std::vector<uint8_t> bytes() const {
    ByteWriter w;
    w.put<uint32_t>(0x46554747u).put<uint32_t>(version_);
    w.put<uint64_t>(tensors_.size()).put<uint64_t>(n_kv_);
    w.raw(kv_.bytes);
    std::vector<uint64_t> offsets;
    uint64_t next = 0;
    for (const TensorSpec& t : tensors_) {
      const uint64_t off = t.offset.value_or(next);
      offsets.push_back(off);
      next = align(std::max(next, off + t.data.size()));
    }
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const TensorSpec& t = tensors_[i];
      w.str(t.name).put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
      for (uint64_t n : t.ne) w.put<uint64_t>(n);
      w.put<uint32_t>(t.ggml_type).put<uint64_t>(offsets[i]);
    }
    w.bytes.resize(align(w.bytes.size()), 0);
    const size_t data_start = w.bytes.size();
    uint64_t data_end = 0;
    // Offsets far past any real data (used to test bounds checks) get no bytes.
    auto in_file = [&](size_t i) { return offsets[i] < (uint64_t{1} << 24); };
    for (size_t i = 0; i < tensors_.size(); ++i)
      if (in_file(i)) data_end = std::max(data_end, offsets[i] + tensors_[i].data.size());
    w.bytes.resize(data_start + align(data_end), 0);
    for (size_t i = 0; i < tensors_.size(); ++i)
      if (in_file(i))
        std::memcpy(w.bytes.data() + data_start + offsets[i], tensors_[i].data.data(), tensors_[i].data.size());
    return w.bytes;
  }

  void write(const std::string& path) const { write_bytes(path, bytes()); }

  static void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    if (!out) throw std::runtime_error("cannot write " + path);
  }

  static std::vector<uint64_t> to_ne(const std::vector<int64_t>& shape) {
    return std::vector<uint64_t>(shape.rbegin(), shape.rend());
  }

 private:
  uint64_t align(uint64_t x) const { return (x + alignment_ - 1) / alignment_ * alignment_; }

  uint32_t version_ = 3;
  uint64_t alignment_ = 32;
  ByteWriter kv_;
  uint64_t n_kv_ = 0;
  std::vector<TensorSpec> tensors_;
};

}  // namespace quarot::testing
