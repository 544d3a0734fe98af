#pragma once
// A random CLAQ codebook weight in the quantizer's natural form (per-column tables in
// column order, row-major indices, outliers), and the naive formula it encodes, for
// the encoding, kernel and file tests.
#include <cstdint>
#include <vector>

#include "common/rng.h"
#include "kernels/weight_encoding.h"

namespace quarot::test {

struct CodebookCase {
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> col_bits;
  std::vector<float> centroids;  // column order, 2^b per column
  std::vector<uint8_t> indices;  // [rows, cols]
  std::vector<CodebookOutlier> outliers;

  WeightEncoding encode() const { return make_codebook_weight(rows, cols, col_bits, centroids, indices, outliers); }

  // w[r, c] by the contract's formula, written independently of CodebookLayout.
  std::vector<float> naive() const {
    std::vector<int64_t> off(cols + 1, 0);
    for (int64_t c = 0; c < cols; ++c) off[c + 1] = off[c] + (int64_t{1} << col_bits[c]);
    std::vector<float> w(rows * cols);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) w[r * cols + c] = codebook_round(centroids[off[c] + indices[r * cols + c]]);
    for (const auto& o : outliers) w[o.row * cols + o.col] = codebook_round(o.value);
    return w;
  }
};

// Widths drawn from `widths`; one column (if cols > 2) is constant (all its centroids
// equal); outliers at the four corners plus ~outlier_frac of random positions.
inline CodebookCase random_codebook(int64_t rows, int64_t cols, const std::vector<int>& widths, uint64_t seed,
                                    double outlier_frac = 0.01) {
  Rng rng(seed);
  CodebookCase cc;
  cc.rows = rows;
  cc.cols = cols;
  for (int64_t c = 0; c < cols; ++c) cc.col_bits.push_back(static_cast<uint8_t>(widths[rng.below(widths.size())]));
  const int64_t constant_col = cols > 2 ? cols / 2 : -1;
  for (int64_t c = 0; c < cols; ++c) {
    const double scale = 0.05 * (1.0 + 4.0 * rng.uniform());
    const float same = static_cast<float>(scale * (rng.uniform() - 0.5));
    for (int i = 0; i < (1 << cc.col_bits[c]); ++i)
      cc.centroids.push_back(c == constant_col ? same : static_cast<float>(scale * (2.0 * rng.uniform() - 1.0)));
  }
  cc.indices.resize(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      cc.indices[r * cols + c] = static_cast<uint8_t>(rng.below(uint64_t{1} << cc.col_bits[c]));
  if (outlier_frac > 0.0) {
    std::vector<char> taken(rows * cols, 0);
    auto add = [&](int64_t r, int64_t c) {
      if (taken[r * cols + c]) return;
      taken[r * cols + c] = 1;
      cc.outliers.push_back({static_cast<int32_t>(r), static_cast<int32_t>(c),
                             static_cast<float>((rng.uniform() < 0.5 ? -1.0 : 1.0) * (0.5 + rng.uniform()))});
    };
    add(0, 0);
    add(0, cols - 1);
    add(rows - 1, 0);
    add(rows - 1, cols - 1);
    const int64_t extra = static_cast<int64_t>(outlier_frac * rows * cols);
    for (int64_t i = 0; i < extra; ++i) add(rng.below(rows), rng.below(cols));
  }
  return cc;
}

}  // namespace quarot::test
