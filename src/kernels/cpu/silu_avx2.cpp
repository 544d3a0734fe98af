// AVX2 + FMA SwiGLU gating (vec_ops.h silu_mul_avx2): exp from a Cody-Waite range
// reduction (x = n ln2 + r, ln2 split in two so n * ln2 is exact) and a degree-7
// polynomial for e^r on |r| <= ln2 / 2, within 2 ulp of the correctly rounded
// value; then the scalar expression g / (1 + e^-g) * up with an IEEE division, the
// 1 + e^-g as one fma of the polynomial's value and 2^n (what GCC's contraction made of
// the separate multiply and add; written out, and the file compiled without contraction,
// so silu_avx512.h can give the same bits).
// Internal linkage except the entry point; no std:: templates (ODR, see
// act_quant_avx2.cpp).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/vec_ops.h"

namespace quarot {
namespace {

// e^x = e * *scale for |x| <= 88 (the caller clamps): 2^n is built from the exponent bits.
__m256 exp8(__m256 x, __m256* scale) {
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  // Cephes expf's minimax coefficients for (e^r - 1 - r) / r^2.
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 e = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  *scale = _mm256_castsi256_ps(bits);
  return e;
}

__m256 silu_mul8(__m256 g, __m256 u) {
  // e^-g saturates at e^88 (g < -88: silu(g) ~ g e^g, below 1e-36); a NaN stays NaN
  // through the division.
  const __m256 x = _mm256_min_ps(_mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), g), _mm256_set1_ps(-88.0f)),
                                 _mm256_set1_ps(88.0f));
  __m256 scale;
  const __m256 e = exp8(x, &scale);
  const __m256 s = _mm256_div_ps(g, _mm256_fmadd_ps(e, scale, _mm256_set1_ps(1.0f)));
  return _mm256_mul_ps(s, u);
}

}  // namespace

void silu_mul_avx2(const float* gate, const float* up, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, silu_mul8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  if (i < n) {
    float g[8] = {}, u[8] = {}, o[8];
    std::memcpy(g, gate + i, (n - i) * sizeof(float));
    std::memcpy(u, up + i, (n - i) * sizeof(float));
    _mm256_storeu_ps(o, silu_mul8(_mm256_loadu_ps(g), _mm256_loadu_ps(u)));
    std::memcpy(out + i, o, (n - i) * sizeof(float));
  }
}

}  // namespace quarot
