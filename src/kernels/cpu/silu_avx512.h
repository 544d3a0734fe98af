#pragma once
// Internal, for files compiled with AVX-512 (int_gemm_amx.cpp): silu(g) * u on 16 lanes
// with exactly the lane operations of silu_avx2.cpp's silu_mul8 (the same Cody-Waite
// reduction, polynomial, exponent bits, fma and IEEE division), so a product epilogue that
// gates its outputs gives vec_ops.h silu_mul_avx2's bits. Includers are compiled without
// floating-point contraction (cmake/QuarotCompileOptions.cmake), which would otherwise
// be free to fuse a different multiply and add here than in silu_avx2.cpp.
#include <immintrin.h>

namespace quarot::silu_detail {

// e^x = e * *scale (silu_avx2.cpp's exp8).
inline __m512 exp16(__m512 x, __m512* scale) {
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 e = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
  const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  *scale = _mm512_castsi512_ps(bits);
  return e;
}

inline __m512 silu_mul16(__m512 g, __m512 u) {
  const __m512 x = _mm512_min_ps(_mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), g), _mm512_set1_ps(-88.0f)),
                                 _mm512_set1_ps(88.0f));
  __m512 scale;
  const __m512 e = exp16(x, &scale);
  const __m512 s = _mm512_div_ps(g, _mm512_fmadd_ps(e, scale, _mm512_set1_ps(1.0f)));
  return _mm512_mul_ps(s, u);
}

}  // namespace quarot::silu_detail
