#pragma once
// Internal: per-instruction-set inner kernels behind weight_only_gemm(). The AVX2
// ones live in weight_only_gemm_avx2.cpp (compiled with AVX2 flags) and are reached
// only through this table, so the weight is described by a plain struct with no
// inline member functions (an inline function compiled with AVX2 flags and shared
// with portable code would break the ODR and could run AVX2 code on any CPU).
#include <cstdint>
#include <type_traits>

namespace quarot {
struct WeightEncoding;
}

namespace quarot::weight_only_detail {

// One stored row of a kF16 or kIntGrid weight.
struct RowView {
  bool f16 = false;               // true: data holds cols IEEE halves
  int64_t cols = 0;
  const uint8_t* data = nullptr;  // the row's halves or packed codes
  int bits = 0;                   // int: 2..8; <= 4 packs two codes per byte, low nibble first
  int64_t group_size = 0;         // int: columns per scale
  const float* scales = nullptr;  // int: this row's [n_groups] scales
  const float* zeros = nullptr;   // int: this row's [n_groups] zero points; null = symmetric
  int32_t sym_zero = 0;           // int: 2^(bits-1), used when zeros is null
};

// Row r of a kF16 or kIntGrid weight (defined in portable code, weight_only_gemm.cpp).
RowView row_view(const WeightEncoding& w, int64_t r);

// The ISA kernels' rows1 loop (portable code): rows first .. first + rows - 1 one after
// another, dot1 on each (out[j] = that row's n = 1 sum), with the rows at
// decode_prefetch()'s distances ahead (stream_prefetch.h) prefetched line by line.
// Row first + j: data advances by row_stride bytes, scales / zeros by one row's groups.
void stream_rows1(const RowView& first, int64_t row_stride, int64_t rows, const float* x, float* out,
                  void (*dot1)(const RowView& row, const float* x, float* out));

// Whether the AVX-512 kernels read F16 rows 16 lanes at a time (portable code): on the
// 2-vCPU Xeon with AMX the AVX2 row kernel's two 8-lane chains held the FP16 lm_head
// below the memory's rate (more L2 prefetch requests made it slower, not faster), and
// the 16-lane row with stream_prefetch.h's requests reads it at a plain read's rate
// (docs/results/2026-12-06-xeon2-decode-prefetch/). On Zen 4, which splits 512-bit
// conversions in two, the AVX2 kernel streamed faster (1.66-1.80 against 1.90-1.94 ms),
// so AMD keeps it.
bool wide_f16_rows();

// Nibble rows the AVX-512 GEMV reads 32 columns at a time (4-bit and narrower grids whose
// scale groups are multiples of 32 columns, or one per row). For such a weight its
// activations come with every whole block of 32 columns reordered as the block's 16
// even columns, then its 16 odd ones (the order of the low and high nibbles of 16
// bytes); a ragged tail keeps its order. Portable code (weight_only_gemm.cpp).
bool split_nibble_row(const RowView& row);
// x [n, cols] -> out [n, cols] in that order.
void split_nibble_columns(const float* x, int64_t n, int64_t cols, float* out);
inline constexpr int64_t kSplitBlock = 32;

struct WeightOnlyKernels {
  // out[i] = sum_c W[c] * x[i * cols + c] for i < n, 1 <= n <= 8 (no bias).
  void (*dot_row)(const RowView& row, const float* x, int64_t n, float* out);
  // out[c] = W[c] for c < cols (the exact dequantized values).
  void (*decode_row)(const RowView& row, float* out);
  // Decode (one activation row, e.g. the lm_head): out[j] = sum_c W[j, c] * x[c] for
  // `rows` consecutive rows starting at `first` (any stored format); each out[j] is
  // bit-identical to dot_row's for that row with n = 1 (same sums, same order), so
  // any split of the rows gives the same bits. Row first + j: data advances by
  // row_stride bytes, scales / zeros by one row's cols / group_size groups.
  void (*rows1)(const RowView& first, int64_t row_stride, int64_t rows, const float* x, float* out);
  // True when dot_row / rows1 expect the split_nibble_columns order for split_nibble_row weights.
  bool splits_nibbles = false;
};

// The ISA files' dot_row: rows(std::integral_constant<int, N>{}) for N = n (1..8, n > 8
// taken as 8). Only ever instantiated with a lambda local to one ISA file, so every
// instantiation is that file's own symbol (no code compiled under one ISA's flags is
// shared with another: see the ODR note above).
template <typename Rows>
void for_row_count(int64_t n, Rows&& rows) {
  switch (n) {
    case 1: return rows(std::integral_constant<int, 1>{});
    case 2: return rows(std::integral_constant<int, 2>{});
    case 3: return rows(std::integral_constant<int, 3>{});
    case 4: return rows(std::integral_constant<int, 4>{});
    case 5: return rows(std::integral_constant<int, 5>{});
    case 6: return rows(std::integral_constant<int, 6>{});
    case 7: return rows(std::integral_constant<int, 7>{});
    default: return rows(std::integral_constant<int, 8>{});
  }
}

const WeightOnlyKernels& weight_only_kernels_scalar();
const WeightOnlyKernels& weight_only_kernels_avx2();
// 16 weights per vector; integer grids scaled once per group (weight_only_gemm.h).
const WeightOnlyKernels& weight_only_kernels_avx512();

}  // namespace quarot::weight_only_detail
