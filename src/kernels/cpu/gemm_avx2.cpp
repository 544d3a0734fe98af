// AVX2 + FMA GEMM kernels: a 6 x 16 register tile (12 ymm accumulators, 2 for the
// weight row, 1 for the broadcast activation = 15 of 16 registers), and a GEMV
// panel kernel with 8 accumulators so FMA latency (4-5 cycles) never limits it.
// Everything here has internal linkage except the table: no inline function or
// template compiled with AVX2 flags may be shared with portable code (ODR).
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/gemm_kernels.h"

namespace quarot::gemm_detail {
namespace {

constexpr int kRows = 6;
constexpr int kWidth = 16;

template <int M>
void tile_rows(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc, bool accumulate,
               const float* bias) {
  __m256 lo[M], hi[M];
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
    lo[i] = _mm256_setzero_ps();
    hi[i] = _mm256_setzero_ps();
  }
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b_lo = _mm256_load_ps(b + k * kWidth);
    const __m256 b_hi = _mm256_load_ps(b + k * kWidth + 8);
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + i * lda + k);
      lo[i] = _mm256_fmadd_ps(av, b_lo, lo[i]);
      hi[i] = _mm256_fmadd_ps(av, b_hi, hi[i]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < M; ++i) {
    float* cr = c + i * ldc;
    if (accumulate) {
      lo[i] = _mm256_add_ps(_mm256_loadu_ps(cr), lo[i]);
      hi[i] = _mm256_add_ps(_mm256_loadu_ps(cr + 8), hi[i]);
    }
    if (bias != nullptr) {
      lo[i] = _mm256_add_ps(lo[i], _mm256_loadu_ps(bias));
      hi[i] = _mm256_add_ps(hi[i], _mm256_loadu_ps(bias + 8));
    }
    _mm256_storeu_ps(cr, lo[i]);
    _mm256_storeu_ps(cr + 8, hi[i]);
  }
}

void tile(int64_t m, const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc, bool accumulate,
          const float* bias) {
  switch (m) {
    case 6: return tile_rows<6>(a, lda, b, kc, c, ldc, accumulate, bias);
    case 5: return tile_rows<5>(a, lda, b, kc, c, ldc, accumulate, bias);
    case 4: return tile_rows<4>(a, lda, b, kc, c, ldc, accumulate, bias);
    case 3: return tile_rows<3>(a, lda, b, kc, c, ldc, accumulate, bias);
    case 2: return tile_rows<2>(a, lda, b, kc, c, ldc, accumulate, bias);
    default: return tile_rows<1>(a, lda, b, kc, c, ldc, accumulate, bias);
  }
}

void gemv_panel(const float* x, const float* panel, int64_t in, const float* bias, float* y) {
  // Four k-steps in flight, each with its own pair of accumulators.
  __m256 acc[8];
  for (auto& v : acc) v = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 4 <= in; k += 4) {
    const float* p = panel + k * kWidth;
#pragma GCC unroll 4
    for (int u = 0; u < 4; ++u) {
      const __m256 xv = _mm256_broadcast_ss(x + k + u);
      acc[2 * u] = _mm256_fmadd_ps(xv, _mm256_load_ps(p + u * kWidth), acc[2 * u]);
      acc[2 * u + 1] = _mm256_fmadd_ps(xv, _mm256_load_ps(p + u * kWidth + 8), acc[2 * u + 1]);
    }
  }
  for (; k < in; ++k) {
    const __m256 xv = _mm256_broadcast_ss(x + k);
    acc[0] = _mm256_fmadd_ps(xv, _mm256_load_ps(panel + k * kWidth), acc[0]);
    acc[1] = _mm256_fmadd_ps(xv, _mm256_load_ps(panel + k * kWidth + 8), acc[1]);
  }
  __m256 lo = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[4], acc[6]));
  __m256 hi = _mm256_add_ps(_mm256_add_ps(acc[1], acc[3]), _mm256_add_ps(acc[5], acc[7]));
  if (bias != nullptr) {
    lo = _mm256_add_ps(lo, _mm256_loadu_ps(bias));
    hi = _mm256_add_ps(hi, _mm256_loadu_ps(bias + 8));
  }
  _mm256_storeu_ps(y, lo);
  _mm256_storeu_ps(y + 8, hi);
}

}  // namespace

const GemmKernels& gemm_kernels_avx2() {
  static const GemmKernels kernels{kRows, kWidth, &tile, &gemv_panel};
  return kernels;
}

}  // namespace quarot::gemm_detail
