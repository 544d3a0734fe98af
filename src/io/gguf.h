#pragma once
// GGUF v2/v3 reader over a memory map: metadata key/values, tensor table, and
// dequantization to FP32 (io/ggml_quants.h). Every offset and size is checked
// against the file before use: a corrupt file gives an Error naming the file and
// the problem, never an out-of-bounds read.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "common/mapped_file.h"
#include "io/tensor_source.h"

namespace quarot {

struct GgufValue;
using GgufArray = std::vector<GgufValue>;
struct GgufValue {
  // Integers of every width are widened to int64/uint64; float32/64 to double.
  std::variant<uint64_t, int64_t, double, bool, std::string, GgufArray> v;
};

class GgufFile : public TensorSource {
 public:
  explicit GgufFile(const std::string& path);
  const std::string& path() const override { return file_.path(); }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  Tensor read(const std::string& name) const override;

  uint32_t version() const { return version_; }
  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  bool has(const std::string& key) const { return metadata_.count(key) != 0; }
  // Typed getters: throw Error("<path>: metadata key <key> missing / has type X, expected Y").
  std::string get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;    // any integer type
  double get_float(const std::string& key) const;   // float or integer
  bool get_bool(const std::string& key) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<double> get_float_array(const std::string& key) const;
  std::vector<int64_t> get_int_array(const std::string& key) const;
  // Defaults when absent (still an error when present with the wrong type).
  std::string get_string_or(const std::string& key, const std::string& def) const;
  int64_t get_int_or(const std::string& key, int64_t def) const;
  double get_float_or(const std::string& key, double def) const;
  bool get_bool_or(const std::string& key, bool def) const;

  // Raw bytes of a tensor's data (bounds already checked).
  const uint8_t* tensor_data(const TensorInfo& t) const;

 private:
  MappedFile file_;
  uint32_t version_ = 0;
  std::map<std::string, GgufValue> metadata_;
  std::vector<TensorInfo> tensors_;
  uint64_t data_start_ = 0;
};

}  // namespace quarot
