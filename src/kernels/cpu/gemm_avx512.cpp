// AVX-512 GEMM kernels: an 8 x 32 register tile (16 zmm accumulators, 2 for the
// weight row, 1 broadcast, out of 32 registers: enough independent FMAs to cover
// 2 FMA ports x 4 cycles latency), and a GEMV panel kernel with 8 accumulators.
// Internal linkage everywhere but the table (see gemm_avx2.cpp for why).
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/gemm_kernels.h"

namespace quarot::gemm_detail {
namespace {

constexpr int kRows = 8;
constexpr int kWidth = 32;

template <int M>
void tile_rows(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc, bool accumulate,
               const float* bias) {
  __m512 lo[M], hi[M];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
    lo[i] = _mm512_setzero_ps();
    hi[i] = _mm512_setzero_ps();
  }
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b_lo = _mm512_load_ps(b + k * kWidth);
    const __m512 b_hi = _mm512_load_ps(b + k * kWidth + 16);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m512 av = _mm512_set1_ps(a[i * lda + k]);
      lo[i] = _mm512_fmadd_ps(av, b_lo, lo[i]);
      hi[i] = _mm512_fmadd_ps(av, b_hi, hi[i]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
    float* cr = c + i * ldc;
    if (accumulate) {
      lo[i] = _mm512_add_ps(_mm512_loadu_ps(cr), lo[i]);
      hi[i] = _mm512_add_ps(_mm512_loadu_ps(cr + 16), hi[i]);
    }
    if (bias != nullptr) {
      lo[i] = _mm512_add_ps(lo[i], _mm512_loadu_ps(bias));
      hi[i] = _mm512_add_ps(hi[i], _mm512_loadu_ps(bias + 16));
    }
    _mm512_storeu_ps(cr, lo[i]);
    _mm512_storeu_ps(cr + 16, hi[i]);
  }
}

void tile(int64_t m, const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc, bool accumulate,
          const float* bias) {
  switch (m) {
    case 8: return tile_rows<8>(a, lda, b, kc, c, ldc, accumulate, bias);
    case 7: return tile_rows<7>(a, lda, b, kc, c, ldc, accumulate, bias);
    case 6: return tile_rows<6>(a, lda, b, kc, c, ldc, accumulate, bias);
    case 5: return tile_rows<5>(a, lda, b, kc, c, ldc, accumulate, bias);
    case 4: return tile_rows<4>(a, lda, b, kc, c, ldc, accumulate, bias);
    case 3: return tile_rows<3>(a, lda, b, kc, c, ldc, accumulate, bias);
    case 2: return tile_rows<2>(a, lda, b, kc, c, ldc, accumulate, bias);
    default: return tile_rows<1>(a, lda, b, kc, c, ldc, accumulate, bias);
  }
}

void gemv_panel(const float* x, const float* panel, int64_t in, const float* bias, float* y) {
  __m512 acc[8];
  for (auto& v : acc) v = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 4 <= in; k += 4) {
    const float* p = panel + k * kWidth;
#pragma GCC unroll 4
    for (int u = 0; u < 4; ++u) {
      const __m512 xv = _mm512_set1_ps(x[k + u]);
      acc[2 * u] = _mm512_fmadd_ps(xv, _mm512_load_ps(p + u * kWidth), acc[2 * u]);
      acc[2 * u + 1] = _mm512_fmadd_ps(xv, _mm512_load_ps(p + u * kWidth + 16), acc[2 * u + 1]);
    }
  }
  for (; k < in; ++k) {
    const __m512 xv = _mm512_set1_ps(x[k]);
    acc[0] = _mm512_fmadd_ps(xv, _mm512_load_ps(panel + k * kWidth), acc[0]);
    acc[1] = _mm512_fmadd_ps(xv, _mm512_load_ps(panel + k * kWidth + 16), acc[1]);
  }
  __m512 lo = _mm512_add_ps(_mm512_add_ps(acc[0], acc[2]), _mm512_add_ps(acc[4], acc[6]));
  __m512 hi = _mm512_add_ps(_mm512_add_ps(acc[1], acc[3]), _mm512_add_ps(acc[5], acc[7]));
  if (bias != nullptr) {
    lo = _mm512_add_ps(lo, _mm512_loadu_ps(bias));
    hi = _mm512_add_ps(hi, _mm512_loadu_ps(bias + 16));
  }
  _mm512_storeu_ps(y, lo);
  _mm512_storeu_ps(y + 16, hi);
}

}  // namespace

const GemmKernels& gemm_kernels_avx512() {
  static const GemmKernels kernels{kRows, kWidth, &tile, &gemv_panel};
  return kernels;
}

}  // namespace quarot::gemm_detail
