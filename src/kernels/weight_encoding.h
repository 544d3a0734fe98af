#pragma once
// How a linear layer's weight matrix [rows = out_features, cols = in_features] is
// encoded in memory, as handed to a Backend (kernels/backend.h). The encoding is a
// read-only *view*: the bytes usually live in a memory-mapped model file, and
// `owner` keeps whatever holds them alive, so a 4-bit weight reaches the kernels as
// the file's nibbles with no FP32 round trip.
//
// Kinds:
//   kF32, kF16: dense row-major floats (row stride = cols elements).
//   kIntGrid:   one unsigned code per weight on a uniform grid,
//                 w[r, c] = scale[r, g] * (code[r, c] - zero[r, g]),  g = c / group_size
//               zero = zeros[r, g] when asymmetric, 2^(bits-1) when symmetric.
//               Codes are packed per row: two per byte (low nibble first) when
//               bits <= 4, one per byte otherwise; a row occupies
//               packed_row_bytes(cols, bits) bytes (an odd row leaves the last high
//               nibble 0). scales/zeros are [rows, n_groups] FP32.
//   (A codebook kind, one small table of centroids per column, is reserved for CLAQ.)
// Every consumer may rely on validate() having passed.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace quarot {

enum class WeightKind { kF32, kF16, kIntGrid };
const char* weight_kind_name(WeightKind k);

struct WeightEncoding {
  WeightKind kind = WeightKind::kF32;
  int64_t rows = 0, cols = 0;
  const void* data = nullptr;  // kF32/kF16 values, or kIntGrid packed codes

  // kIntGrid only.
  int bits = 0;
  bool symmetric = true;
  int64_t group = 0;              // 0 = one group per row
  const float* scales = nullptr;  // [rows, n_groups()]
  const float* zeros = nullptr;   // [rows, n_groups()], integral values; null when symmetric

  std::shared_ptr<const void> owner;  // keeps data/scales/zeros alive

  int64_t group_size() const { return group > 0 ? group : cols; }
  int64_t n_groups() const { return group > 0 ? cols / group : 1; }
  int64_t row_bytes() const;  // bytes of one stored row of data
  const uint8_t* row_data(int64_t r) const { return static_cast<const uint8_t*>(data) + r * row_bytes(); }
  int32_t zero_point(int64_t r, int64_t g) const {
    return symmetric ? (1 << (bits - 1)) : static_cast<int32_t>(zeros[r * n_groups() + g]);
  }
  // Bytes of weight data a product reads (codes or values, plus scales and zeros).
  int64_t stored_bytes() const;

  // Throws Error("<what>: ...") on a shape, bit width, group, scale, zero point or
  // code that the formula above cannot use. Checks every value (O(rows * cols)).
  void validate(const std::string& what) const;

  // Rows [r0, r0 + n) as FP32 into out[n, cols] (the exact values the formula gives).
  void dequantize_rows(int64_t r0, int64_t n, float* out) const;
  std::vector<float> dequantize() const;  // all rows
};

int64_t packed_row_bytes(int64_t cols, int bits);  // (cols + 1) / 2 when bits <= 4, else cols

// Views over caller-owned memory (no copy). `owner` may be null when the caller
// guarantees the lifetime.
WeightEncoding f32_weight(const float* data, int64_t rows, int64_t cols, std::shared_ptr<const void> owner = nullptr);
WeightEncoding f16_weight(const uint16_t* data, int64_t rows, int64_t cols,
                          std::shared_ptr<const void> owner = nullptr);

// An int-grid encoding that owns its buffers: codes unpacked [rows, cols], one per
// weight; scales/zeros [rows, n_groups] (zeros empty when symmetric).
WeightEncoding make_int_grid_weight(int bits, bool symmetric, int64_t group, int64_t rows, int64_t cols,
                                    const std::vector<uint8_t>& codes, std::vector<float> scales,
                                    std::vector<float> zeros);

}  // namespace quarot
