// AVX2 activation quantization kernels: the scalar ones of act_quant.cpp on 8
// floats at a time. The codes of IEEE division and round-half-even (mostly through the
// reciprocal bracket of reciprocal_codes.h, the tail by division and vroundps) keep
// every code identical to the scalar path; max/min reductions are exact in any
// order. Internal linkage except the table, and no std:: templates or inline
// library functions (std::clamp, std::max, ...): an instantiation compiled with
// AVX2 flags could be the one the linker keeps for portable code too (ODR).
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/act_quant_kernels.h"
#include "kernels/cpu/act_quant_mix.h"
#include "kernels/cpu/reciprocal_codes.h"

namespace quarot::act_quant_detail {
namespace {

float max_f(float a, float b) { return a > b ? a : b; }
float min_f(float a, float b) { return a < b ? a : b; }
float abs_f(float a) { return _mm_cvtss_f32(_mm_andnot_ps(_mm_set_ss(-0.0f), _mm_set_ss(a))); }
// Round half to even in the default rounding mode, as std::nearbyint.
float round_even(float a) {
  return _mm_cvtss_f32(_mm_round_ss(_mm_set_ss(a), _mm_set_ss(a), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
// std::clamp for non-NaN values.
float clamp_f(float v, float lo, float hi) { return v < lo ? lo : (hi < v ? hi : v); }

float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

float hmin(__m256 v) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

bool all_finite(const float* x, int64_t n) {
  // x * 0 is 0 for finite x and NaN for NaN or +-inf.
  const __m256 zero = _mm256_setzero_ps();
  __m256 bad = zero;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_mul_ps(v, zero), zero, _CMP_NEQ_UQ));
  }
  if (_mm256_movemask_ps(bad) != 0) return false;
  for (; i < n; ++i) {
    if (x[i] * 0.0f != 0.0f) return false;
  }
  return true;
}

// Codes of 32 floats (already integral, in [0, 255]) to bytes in order.
void store_codes32(__m256i a, __m256i b, __m256i c, __m256i d, uint8_t* out) {
  const __m256i ab = _mm256_packus_epi32(a, b);  // [a0-3 b0-3 | a4-7 b4-7] as u16
  const __m256i cd = _mm256_packus_epi32(c, d);
  const __m256i bytes = _mm256_packus_epi16(ab, cd);  // dwords: a0-3 b0-3 c0-3 d0-3 | a4-7 b4-7 c4-7 d4-7
  const __m256i ordered = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), ordered);
}

float abs_max(const float* x, int64_t n) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 vmax = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask));
  float amax = hmax(vmax);
  for (; i < n; ++i) amax = max_f(amax, abs_f(x[i]));
  return amax;
}

// max |x| on the bit patterns: with the sign cleared, finite floats order as their
// bits, and every NaN or infinity lies above 0x7f7fffff, so one pass answers both.
bool finite_abs_max(const float* x, int64_t n, float* amax) {
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  __m256i vmax = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    vmax = _mm256_max_epi32(
        vmax, _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), abs_mask));
  __m128i m = _mm_max_epi32(_mm256_castsi256_si128(vmax), _mm256_extracti128_si256(vmax, 1));
  m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0x4e));
  m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0xb1));
  int32_t bits = _mm_cvtsi128_si32(m);
  for (; i < n; ++i) {
    int32_t b;
    std::memcpy(&b, x + i, sizeof b);
    b &= 0x7fffffff;
    bits = b > bits ? b : bits;
  }
  if (bits >= 0x7f800000) return false;
  std::memcpy(amax, &bits, sizeof bits);
  return true;
}

void min_max(const float* x, int64_t n, float* lo, float* hi) {
  __m256 vlo = _mm256_setzero_ps();
  __m256 vhi = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    vlo = _mm256_min_ps(vlo, v);
    vhi = _mm256_max_ps(vhi, v);
  }
  float l = hmin(vlo), h = hmax(vhi);
  for (; i < n; ++i) {
    l = min_f(l, x[i]);
    h = max_f(h, x[i]);
  }
  *lo = l;
  *hi = h;
}

// The codes of IEEE division through the reciprocal bracket where it decides
// (reciprocal_codes.h, as the AVX-512 encoder); a vector of 8 with a lane it does not
// decide divides.
int32_t encode(const float* x, int64_t n, float s, float add, float lo, float hi, int32_t offset, uint8_t* codes) {
  const ReciprocalBracket bracket = reciprocal_bracket(s);
  const __m256 vs = _mm256_set1_ps(s);
  const __m256 vr_lo = _mm256_set1_ps(bracket.lo);
  const __m256 vr_hi = _mm256_set1_ps(bracket.hi);
  const bool divide_all = !bracket.usable;
  const __m256 vmagic = _mm256_set1_ps(kRoundingMagic);
  const CodeBits bits = code_bits(add, lo, hi, offset);
  const __m256i vlo = _mm256_set1_epi32(bits.lo), vhi = _mm256_set1_epi32(bits.hi), vshift = _mm256_set1_epi32(bits.shift);
  __m256i sum = _mm256_setzero_si256();
  auto code8 = [&](const float* p) {
    const __m256 v = _mm256_loadu_ps(p);
    __m256 y = _mm256_fmadd_ps(v, vr_lo, vmagic);
    const __m256 y_hi = _mm256_fmadd_ps(v, vr_hi, vmagic);
    const __m256i same = _mm256_cmpeq_epi32(_mm256_castps_si256(y), _mm256_castps_si256(y_hi));
    if (divide_all || _mm256_movemask_ps(_mm256_castsi256_ps(same)) != 0xFF)
      y = _mm256_add_ps(_mm256_div_ps(v, vs), vmagic);
    const __m256i c =
        _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(_mm256_castps_si256(y), vlo), vhi), vshift);
    sum = _mm256_add_epi32(sum, c);
    return c;
  };
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i a = code8(x + i);
    const __m256i b = code8(x + i + 8);
    const __m256i c = code8(x + i + 16);
    const __m256i d = code8(x + i + 24);
    store_codes32(a, b, c, d, codes + i);
  }
  int32_t total = hsum(sum);
  for (; i < n; ++i) {
    const int32_t code = static_cast<int32_t>(clamp_f(round_even(x[i] / s) + add, lo, hi)) + offset;
    codes[i] = static_cast<uint8_t>(code);
    total += code;
  }
  return total;
}

}  // namespace

const ActQuantKernels& act_quant_kernels_avx2() {
  static const ActQuantKernels kernels{&all_finite, &abs_max, &finite_abs_max, &min_max, &encode, &Mixer<8, 8>::mix,
                                       &MixerPaley12<8>::mix};
  return kernels;
}

}  // namespace quarot::act_quant_detail
