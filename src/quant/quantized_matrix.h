#pragma once
// A weight matrix quantized on an integer grid (quant/weight_quantizer.h): one
// unsigned code per weight, one scale (and, when asymmetric, one zero point) per
// output row or per group of `group` consecutive input columns.
//   w'[r, c] = scales[r * n_groups + c / group_size] * (codes[r * cols + c] - zero)
// zero = zeros[...] when asymmetric, 2^(bits-1) when symmetric.
#include <cstdint>
#include <string>
#include <vector>

#include "common/tensor.h"
#include "kernels/weight_encoding.h"
#include "quant/weight_quantizer.h"

namespace quarot {

struct QuantizedMatrix {
  int bits = 0;
  bool symmetric = true;
  int64_t group = 0;  // 0 = per row
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> codes;  // [rows, cols], each in [0, 2^bits - 1]
  std::vector<float> scales;   // [rows, n_groups()]
  std::vector<float> zeros;    // [rows, n_groups()] when asymmetric (integral values), else empty

  int64_t group_size() const { return group > 0 ? group : cols; }
  int64_t n_groups() const { return group > 0 ? cols / group : 1; }
  QuantParams params(int64_t row, int64_t col) const {
    const int64_t g = row * n_groups() + col / group_size();
    return {scales[g], symmetric ? static_cast<float>(1 << (bits - 1)) : zeros[g]};
  }
  // The signed integer of a symmetric grid (code - 2^(bits-1)), the code itself if asymmetric.
  int32_t integer_value(int64_t row, int64_t col) const {
    const int32_t code = codes[row * cols + col];
    return symmetric ? code - (1 << (bits - 1)) : code;
  }
  Tensor dequantize() const;  // [rows, cols] FP32
  // The same matrix as a self-owning packed encoding for a Backend, and back.
  WeightEncoding encode() const;
  static QuantizedMatrix from_encoding(const WeightEncoding& e);
  // Throws Error("<source>: <name>: ...") on inconsistent sizes, codes out of range,
  // non-finite or non-positive scales, or zero points off the grid.
  void validate(const std::string& source, const std::string& name) const;
};

// Packs codes of `bits` bits: two per byte (low nibble first) when bits <= 4, one per
// byte otherwise. An odd count leaves the last high nibble 0.
std::vector<uint8_t> pack_codes(const std::vector<uint8_t>& codes, int bits);
int64_t packed_size(int64_t n_codes, int bits);
// Inverse of pack_codes; `packed` must hold exactly packed_size(n_codes, bits) bytes.
std::vector<uint8_t> unpack_codes(const uint8_t* packed, int64_t packed_bytes, int64_t n_codes, int bits,
                                  const std::string& what);

// How a file stores one row of codes (docs/file-format.md, "packing"). In memory every
// grid stays nibbles (bits <= 4) or bytes, the forms the kernels read; 2- and 3-bit rows
// are stored densely so that a 2-bit file is half a 4-bit one.
enum class CodePacking {
  kNibbles,  // "nibbles-low-first": two codes per byte, low nibble first
  kBytes,    // "bytes": one code per byte
  kBits,     // "bits-low-first": a little-endian bit stream, code i at bits [i*b, i*b + b)
};
inline constexpr CodePacking kCodePackings[] = {CodePacking::kNibbles, CodePacking::kBytes, CodePacking::kBits};
const char* code_packing_name(CodePacking p);
// The packing the writer uses for `bits` (the densest the reader expands cheaply).
CodePacking file_packing(int bits);
// The packing files before format version 3 used (no "packing" key was needed to read them).
CodePacking legacy_packing(int bits);
// Bytes of one row of `n_codes` codes in packing `p`.
int64_t packed_row_size(int64_t n_codes, int bits, CodePacking p);
// Codes [n] -> one packed row of packed_row_size(n, bits, kBits) bytes (padding bits 0).
std::vector<uint8_t> pack_codes_dense(const uint8_t* codes, int64_t n_codes, int bits);
// One kBits row of 1..4-bit codes -> the in-memory nibbles, written to `out`
// (packed_size(n_codes, bits) bytes). Padding bits are ignored.
void expand_dense_row(const uint8_t* packed, int64_t n_codes, int bits, uint8_t* out);

}  // namespace quarot
