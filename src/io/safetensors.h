#pragma once
// safetensors files: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then the raw
// little-endian tensor bytes. The reader maps the file and checks every offset
// and size before use; the writer is what quarot's own model files are made of.
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "common/mapped_file.h"
#include "io/tensor_source.h"

namespace quarot {

class SafetensorsFile : public TensorSource {
 public:
  explicit SafetensorsFile(const std::string& path);  // throws Error("<path>: ...")
  const std::string& path() const override { return file_.path(); }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  // FP32 copy of any dtype (integers and bools converted by value).
  Tensor read(const std::string& name) const override;

  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Raw bytes of a tensor, exactly as stored (bounds already checked).
  std::span<const uint8_t> raw(const std::string& name) const;
  const uint8_t* tensor_data(const TensorInfo& t) const { return file_.data() + t.offset; }
  // The mapping tensor_data points into (to release pages of data used up).
  const MappedFile& mapping() const { return file_; }

 private:
  MappedFile file_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // outermost first
  std::vector<uint8_t> data;   // little-endian, exactly numel * element size bytes
};

// Writes atomically (common/atomic_file.h). The data section starts 8-byte aligned
// and tensors are laid out contiguously, largest element size first, so every
// tensor is aligned to its element size and the file stays readable by the
// reference `safetensors` library (which forbids gaps between tensors).
// Throws Error on duplicate names, size mismatches or block-quantized dtypes.
void write_safetensors(const std::string& path, const std::vector<SafetensorsEntry>& tensors,
                       const std::map<std::string, std::string>& metadata);

// Convenience for FP32 tensors.
SafetensorsEntry safetensors_entry_f32(const std::string& name, const Tensor& t);

// "F32", "BF16", ... <-> DType; throws Error naming `source` for unknown strings.
DType dtype_from_safetensors(const std::string& s, const std::string& source);
std::string safetensors_dtype_string(DType t);  // throws Error for ggml block types

}  // namespace quarot
