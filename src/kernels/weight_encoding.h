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
//   kCodebook:  CLAQ (column-level adaptive codebooks). Every input column c has its
//               own table of 2^b[c] centroids (b[c] = col_bits[c] in 1..8), each weight
//               is an index into its column's table, and a sparse set of outliers
//               replaces single weights by their own value:
//                 w[r, c] = outlier value      when (r, c) is an outlier,
//                           T_c[idx[r, c]]     otherwise.
//               Centroids and outlier values are stored as FP16: the encoding holds
//               codebook_round(v) for every value v it was given, and the formula
//               yields exactly those FP16 values (widened to FP32). The stored form
//               (CodebookLayout below) groups columns by bit width so kernels loop
//               over same-width columns without branching:
//                 column order: ascending (b, c); position k holds column order[k].
//                 centroids:    FP16, position k's table of 2^b values at
//                               centroid_offset(k) (tables concatenated in order).
//                 indices:      rows in stripes of kCodebookStripeRows (64); stripe s,
//                               position k is a slice of 8 * b bytes at
//                               s * stripe_bytes + slice_offset(k), holding the 64
//                               indices of rows 64 s .. 64 s + 63 as a little-endian
//                               bit stream, b bits each (row j at bits [j b, j b + b)).
//                               Rows past the last are index 0. The stream ends with
//                               kCodebookIndexPadBytes zero bytes, so kernels may
//                               load 4 bytes anywhere inside it.
//                 outliers:     CSR by row: row_ptr[rows + 1] (uint32), then per
//                               outlier its column (uint16, strictly increasing
//                               within a row) and FP16 value. No outliers: all three
//                               pointers may be null. Columns are limited to 65536.
// Every consumer may rely on validate() having passed.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace quarot {

class MappedFile;

enum class WeightKind { kF32, kF16, kIntGrid, kCodebook };
const char* weight_kind_name(WeightKind k);

struct WeightEncoding {
  WeightKind kind = WeightKind::kF32;
  int64_t rows = 0, cols = 0;
  const void* data = nullptr;  // kF32/kF16 values, kIntGrid packed codes, kCodebook index stream

  // kIntGrid only.
  int bits = 0;
  bool symmetric = true;
  int64_t group = 0;              // 0 = one group per row
  const float* scales = nullptr;  // [rows, n_groups()]
  const float* zeros = nullptr;   // [rows, n_groups()], integral values; null when symmetric

  // kCodebook only (layout in the contract above; `bits` is the widest column's b).
  const uint8_t* col_bits = nullptr;          // [cols], original column order
  const uint16_t* centroids = nullptr;        // FP16, grouped by width (CodebookLayout)
  int64_t n_outliers = 0;
  const uint32_t* outlier_row_ptr = nullptr;  // [rows + 1]; null when n_outliers == 0
  const uint16_t* outlier_cols = nullptr;     // [n_outliers]
  const uint16_t* outlier_values = nullptr;   // [n_outliers] FP16

  std::shared_ptr<const void> owner;  // keeps every pointer above alive
  // Set when `data` is a view of this read-only file mapping: a backend that copied
  // the weight into its own layout, or reads it sparsely, calls release_data_pages()
  // so the file's copy stops counting towards the process's memory (the view stays
  // valid: pages are read back from the file when touched again).
  std::shared_ptr<const MappedFile> mapped;

  int64_t group_size() const { return group > 0 ? group : cols; }
  int64_t n_groups() const { return group > 0 ? cols / group : 1; }
  int64_t row_bytes() const;  // bytes of one stored row of data
  const uint8_t* row_data(int64_t r) const { return static_cast<const uint8_t*>(data) + r * row_bytes(); }
  int32_t zero_point(int64_t r, int64_t g) const {
    return symmetric ? (1 << (bits - 1)) : static_cast<int32_t>(zeros[r * n_groups() + g]);
  }
  // Bytes of weight data a product reads (codes or values, plus scales and zeros;
  // for kCodebook: col_bits + centroids + index stream with its padding + outliers).
  int64_t stored_bytes() const;
  // stored_bytes() * 8 / (rows * cols): bits per weight, everything included.
  double effective_bits() const;

  // Throws Error("<what>: ...") on a shape, bit width, group, scale, zero point or
  // code that the formula above cannot use. Checks every value (O(rows * cols)).
  void validate(const std::string& what) const;

  // Drops the resident pages of `data` when it lies in `mapped` (MappedFile::release);
  // no effect otherwise.
  void release_data_pages() const;

  // Rows [r0, r0 + n) as FP32 into out[n, cols] (the exact values the formula gives).
  void dequantize_rows(int64_t r0, int64_t n, float* out) const;
  std::vector<float> dequantize() const;  // all rows
};

int64_t packed_row_bytes(int64_t cols, int bits);  // (cols + 1) / 2 when bits <= 4, else cols

// ---- kCodebook ----
inline constexpr int64_t kCodebookStripeRows = 64;
inline constexpr int64_t kCodebookIndexPadBytes = 4;
inline constexpr int64_t kCodebookMaxCols = 65536;

// The value a centroid or outlier takes once encoded (FP16 round to nearest even,
// widened back). Quantizers that want their error estimate to match the stored
// weight should use it.
float codebook_round(float v);

// Where everything of a codebook weight lives, derived from (rows, cols, col_bits).
// Throws Error("<what>: ...") on a shape or a bit width outside 1..8.
struct CodebookLayout {
  int64_t rows = 0, cols = 0;
  std::array<int64_t, 9> width_count{};   // columns of each width b (index b, 1..8)
  std::array<int64_t, 10> width_start{};  // first position of width b; width_start[9] = cols
  std::array<int64_t, 10> slice_start{};  // slice_offset of width_start[b]
  std::array<int64_t, 10> centroid_start{};
  std::vector<int32_t> order;     // [cols] position -> column
  std::vector<int32_t> position;  // [cols] column -> position
  int64_t stripes = 0;            // ceil(rows / 64)
  int64_t stripe_bytes = 0;       // 8 * sum(b)
  int64_t index_bytes = 0;        // stripes * stripe_bytes + kCodebookIndexPadBytes
  int64_t centroid_count = 0;     // sum(2^b)

  CodebookLayout() = default;
  CodebookLayout(int64_t rows, int64_t cols, const uint8_t* col_bits, const std::string& what);
  int bits_at(int64_t k) const;  // width of position k
  int64_t slice_offset(int64_t k) const { return slice_start[bits_at(k)] + 8 * bits_at(k) * (k - width_start[bits_at(k)]); }
  int64_t centroid_offset(int64_t k) const {
    return centroid_start[bits_at(k)] + (int64_t{1} << bits_at(k)) * (k - width_start[bits_at(k)]);
  }
  // Index of (r, c) in the stream `indices` (c is an original column).
  int index_at(const uint8_t* indices, int64_t r, int64_t c) const;
};

struct CodebookOutlier {
  int32_t row = 0, col = 0;
  float value = 0.0f;
};

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

// A codebook encoding that owns its buffers, from the quantizer's natural form:
// col_bits [cols] in 1..8; centroids concatenated in column order (column c holds
// 2^col_bits[c] values, any order within the table, stored as codebook_round(v));
// indices [rows, cols] row-major, each < 2^col_bits[c]; outliers in any order, each
// (row, col) at most once, values stored as codebook_round(v). Throws Error on sizes,
// ranges, duplicates or non-finite values.
WeightEncoding make_codebook_weight(int64_t rows, int64_t cols, const std::vector<uint8_t>& col_bits,
                                    const std::vector<float>& centroids, const std::vector<uint8_t>& indices,
                                    std::vector<CodebookOutlier> outliers);

// A view of an already stored codebook encoding (e.g. in a mapped file); no copy, no
// check (call validate()).
WeightEncoding codebook_weight_view(int64_t rows, int64_t cols, const uint8_t* col_bits, const uint16_t* centroids,
                                    const uint8_t* indices, int64_t n_outliers, const uint32_t* outlier_row_ptr,
                                    const uint16_t* outlier_cols, const uint16_t* outlier_values,
                                    std::shared_ptr<const void> owner);

}  // namespace quarot
