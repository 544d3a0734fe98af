// Reference GEMM: plain loops over the row-major weight. Four partial sums per dot
// product break the add dependency chain; otherwise nothing clever, so it serves
// as the baseline every SIMD path is checked against.
#include <cstdint>

#include "kernels/cpu/gemm_kernels.h"

namespace quarot::gemm_detail {

void gemm_scalar(const float* w, int64_t out, int64_t in, const float* x, int64_t n, const float* bias, float* y) {
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t o = 0; o < out; ++o) {
      const float* xr = x + i * in;
      const float* wr = w + o * in;
      float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
      int64_t k = 0;
      for (; k + 4 <= in; k += 4) {
        s0 += xr[k] * wr[k];
        s1 += xr[k + 1] * wr[k + 1];
        s2 += xr[k + 2] * wr[k + 2];
        s3 += xr[k + 3] * wr[k + 3];
      }
      for (; k < in; ++k) s0 += xr[k] * wr[k];
      float s = (s0 + s1) + (s2 + s3);
      if (bias != nullptr) s += bias[o];
      y[i * out + o] = s;
    }
  }
}

}  // namespace quarot::gemm_detail
