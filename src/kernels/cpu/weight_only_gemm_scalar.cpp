// Reference kernels for weight_only_gemm: one weight at a time, in column order.
#include <cstdint>

#include "common/half.h"
#include "kernels/cpu/weight_only_gemm_kernels.h"

namespace quarot::weight_only_detail {
namespace {

// The same expression as WeightEncoding::dequantize_rows (the exactness contract).
float weight_at(const RowView& row, int64_t c) {
  if (row.f16) {
    uint16_t h;
    __builtin_memcpy(&h, row.data + 2 * c, 2);
    return fp16_to_fp32(h);
  }
  const int code = row.bits <= 4 ? (row.data[c / 2] >> ((c & 1) * 4)) & 0x0f : row.data[c];
  const int64_t g = c / row.group_size;
  const float zero = row.zeros != nullptr ? row.zeros[g] : static_cast<float>(row.sym_zero);
  return row.scales[g] * (static_cast<float>(code) - zero);
}

void dot_row(const RowView& row, const float* x, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = 0.0f;
  for (int64_t c = 0; c < row.cols; ++c) {
    const float w = weight_at(row, c);
    for (int64_t i = 0; i < n; ++i) out[i] += w * x[i * row.cols + c];
  }
}

void decode_row(const RowView& row, float* out) {
  for (int64_t c = 0; c < row.cols; ++c) out[c] = weight_at(row, c);
}

void rows1(const RowView& first, int64_t row_stride, int64_t rows, const float* x, float* out) {
  const int64_t groups = first.f16 ? 1 : first.cols / first.group_size;
  for (int64_t j = 0; j < rows; ++j) {
    RowView row = first;
    row.data = first.data + j * row_stride;
    if (!first.f16) {
      row.scales = first.scales + j * groups;
      if (first.zeros != nullptr) row.zeros = first.zeros + j * groups;
    }
    dot_row(row, x, 1, out + j);
  }
}

}  // namespace

const WeightOnlyKernels& weight_only_kernels_scalar() {
  static const WeightOnlyKernels k{dot_row, decode_row, rows1};
  return k;
}

}  // namespace quarot::weight_only_detail
