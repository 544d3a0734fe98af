#include "kernels/weight_encoding.h"

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "common/half.h"

namespace quarot {

const char* weight_kind_name(WeightKind k) {
  switch (k) {
    case WeightKind::kF32: return "f32";
    case WeightKind::kF16: return "f16";
    case WeightKind::kIntGrid: return "int";
  }
  return "?";
}

int64_t packed_row_bytes(int64_t cols, int bits) { return bits <= 4 ? (cols + 1) / 2 : cols; }

int64_t WeightEncoding::row_bytes() const {
  switch (kind) {
    case WeightKind::kF32: return cols * 4;
    case WeightKind::kF16: return cols * 2;
    case WeightKind::kIntGrid: return packed_row_bytes(cols, bits);
  }
  return 0;
}

int64_t WeightEncoding::stored_bytes() const {
  int64_t b = rows * row_bytes();
  if (kind == WeightKind::kIntGrid) b += rows * n_groups() * 4 * (symmetric ? 1 : 2);
  return b;
}

void WeightEncoding::validate(const std::string& what) const {
  if (rows <= 0 || cols <= 0) fail("{}: empty weight shape [{}, {}]", what, rows, cols);
  if (data == nullptr) fail("{}: weight has no data", what);
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
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) dequantize_rows(r, 1, out.data() + r * cols);
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

}  // namespace quarot
