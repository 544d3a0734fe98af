// AVX-512 activation quantization kernels: the scalar ones of act_quant.cpp on 16
// floats at a time, for the AVX-512 paths (and AMX's hosts). Exact as the AVX2 table
// (act_quant_avx2.cpp): IEEE division and round-half-even per code, max/min reductions
// in any order, the mixing in act_quant_mix.h's order. Internal linkage except the
// table, and no std:: templates (ODR, see act_quant_kernels.h).
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/act_quant_kernels.h"
#include "kernels/cpu/act_quant_mix.h"

namespace quarot::act_quant_detail {
namespace {

float max_f(float a, float b) { return a > b ? a : b; }
float min_f(float a, float b) { return a < b ? a : b; }
float round_even(float a) {
  return _mm_cvtss_f32(_mm_round_ss(_mm_set_ss(a), _mm_set_ss(a), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
float clamp_f(float v, float lo, float hi) { return v < lo ? lo : (hi < v ? hi : v); }

// The largest |x| bit pattern of x[0 .. n): finite floats order as their sign-cleared
// bits, and every NaN or infinity lies above 0x7f7fffff.
int32_t abs_bits_max(const float* x, int64_t n) {
  const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
  __m512i vmax = _mm512_setzero_si512();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) vmax = _mm512_max_epi32(vmax, _mm512_and_si512(_mm512_loadu_si512(x + i), abs_mask));
  if (i < n) {
    const __mmask16 tail = static_cast<__mmask16>((1u << (n - i)) - 1);
    vmax = _mm512_max_epi32(vmax, _mm512_and_si512(_mm512_maskz_loadu_epi32(tail, x + i), abs_mask));
  }
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
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    vlo = _mm512_min_ps(vlo, v);
    vhi = _mm512_max_ps(vhi, v);
  }
  float l = _mm512_reduce_min_ps(vlo), h = _mm512_reduce_max_ps(vhi);
  for (; i < n; ++i) {
    l = min_f(l, x[i]);
    h = max_f(h, x[i]);
  }
  *lo = l;
  *hi = h;
}

int32_t encode(const float* x, int64_t n, float s, float add, float lo, float hi, int32_t offset, uint8_t* codes) {
  const __m512 vs = _mm512_set1_ps(s);
  const __m512 vadd = _mm512_set1_ps(add);
  const __m512 vlo = _mm512_set1_ps(lo);
  const __m512 vhi = _mm512_set1_ps(hi);
  const __m512i voff = _mm512_set1_epi32(offset);
  __m512i sum = _mm512_setzero_si512();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 q = _mm512_roundscale_ps(_mm512_div_ps(_mm512_loadu_ps(x + i), vs),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(q, vadd), vlo), vhi);
    const __m512i c = _mm512_add_epi32(_mm512_cvtps_epi32(q), voff);
    sum = _mm512_add_epi32(sum, c);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + i), _mm512_cvtepi32_epi8(c));  // codes are 0..255
  }
  int32_t total = _mm512_reduce_add_epi32(sum);
  for (; i < n; ++i) {
    const int32_t code = static_cast<int32_t>(clamp_f(round_even(x[i] / s) + add, lo, hi)) + offset;
    codes[i] = static_cast<uint8_t>(code);
    total += code;
  }
  return total;
}

}  // namespace

const ActQuantKernels& act_quant_kernels_avx512() {
  static const ActQuantKernels kernels{&all_finite, &abs_max, &finite_abs_max, &min_max, &encode, &Mixer<16, 12>::mix};
  return kernels;
}

}  // namespace quarot::act_quant_detail
