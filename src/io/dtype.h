#pragma once
// Element types found in model files (GGUF's ggml types and safetensors' dtypes).
#include <cstdint>
#include <string>

namespace quarot {

enum class DType {
  kF32, kF16, kBF16, kF64,
  kI8, kI16, kI32, kI64, kU8, kU16, kU32, kBool,
  kQ4_0, kQ4_1, kQ5_0, kQ5_1, kQ8_0,
  kQ4_K, kQ5_K, kQ6_K,
};

std::string dtype_name(DType t);
// Elements per block and bytes per block (1 and sizeof for plain types).
int64_t dtype_block_elems(DType t);
int64_t dtype_block_bytes(DType t);

}  // namespace quarot
