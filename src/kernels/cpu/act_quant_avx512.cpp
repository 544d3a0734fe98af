// AVX-512 activation quantization kernels: the scalar ones of act_quant.cpp on 16
// floats at a time (a masked last vector instead of a scalar tail), for the AVX-512
// paths (and AMX's hosts). Exact as the AVX2 table (act_quant_avx2.cpp): the codes of
// IEEE division and round-half-even (mostly reached through the reciprocal, see
// encode), max/min reductions in any order, the mixing in
// act_quant_mix.h's order. Internal linkage except the table, and no std:: templates
// (ODR, see act_quant_kernels.h).
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/act_quant_kernels.h"
#include "kernels/cpu/act_quant_mix.h"
#include "kernels/cpu/reciprocal_codes.h"

namespace quarot::act_quant_detail {
namespace {

// Lanes 0 .. min(left, 16) - 1: a whole vector, or the last partial one.
__mmask16 tail_mask(int64_t left) {
  return left >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << left) - 1);
}

// The largest |x| bit pattern of x[0 .. n): finite floats order as their sign-cleared
// bits, and every NaN or infinity lies above 0x7f7fffff.
int32_t abs_bits_max(const float* x, int64_t n) {
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  __m512i vmax = _mm512_setzero_si512();
  for (int64_t i = 0; i < n; i += 16)
    vmax = _mm512_max_epi32(vmax, _mm512_and_si512(_mm512_maskz_loadu_epi32(tail_mask(n - i), x + i), abs_mask));
  return _mm512_reduce_max_epi32(vmax);
}

bool all_finite(const float* x, int64_t n) { return abs_bits_max(x, n) < 0x7f800000; }

float abs_max(const float* x, int64_t n) {
  const int32_t bits = abs_bits_max(x, n);
  float amax;
  std::memcpy(&amax, &bits, sizeof amax);
  return amax;
}

bool finite_abs_max(const float* x, int64_t n, float* amax) {
  const int32_t bits = abs_bits_max(x, n);
  if (bits >= 0x7f800000) return false;
  std::memcpy(amax, &bits, sizeof bits);
  return true;
}

void min_max(const float* x, int64_t n, float* lo, float* hi) {
  __m512 vlo = _mm512_setzero_ps();
  __m512 vhi = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    // The tail's missing lanes load as 0, which min(0, .) and max(0, .) already include.
    const __m512 v = _mm512_maskz_loadu_ps(tail_mask(n - i), x + i);
    vlo = _mm512_min_ps(vlo, v);
    vhi = _mm512_max_ps(vhi, v);
  }
  *lo = _mm512_reduce_min_ps(vlo);
  *hi = _mm512_reduce_max_ps(vhi);
}

// The codes of IEEE division, mostly without dividing (reciprocal_codes.h): the
// division was half of this loop on the 2-vCPU Xeon (3.2 ns a vector; 1.4 ns this way,
// a trial program of 2026-12-06). Codes are clamped as the float bits of
// RN(x / s + 1.5 * 2^23), bracketed by two fused multiply-adds; a vector whose
// brackets differ in any lane divides.
int32_t encode(const float* x, int64_t n, float s, float add, float lo, float hi, int32_t offset, uint8_t* codes) {
  const ReciprocalBracket bracket = reciprocal_bracket(s);
  const __m512 vs = _mm512_set1_ps(s);
  const __m512 vr_lo = _mm512_set1_ps(bracket.lo);
  const __m512 vr_hi = _mm512_set1_ps(bracket.hi);
  const bool divide_all = !bracket.usable;
  const __m512 vmagic = _mm512_set1_ps(kRoundingMagic);
  const CodeBits bits = code_bits(add, lo, hi, offset);
  const __m512i vlo = _mm512_set1_epi32(bits.lo), vhi = _mm512_set1_epi32(bits.hi), vshift = _mm512_set1_epi32(bits.shift);
  __m512i sum = _mm512_setzero_si512();
  const auto codes16 = [&](__m512 v) {
    __m512 y = _mm512_fmadd_ps(v, vr_lo, vmagic);
    const __m512 y_hi = _mm512_fmadd_ps(v, vr_hi, vmagic);
    if (divide_all || _mm512_cmpneq_epi32_mask(_mm512_castps_si512(y), _mm512_castps_si512(y_hi)) != 0)
      y = _mm512_add_ps(_mm512_div_ps(v, vs), vmagic);
    return _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(_mm512_castps_si512(y), vlo), vhi), vshift);
  };
  int64_t i = 0;
  // Four vectors' codes (0..255) to 64 bytes: two packs interleave them by 128-bit
  // lane, one permute restores the order.
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (; i + 64 <= n; i += 64) {
    const __m512i a = codes16(_mm512_loadu_ps(x + i));
    const __m512i b = codes16(_mm512_loadu_ps(x + i + 16));
    const __m512i c = codes16(_mm512_loadu_ps(x + i + 32));
    const __m512i e = codes16(_mm512_loadu_ps(x + i + 48));
    sum = _mm512_add_epi32(sum, _mm512_add_epi32(_mm512_add_epi32(a, b), _mm512_add_epi32(c, e)));
    const __m512i bytes = _mm512_packus_epi16(_mm512_packus_epi32(a, b), _mm512_packus_epi32(c, e));
    _mm512_storeu_si512(codes + i, _mm512_permutexvar_epi32(order, bytes));
  }
  for (; i < n; i += 16) {
    // A partial last vector: its missing lanes are neither summed nor stored.
    const __mmask16 m = tail_mask(n - i);
    const __m512i c = codes16(_mm512_maskz_loadu_ps(m, x + i));
    sum = _mm512_mask_add_epi32(sum, m, sum, c);
    _mm_mask_storeu_epi8(codes + i, m, _mm512_cvtepi32_epi8(c));
  }
  return _mm512_reduce_add_epi32(sum);
}

}  // namespace

const ActQuantKernels& act_quant_kernels_avx512() {
  static const ActQuantKernels kernels{&all_finite, &abs_max, &finite_abs_max, &min_max, &encode, &Mixer<16, 12>::mix,
                                       &MixerPaley12<16>::mix};
  return kernels;
}

}  // namespace quarot::act_quant_detail
