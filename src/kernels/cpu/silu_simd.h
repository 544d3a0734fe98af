#pragma once
// Internal: the SwiGLU gating silu(g) * u written once for any vector width, so that
// vec_ops.h silu_mul_avx2 (8 lanes) and the AMX gate/up epilogue (16 lanes,
// int_gemm_amx.cpp) give the same bits. exp(-g) from a Cody-Waite range reduction
// (x = n ln2 + r, ln2 split in two so n * ln2 is exact) and a degree-7 polynomial for e^r on
// |r| <= ln2 / 2, within 2 ulp of the correctly rounded value, as e * 2^n; then
// g / fma(e, 2^n, 1) * u with an IEEE division. Includers are compiled without floating-point
// contraction (cmake/QuarotCompileOptions.cmake), which would otherwise be free to fuse a
// different multiply and add in each of them.
//
// Everything here has internal linkage: each includer compiles it with its own ISA flags
// (one definition compiled two ways would break the one-definition rule). Lanes<Avx2> needs
// AVX2 + FMA, Lanes<Avx512> AVX-512F.
#include <immintrin.h>

namespace quarot::silu_detail {
namespace {

struct Avx2 {};
struct Avx512 {};

template <typename Isa>
struct Lanes;

template <>
struct Lanes<Avx2> {
  using F = __m256;
  using I = __m256i;
  static F set1(float x) { return _mm256_set1_ps(x); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F min(F a, F b) { return _mm256_min_ps(a, b); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F fnmadd(F a, F b, F c) { return _mm256_fnmadd_ps(a, b, c); }
  static F round_nearest(F x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  // 2^n for integral n in [-126, 127], from the exponent bits.
  static F pow2(F n) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
  }
};

#if defined(__AVX512F__)
template <>
struct Lanes<Avx512> {
  using F = __m512;
  using I = __m512i;
  static F set1(float x) { return _mm512_set1_ps(x); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F min(F a, F b) { return _mm512_min_ps(a, b); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F fnmadd(F a, F b, F c) { return _mm512_fnmadd_ps(a, b, c); }
  static F round_nearest(F x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F pow2(F n) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
  }
};
#endif

// silu(g) * u per lane. e^-g saturates at e^88 (g < -88: silu(g) ~ g e^g, below 1e-36); a
// NaN stays NaN through the division.
template <typename Isa>
typename Lanes<Isa>::F silu_mul(typename Lanes<Isa>::F g, typename Lanes<Isa>::F u) {
  using L = Lanes<Isa>;
  const auto x = L::min(L::max(L::sub(L::set1(0.0f), g), L::set1(-88.0f)), L::set1(88.0f));
  const auto n = L::round_nearest(L::mul(x, L::set1(1.44269504088896341f)));
  auto r = L::fnmadd(n, L::set1(0.693359375f), x);
  r = L::fnmadd(n, L::set1(-2.12194440e-4f), r);
  // Cephes expf's minimax coefficients for (e^r - 1 - r) / r^2.
  auto p = L::set1(1.9875691500e-4f);
  p = L::fmadd(p, r, L::set1(1.3981999507e-3f));
  p = L::fmadd(p, r, L::set1(8.3334519073e-3f));
  p = L::fmadd(p, r, L::set1(4.1665795894e-2f));
  p = L::fmadd(p, r, L::set1(1.6666665459e-1f));
  p = L::fmadd(p, r, L::set1(5.0000001201e-1f));
  const auto e = L::add(L::fmadd(p, L::mul(r, r), r), L::set1(1.0f));
  const auto s = L::div(g, L::fmadd(e, L::pow2(n), L::set1(1.0f)));
  return L::mul(s, u);
}

}  // namespace
}  // namespace quarot::silu_detail
