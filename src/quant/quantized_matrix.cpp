#include "quant/quantized_matrix.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace quarot {

Tensor QuantizedMatrix::dequantize() const {
  Tensor out({rows, cols});
  const int64_t gs = group_size(), ng = n_groups();
  const float sym_zero = static_cast<float>(1 << (bits - 1));
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < ng; ++g) {
      const QuantParams p{scales[r * ng + g], symmetric ? sym_zero : zeros[r * ng + g]};
      const uint8_t* c = codes.data() + r * cols + g * gs;
      float* o = out.data.data() + r * cols + g * gs;
      for (int64_t i = 0; i < gs; ++i) o[i] = dequantize_code(static_cast<float>(c[i]), p);
    }
  }
  return out;
}

WeightEncoding QuantizedMatrix::encode() const {
  return make_int_grid_weight(bits, symmetric, group, rows, cols, codes, scales, zeros);
}

QuantizedMatrix QuantizedMatrix::from_encoding(const WeightEncoding& e) {
  QUAROT_CHECK(e.kind == WeightKind::kIntGrid, "not an integer-grid weight ({})", weight_kind_name(e.kind));
  QuantizedMatrix q;
  q.bits = e.bits;
  q.symmetric = e.symmetric;
  q.group = e.group;
  q.rows = e.rows;
  q.cols = e.cols;
  q.codes.resize(static_cast<size_t>(e.rows * e.cols));
  for (int64_t r = 0; r < e.rows; ++r) {
    const uint8_t* p = e.row_data(r);
    for (int64_t c = 0; c < e.cols; ++c)
      q.codes[r * e.cols + c] = e.bits <= 4 ? (p[c / 2] >> ((c & 1) * 4)) & 0x0f : p[c];
  }
  const int64_t np = e.rows * e.n_groups();
  q.scales.assign(e.scales, e.scales + np);
  if (!e.symmetric) q.zeros.assign(e.zeros, e.zeros + np);
  return q;
}

void QuantizedMatrix::validate(const std::string& source, const std::string& name) const {
  if (!((bits >= 2 && bits <= 8))) fail("{}: {}: {} bits is out of range (2..8)", source, name, bits);
  if (rows <= 0 || cols <= 0) fail("{}: {}: empty shape [{}, {}]", source, name, rows, cols);
  if (group < 0 || (group > 0 && cols % group != 0))
    fail("{}: {}: group {} does not divide {} columns", source, name, group, cols);
  const int64_t n_params = rows * n_groups();
  if (static_cast<int64_t>(codes.size()) != rows * cols)
    fail("{}: {}: holds {} codes, expected {} ({} x {})", source, name, codes.size(), rows * cols, rows, cols);
  if (static_cast<int64_t>(scales.size()) != n_params)
    fail("{}: {}: holds {} scales, expected {}", source, name, scales.size(), n_params);
  if (static_cast<int64_t>(zeros.size()) != (symmetric ? 0 : n_params))
    fail("{}: {}: holds {} zero points, expected {}", source, name, zeros.size(), symmetric ? 0 : n_params);
  const int top = max_code(bits);
  for (size_t i = 0; i < codes.size(); ++i)
    if (codes[i] > top) fail("{}: {}: code {} at index {} exceeds the {}-bit range", source, name, codes[i], i, bits);
  for (size_t i = 0; i < scales.size(); ++i)
    if (!std::isfinite(scales[i]) || !(scales[i] > 0.0f))
      fail("{}: {}: scale {} at index {} is not a positive finite number", source, name, scales[i], i);
  for (size_t i = 0; i < zeros.size(); ++i)
    if (!(zeros[i] >= 0.0f && zeros[i] <= static_cast<float>(top)) || zeros[i] != std::nearbyint(zeros[i]))
      fail("{}: {}: zero point {} at index {} is not an integer in [0, {}]", source, name, zeros[i], i, top);
}

int64_t packed_size(int64_t n_codes, int bits) { return packed_row_size(n_codes, bits, legacy_packing(bits)); }

std::vector<uint8_t> pack_codes(const std::vector<uint8_t>& codes, int bits) {
  if (bits > 4) return codes;
  const int64_t n = static_cast<int64_t>(codes.size());
  std::vector<uint8_t> packed(packed_size(n, bits), 0);
  for (int64_t i = 0; i < n; ++i) packed[i / 2] |= static_cast<uint8_t>((codes[i] & 0x0f) << ((i & 1) * 4));
  return packed;
}

std::vector<uint8_t> unpack_codes(const uint8_t* packed, int64_t packed_bytes, int64_t n_codes, int bits,
                                  const std::string& what) {
  if (packed_bytes != packed_size(n_codes, bits))
    fail("{}: packed data holds {} bytes, expected {} for {} {}-bit codes", what, packed_bytes,
         packed_size(n_codes, bits), n_codes, bits);
  if (bits > 4) return std::vector<uint8_t>(packed, packed + n_codes);
  std::vector<uint8_t> codes(n_codes);
  for (int64_t i = 0; i < n_codes; ++i) codes[i] = (packed[i / 2] >> ((i & 1) * 4)) & 0x0f;
  return codes;
}

const char* code_packing_name(CodePacking p) {
  switch (p) {
    case CodePacking::kNibbles: return "nibbles-low-first";
    case CodePacking::kBytes: return "bytes";
    case CodePacking::kBits: return "bits-low-first";
  }
  return "?";
}

CodePacking legacy_packing(int bits) { return bits <= 4 ? CodePacking::kNibbles : CodePacking::kBytes; }

CodePacking file_packing(int bits) { return bits < 4 ? CodePacking::kBits : legacy_packing(bits); }

int64_t packed_row_size(int64_t n_codes, int bits, CodePacking p) {
  switch (p) {
    case CodePacking::kNibbles: return (n_codes + 1) / 2;
    case CodePacking::kBytes: return n_codes;
    case CodePacking::kBits: return (n_codes * bits + 7) / 8;
  }
  return 0;
}

std::vector<uint8_t> pack_codes_dense(const uint8_t* codes, int64_t n_codes, int bits) {
  std::vector<uint8_t> out(static_cast<size_t>(packed_row_size(n_codes, bits, CodePacking::kBits)), 0);
  const uint32_t mask = (1u << bits) - 1;
  for (int64_t i = 0; i < n_codes; ++i) {
    const int64_t bit = i * bits;
    const uint32_t v = (codes[i] & mask) << (bit % 8);
    out[bit / 8] |= static_cast<uint8_t>(v);
    if ((bit % 8) + bits > 8) out[bit / 8 + 1] |= static_cast<uint8_t>(v >> 8);
  }
  return out;
}

void expand_dense_row(const uint8_t* packed, int64_t n_codes, int bits, uint8_t* out) {
  const uint32_t mask = (1u << bits) - 1;
  const int64_t bytes = packed_row_size(n_codes, bits, CodePacking::kBits);
  std::fill(out, out + (n_codes + 1) / 2, uint8_t{0});
  for (int64_t i = 0; i < n_codes; ++i) {
    const int64_t bit = i * bits;
    uint32_t v = packed[bit / 8];
    if (bit / 8 + 1 < bytes) v |= static_cast<uint32_t>(packed[bit / 8 + 1]) << 8;
    out[i / 2] |= static_cast<uint8_t>(((v >> (bit % 8)) & mask) << ((i & 1) * 4));
  }
}

}  // namespace quarot
