#include "quant/codebook_matrix.h"

#include <cmath>

#include "common/error.h"

namespace quarot {

CodebookBits& CodebookBits::operator+=(const CodebookBits& o) {
  weights += o.weights;
  index_width += o.index_width;
  index += o.index;
  codebook += o.codebook;
  outlier += o.outlier;
  outliers += o.outliers;
  return *this;
}

std::vector<int64_t> CodebookMatrix::offsets() const {
  std::vector<int64_t> off(static_cast<size_t>(cols) + 1, 0);
  for (int64_t c = 0; c < cols; ++c) off[c + 1] = off[c] + (int64_t{1} << col_bits[c]);
  return off;
}

Tensor CodebookMatrix::dequantize() const {
  const std::vector<int64_t> off = offsets();
  Tensor t({rows, cols});
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) t.at(r, c) = centroids[off[c] + indices[r * cols + c]];
  for (const CodebookOutlier& o : outliers) t.at(o.row, o.col) = o.value;
  return t;
}

WeightEncoding CodebookMatrix::encode() const {
  return make_codebook_weight(rows, cols, col_bits, centroids, indices, outliers);
}

CodebookBits CodebookMatrix::storage_bits() const {
  const CodebookLayout layout(rows, cols, col_bits.data(), "codebook matrix");
  CodebookBits b;
  b.weights = rows * cols;
  for (int64_t c = 0; c < cols; ++c) b.index_width += static_cast<double>(rows) * col_bits[c];
  b.index = 8.0 * static_cast<double>(layout.index_bytes);
  b.codebook = 16.0 * static_cast<double>(layout.centroid_count) + 8.0 * static_cast<double>(cols);
  b.outliers = static_cast<int64_t>(outliers.size());
  if (b.outliers > 0) b.outlier = 32.0 * static_cast<double>(rows + 1) + 32.0 * static_cast<double>(b.outliers);
  return b;
}

void CodebookMatrix::validate(const std::string& name) const {
  if (rows <= 0 || cols <= 0) fail("{}: codebook matrix of shape [{}, {}]", name, rows, cols);
  if (static_cast<int64_t>(col_bits.size()) != cols)
    fail("{}: {} column widths for {} columns", name, col_bits.size(), cols);
  for (int64_t c = 0; c < cols; ++c)
    if (col_bits[c] < 1 || col_bits[c] > 8) fail("{}: column {} has width {} (valid: 1..8)", name, c, col_bits[c]);
  const std::vector<int64_t> off = offsets();
  if (static_cast<int64_t>(centroids.size()) != off[cols])
    fail("{}: {} centroids, the column widths need {}", name, centroids.size(), off[cols]);
  for (float v : centroids)
    if (!std::isfinite(v)) fail("{}: a centroid is not finite", name);
  if (static_cast<int64_t>(indices.size()) != rows * cols)
    fail("{}: {} indices for a [{}, {}] matrix", name, indices.size(), rows, cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      if (indices[r * cols + c] >= (1 << col_bits[c]))
        fail("{}: index {} at ({}, {}) is outside its {}-bit codebook", name, indices[r * cols + c], r, c, col_bits[c]);
  for (size_t i = 0; i < outliers.size(); ++i) {
    const CodebookOutlier& o = outliers[i];
    if (o.row < 0 || o.row >= rows || o.col < 0 || o.col >= cols)
      fail("{}: outlier at ({}, {}) is outside the [{}, {}] matrix", name, o.row, o.col, rows, cols);
    if (!std::isfinite(o.value)) fail("{}: outlier at ({}, {}) is not finite", name, o.row, o.col);
    if (i > 0) {
      const CodebookOutlier& p = outliers[i - 1];
      if (p.row > o.row || (p.row == o.row && p.col >= o.col))
        fail("{}: outliers are not sorted by position, or repeat one", name);
    }
  }
}

}  // namespace quarot
