#pragma once
// A weight matrix stored as per-column codebooks (CLAQ, quant/claq.h): every input
// column c has its own codebook of 2^col_bits[c] FP16 values, every weight an index
// into its column's codebook, and a sparse list of outliers kept exactly (FP16) at
// their positions, replacing the codebook value there.
//   w'[r, c] = outlier value at (r, c) if listed, else centroids[offset(c) + indices[r * cols + c]]
// The fields are those of the codebook weight encoding (kernels/weight_encoding.h,
// make_codebook_weight). Centroids and outlier values hold FP16-representable floats.
#include <cstdint>
#include <string>
#include <vector>

#include "common/tensor.h"
#include "kernels/weight_encoding.h"

namespace quarot {

// Storage cost, in bits, of one codebook matrix (or a sum of them), as the file
// stores it (docs/file-format.md, kind "codebook").
struct CodebookBits {
  int64_t weights = 0;    // rows * cols
  double index_width = 0; // col_bits[c] per weight: what a bit budget controls
  double index = 0;       // the packed index stream: col_bits[c] per weight, stripe padding, end padding
  double codebook = 0;    // 16 per centroid, plus each column's 8-bit width
  double outlier = 0;     // per outlier its 16-bit column and 16-bit value; 32-bit CSR row pointers
  int64_t outliers = 0;   // how many
  CodebookBits& operator+=(const CodebookBits& o);
  double total() const { return index + codebook + outlier; }
  double index_width_per_weight() const { return weights > 0 ? index_width / static_cast<double>(weights) : 0.0; }
  double index_per_weight() const { return weights > 0 ? index / static_cast<double>(weights) : 0.0; }
  double effective_per_weight() const { return weights > 0 ? total() / static_cast<double>(weights) : 0.0; }
};

struct CodebookMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> col_bits;            // [cols], each 1..8
  std::vector<float> centroids;             // per column 2^col_bits[c] values, concatenated
  std::vector<uint8_t> indices;             // [rows, cols] row-major
  std::vector<CodebookOutlier> outliers;  // sorted by (row, col), no duplicates

  // Start of column c's codebook in `centroids` (O(cols); use offsets() in loops).
  std::vector<int64_t> offsets() const;
  Tensor dequantize() const;  // [rows, cols] FP32
  // The self-owning packed encoding a backend runs and the file stores.
  WeightEncoding encode() const;
  CodebookBits storage_bits() const;
  // Throws Error("<name>: ...") on inconsistent sizes, widths, indices, outlier positions
  // or non-finite values.
  void validate(const std::string& name) const;
};

}  // namespace quarot
