#include "kernels/weight_encoding.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "common/error.h"
#include "common/half.h"
#include "common/mapped_file.h"

namespace quarot {

const char* weight_kind_name(WeightKind k) {
  switch (k) {
    case WeightKind::kF32: return "f32";
    case WeightKind::kF16: return "f16";
    case WeightKind::kIntGrid: return "int";
    case WeightKind::kCodebook: return "codebook";
  }
  return "?";
}

int64_t packed_row_bytes(int64_t cols, int bits) { return bits <= 4 ? (cols + 1) / 2 : cols; }

int64_t WeightEncoding::row_bytes() const {
  switch (kind) {
    case WeightKind::kF32: return cols * 4;
    case WeightKind::kF16: return cols * 2;
    case WeightKind::kIntGrid: return packed_row_bytes(cols, bits);
    case WeightKind::kCodebook: fail("codebook weight: rows are not stored contiguously (see CodebookLayout)");
  }
  return 0;
}

int64_t WeightEncoding::stored_bytes() const {
  if (kind == WeightKind::kCodebook) {
    const CodebookLayout l(rows, cols, col_bits, "codebook weight");
    int64_t b = cols + 2 * l.centroid_count + l.index_bytes;
    if (n_outliers > 0) b += 4 * (rows + 1) + 4 * n_outliers;
    return b;
  }
  int64_t b = rows * row_bytes();
  if (kind == WeightKind::kIntGrid) b += rows * n_groups() * 4 * (symmetric ? 1 : 2);
  return b;
}

void WeightEncoding::release_data_pages() const {
  // Codebook indices are striped, not rows; only row-stored kinds are released.
  if (mapped == nullptr || data == nullptr || kind == WeightKind::kCodebook) return;
  mapped->release(data, static_cast<size_t>(rows * row_bytes()));
}

double WeightEncoding::effective_bits() const {
  return static_cast<double>(stored_bytes()) * 8.0 / (static_cast<double>(rows) * static_cast<double>(cols));
}

namespace {

bool finite_half(uint16_t h) { return (h & 0x7c00u) != 0x7c00u; }

void validate_codebook(const WeightEncoding& w, const std::string& what) {
  if (w.cols > kCodebookMaxCols) fail("{}: {} columns exceed the codebook limit of {}", what, w.cols, kCodebookMaxCols);
  if (w.col_bits == nullptr || w.centroids == nullptr) fail("{}: codebook weight lacks bit widths or centroids", what);
  const CodebookLayout l(w.rows, w.cols, w.col_bits, what);
  int widest = 0;
  for (int b = 1; b <= 8; ++b)
    if (l.width_count[b] > 0) widest = b;
  if (w.bits != widest) fail("{}: codebook weight says {} bits but its widest column has {}", what, w.bits, widest);
  for (int64_t i = 0; i < l.centroid_count; ++i)
    if (!finite_half(w.centroids[i])) fail("{}: centroid {} is not finite", what, i);
  if (w.n_outliers < 0) fail("{}: negative outlier count {}", what, w.n_outliers);
  if (w.n_outliers == 0) return;
  if (w.outlier_row_ptr == nullptr || w.outlier_cols == nullptr || w.outlier_values == nullptr)
    fail("{}: codebook weight has {} outliers but no outlier arrays", what, w.n_outliers);
  if (w.outlier_row_ptr[0] != 0 || w.outlier_row_ptr[w.rows] != static_cast<uint64_t>(w.n_outliers))
    fail("{}: outlier row pointers do not span the {} outliers", what, w.n_outliers);
  for (int64_t r = 0; r < w.rows; ++r)
    if (w.outlier_row_ptr[r + 1] < w.outlier_row_ptr[r])
      fail("{}: outlier row pointer of row {} is out of order", what, r);
  for (int64_t r = 0; r < w.rows; ++r) {
    const uint32_t a = w.outlier_row_ptr[r], e = w.outlier_row_ptr[r + 1];
    for (uint32_t i = a; i < e; ++i) {
      if (w.outlier_cols[i] >= w.cols) fail("{}: outlier {} column {} is out of range", what, i, w.outlier_cols[i]);
      if (i > a && w.outlier_cols[i] <= w.outlier_cols[i - 1])
        fail("{}: outlier columns of row {} are not strictly increasing", what, r);
      if (!finite_half(w.outlier_values[i])) fail("{}: outlier {} value is not finite", what, i);
    }
  }
}

}  // namespace

void WeightEncoding::validate(const std::string& what) const {
  if (rows <= 0 || cols <= 0) fail("{}: empty weight shape [{}, {}]", what, rows, cols);
  if (data == nullptr) fail("{}: weight has no data", what);
  if (kind == WeightKind::kCodebook) return validate_codebook(*this, what);
  if (kind != WeightKind::kIntGrid) {
    std::vector<float> row(cols);
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_rows(r, 1, row.data());
      for (int64_t c = 0; c < cols; ++c)
        if (!std::isfinite(row[c])) fail("{}: weight holds a non-finite value at [{}, {}]", what, r, c);
    }
    return;
  }
  if (bits < 2 || bits > 8) fail("{}: {} bits is out of range (2..8)", what, bits);
  if (group < 0 || (group > 0 && cols % group != 0)) fail("{}: group {} does not divide {} columns", what, group, cols);
  if (scales == nullptr) fail("{}: integer weight has no scales", what);
  if (!symmetric && zeros == nullptr) fail("{}: asymmetric integer weight has no zero points", what);
  const int top = (1 << bits) - 1;
  const int64_t np = rows * n_groups();
  for (int64_t i = 0; i < np; ++i) {
    if (!std::isfinite(scales[i]) || !(scales[i] > 0.0f))
      fail("{}: scale {} at index {} is not a positive finite number", what, scales[i], i);
    if (!symmetric && (!(zeros[i] >= 0.0f && zeros[i] <= static_cast<float>(top)) || zeros[i] != std::nearbyint(zeros[i])))
      fail("{}: zero point {} at index {} is not an integer in [0, {}]", what, zeros[i], i, top);
  }
  if (bits == 4 || bits == 8) return;  // every nibble / byte is a valid code
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* p = row_data(r);
    for (int64_t c = 0; c < cols; ++c) {
      const int code = bits <= 4 ? (p[c / 2] >> ((c & 1) * 4)) & 0x0f : p[c];
      if (code > top) fail("{}: code {} at [{}, {}] exceeds the {}-bit range", what, code, r, c, bits);
    }
  }
}

void WeightEncoding::dequantize_rows(int64_t r0, int64_t n, float* out) const {
  if (kind == WeightKind::kCodebook) {
    const CodebookLayout l(rows, cols, col_bits, "codebook weight");
    const auto* idx = static_cast<const uint8_t*>(data);
    for (int64_t r = r0; r < r0 + n; ++r) {
      float* o = out + (r - r0) * cols;
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t k = l.position[c];
        o[c] = fp16_to_fp32(centroids[l.centroid_offset(k) + l.index_at(idx, r, c)]);
      }
      if (n_outliers > 0)
        for (uint32_t i = outlier_row_ptr[r]; i < outlier_row_ptr[r + 1]; ++i)
          o[outlier_cols[i]] = fp16_to_fp32(outlier_values[i]);
    }
    return;
  }
  for (int64_t r = r0; r < r0 + n; ++r) {
    float* o = out + (r - r0) * cols;
    switch (kind) {
      case WeightKind::kF32:
        std::memcpy(o, row_data(r), cols * sizeof(float));
        break;
      case WeightKind::kF16: {
        const auto* h = reinterpret_cast<const uint16_t*>(row_data(r));
        for (int64_t c = 0; c < cols; ++c) o[c] = fp16_to_fp32(h[c]);
        break;
      }
      case WeightKind::kCodebook: break;  // handled above
      case WeightKind::kIntGrid: {
        const uint8_t* p = row_data(r);
        const int64_t gs = group_size();
        for (int64_t c = 0; c < cols; ++c) {
          const int64_t g = c / gs;
          const int code = bits <= 4 ? (p[c / 2] >> ((c & 1) * 4)) & 0x0f : p[c];
          // The same expression as the quantizers' dequantize_code, so the FP32
          // reference backend sees exactly the simulated weights.
          o[c] = scales[r * n_groups() + g] * (static_cast<float>(code) - static_cast<float>(zero_point(r, g)));
        }
        break;
      }
    }
  }
}

std::vector<float> WeightEncoding::dequantize() const {
  std::vector<float> out(static_cast<size_t>(rows * cols));
  // Blocks of rows, so a codebook weight derives its layout once per block.
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (rows + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b)
    dequantize_rows(b * kBlock, std::min(kBlock, rows - b * kBlock), out.data() + b * kBlock * cols);
  return out;
}

WeightEncoding f32_weight(const float* data, int64_t rows, int64_t cols, std::shared_ptr<const void> owner) {
  WeightEncoding e;
  e.kind = WeightKind::kF32;
  e.rows = rows;
  e.cols = cols;
  e.data = data;
  e.owner = std::move(owner);
  return e;
}

WeightEncoding f16_weight(const uint16_t* data, int64_t rows, int64_t cols, std::shared_ptr<const void> owner) {
  WeightEncoding e = f32_weight(nullptr, rows, cols, std::move(owner));
  e.kind = WeightKind::kF16;
  e.data = data;
  return e;
}

namespace {
struct IntGridBuffers {
  std::vector<uint8_t> packed;
  std::vector<float> scales, zeros;
};
}  // namespace

WeightEncoding make_int_grid_weight(int bits, bool symmetric, int64_t group, int64_t rows, int64_t cols,
                                    const std::vector<uint8_t>& codes, std::vector<float> scales,
                                    std::vector<float> zeros) {
  QUAROT_CHECK(static_cast<int64_t>(codes.size()) == rows * cols, "int weight: {} codes for a {}x{} matrix",
               codes.size(), rows, cols);
  auto buf = std::make_shared<IntGridBuffers>();
  const int64_t rb = packed_row_bytes(cols, bits);
  buf->packed.assign(static_cast<size_t>(rows * rb), 0);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* dst = buf->packed.data() + r * rb;
    const uint8_t* src = codes.data() + r * cols;
    if (bits > 4) {
      std::memcpy(dst, src, cols);
    } else {
      for (int64_t c = 0; c < cols; ++c) dst[c / 2] |= static_cast<uint8_t>((src[c] & 0x0f) << ((c & 1) * 4));
    }
  }
  buf->scales = std::move(scales);
  buf->zeros = std::move(zeros);
  WeightEncoding e;
  e.kind = WeightKind::kIntGrid;
  e.rows = rows;
  e.cols = cols;
  e.bits = bits;
  e.symmetric = symmetric;
  e.group = group;
  e.data = buf->packed.data();
  e.scales = buf->scales.data();
  e.zeros = symmetric ? nullptr : buf->zeros.data();
  e.owner = buf;
  return e;
}

float codebook_round(float v) { return fp16_to_fp32(fp32_to_fp16(v)); }

CodebookLayout::CodebookLayout(int64_t rows_, int64_t cols_, const uint8_t* col_bits, const std::string& what)
    : rows(rows_), cols(cols_) {
  if (rows <= 0 || cols <= 0) fail("{}: empty weight shape [{}, {}]", what, rows, cols);
  if (col_bits == nullptr) fail("{}: codebook weight lacks bit widths", what);
  for (int64_t c = 0; c < cols; ++c) {
    if (col_bits[c] < 1 || col_bits[c] > 8) fail("{}: column {} has {} bits, outside 1..8", what, c, col_bits[c]);
    ++width_count[col_bits[c]];
  }
  width_start[1] = 0;
  for (int b = 1; b <= 8; ++b) {
    width_start[b + 1] = width_start[b] + width_count[b];
    slice_start[b + 1] = slice_start[b] + 8 * b * width_count[b];
    centroid_start[b + 1] = centroid_start[b] + (int64_t{1} << b) * width_count[b];
  }
  stripe_bytes = slice_start[9];
  centroid_count = centroid_start[9];
  stripes = (rows + kCodebookStripeRows - 1) / kCodebookStripeRows;
  index_bytes = stripes * stripe_bytes + kCodebookIndexPadBytes;
  order.resize(cols);
  position.resize(cols);
  std::array<int64_t, 10> next = width_start;
  for (int64_t c = 0; c < cols; ++c) {
    const int64_t k = next[col_bits[c]]++;
    order[k] = static_cast<int32_t>(c);
    position[c] = static_cast<int32_t>(k);
  }
}

int CodebookLayout::bits_at(int64_t k) const {
  int b = 1;
  while (k >= width_start[b + 1]) ++b;
  return b;
}

int CodebookLayout::index_at(const uint8_t* indices, int64_t r, int64_t c) const {
  const int64_t k = position[c];
  const int b = bits_at(k);
  const int64_t bit = (r % kCodebookStripeRows) * b;
  const uint8_t* p = indices + (r / kCodebookStripeRows) * stripe_bytes + slice_offset(k) + bit / 8;
  const unsigned v = p[0] | (static_cast<unsigned>(p[1]) << 8);  // p[1] exists: the stream is padded
  return static_cast<int>((v >> (bit % 8)) & ((1u << b) - 1));
}

namespace {
struct CodebookBuffers {
  std::vector<uint8_t> col_bits;
  std::vector<uint16_t> centroids;
  std::vector<uint8_t> indices;
  std::vector<uint32_t> row_ptr;
  std::vector<uint16_t> outlier_cols, outlier_values;
};
}  // namespace

WeightEncoding make_codebook_weight(int64_t rows, int64_t cols, const std::vector<uint8_t>& col_bits,
                                    const std::vector<float>& centroids, const std::vector<uint8_t>& indices,
                                    std::vector<CodebookOutlier> outliers) {
  const std::string what = "codebook weight";
  if (rows <= 0 || cols <= 0) fail("{}: empty weight shape [{}, {}]", what, rows, cols);
  if (cols > kCodebookMaxCols) fail("{}: {} columns exceed the limit of {}", what, cols, kCodebookMaxCols);
  if (static_cast<int64_t>(col_bits.size()) != cols)
    fail("{}: {} bit widths for {} columns", what, col_bits.size(), cols);
  if (static_cast<int64_t>(indices.size()) != rows * cols)
    fail("{}: {} indices for a {}x{} matrix", what, indices.size(), rows, cols);
  const CodebookLayout l(rows, cols, col_bits.data(), what);
  if (static_cast<int64_t>(centroids.size()) != l.centroid_count)
    fail("{}: {} centroids given, the bit widths need {}", what, centroids.size(), l.centroid_count);
  auto buf = std::make_shared<CodebookBuffers>();
  buf->col_bits = col_bits;
  // Centroids: column order in, width-grouped order stored.
  std::vector<int64_t> src_off(cols + 1, 0);
  for (int64_t c = 0; c < cols; ++c) src_off[c + 1] = src_off[c] + (int64_t{1} << col_bits[c]);
  buf->centroids.resize(l.centroid_count);
  for (int64_t c = 0; c < cols; ++c) {
    const int64_t dst = l.centroid_offset(l.position[c]);
    for (int64_t i = 0; i < (int64_t{1} << col_bits[c]); ++i) {
      const float v = centroids[src_off[c] + i];
      if (!std::isfinite(v)) fail("{}: centroid {} of column {} is not finite", what, i, c);
      const uint16_t h = fp32_to_fp16(v);
      if (!finite_half(h)) fail("{}: centroid {} of column {} ({}) overflows FP16", what, i, c, v);
      buf->centroids[dst + i] = h;
    }
  }
  buf->indices.assign(l.index_bytes, 0);
  for (int64_t c = 0; c < cols; ++c) {
    const int b = col_bits[c];
    const int64_t slice = l.slice_offset(l.position[c]);
    for (int64_t r = 0; r < rows; ++r) {
      const unsigned v = indices[r * cols + c];
      if (v >> b) fail("{}: index {} at [{}, {}] exceeds the column's {} bits", what, v, r, c, b);
      const int64_t bit = (r % kCodebookStripeRows) * b;
      uint8_t* p = buf->indices.data() + (r / kCodebookStripeRows) * l.stripe_bytes + slice + bit / 8;
      const unsigned shifted = v << (bit % 8);
      p[0] |= static_cast<uint8_t>(shifted);
      if (shifted >> 8) p[1] |= static_cast<uint8_t>(shifted >> 8);
    }
  }
  std::sort(outliers.begin(), outliers.end(),
            [](const CodebookOutlier& a, const CodebookOutlier& b) { return a.row != b.row ? a.row < b.row : a.col < b.col; });
  if (!outliers.empty()) {
    buf->row_ptr.assign(rows + 1, 0);
    for (size_t i = 0; i < outliers.size(); ++i) {
      const CodebookOutlier& o = outliers[i];
      if (o.row < 0 || o.row >= rows || o.col < 0 || o.col >= cols)
        fail("{}: outlier at [{}, {}] is outside the {}x{} matrix", what, o.row, o.col, rows, cols);
      if (i > 0 && o.row == outliers[i - 1].row && o.col == outliers[i - 1].col)
        fail("{}: two outliers at [{}, {}]", what, o.row, o.col);
      if (!std::isfinite(o.value)) fail("{}: outlier at [{}, {}] is not finite", what, o.row, o.col);
      const uint16_t h = fp32_to_fp16(o.value);
      if (!finite_half(h)) fail("{}: outlier at [{}, {}] ({}) overflows FP16", what, o.row, o.col, o.value);
      ++buf->row_ptr[o.row + 1];
      buf->outlier_cols.push_back(static_cast<uint16_t>(o.col));
      buf->outlier_values.push_back(h);
    }
    for (int64_t r = 0; r < rows; ++r) buf->row_ptr[r + 1] += buf->row_ptr[r];
  }
  WeightEncoding e = codebook_weight_view(
      rows, cols, buf->col_bits.data(), buf->centroids.data(), buf->indices.data(),
      static_cast<int64_t>(outliers.size()), outliers.empty() ? nullptr : buf->row_ptr.data(),
      outliers.empty() ? nullptr : buf->outlier_cols.data(), outliers.empty() ? nullptr : buf->outlier_values.data(),
      buf);
  return e;
}

WeightEncoding codebook_weight_view(int64_t rows, int64_t cols, const uint8_t* col_bits, const uint16_t* centroids,
                                    const uint8_t* indices, int64_t n_outliers, const uint32_t* outlier_row_ptr,
                                    const uint16_t* outlier_cols, const uint16_t* outlier_values,
                                    std::shared_ptr<const void> owner) {
  WeightEncoding e;
  e.kind = WeightKind::kCodebook;
  e.rows = rows;
  e.cols = cols;
  e.data = indices;
  e.col_bits = col_bits;
  if (col_bits != nullptr)
    for (int64_t c = 0; c < cols; ++c) e.bits = std::max<int>(e.bits, col_bits[c]);
  e.centroids = centroids;
  e.n_outliers = n_outliers;
  e.outlier_row_ptr = outlier_row_ptr;
  e.outlier_cols = outlier_cols;
  e.outlier_values = outlier_values;
  e.owner = std::move(owner);
  return e;
}

}  // namespace quarot
