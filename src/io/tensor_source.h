#pragma once
// A model file's tensors, whatever the container (GGUF, safetensors, sharded HF
// checkpoint). Shapes are outermost first; read() dequantizes to FP32.
#include <cstdint>
#include <string>
#include <vector>

#include "common/tensor.h"
#include "io/dtype.h"

namespace quarot {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // outermost first
  uint64_t offset = 0;         // byte offset of the data within its file
  uint64_t nbytes = 0;
  int file_index = 0;          // which shard (HF sharded checkpoints)
};

// Throws Error("<path>: tensors A and B have overlapping data") when two non-empty
// tensors' byte ranges (offset, nbytes; already checked to lie inside the file) overlap.
void check_tensor_data_disjoint(const std::vector<TensorInfo>& tensors, const std::string& path);

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual const std::string& path() const = 0;
  virtual const std::vector<TensorInfo>& tensors() const = 0;
  const TensorInfo* find(const std::string& name) const;
  // Dequantized FP32 copy. Throws Error("<path>: tensor <name> ...") when missing or unreadable.
  virtual Tensor read(const std::string& name) const = 0;
};

}  // namespace quarot
