#pragma once
#include <immintrin.h>
#include <cstdint>
#include <cstring>
constexpr uint32_t lcg(uint32_t s) { return s * 1664525u + 1013904223u; }
struct Signs { int8_t s[12][12]; };
constexpr Signs make_signs() {
  Signs g{}; uint32_t st = 12345;
  for (int i = 0; i < 12; ++i) for (int j = 0; j < 12; ++j) { st = lcg(st); g.s[i][j] = (st >> 16) & 1 ? 1 : -1; }
  return g;
}
inline constexpr Signs kSigns = make_signs();

template <int A2, int I>
inline __m512 step(__m512 sum, __m512 p, __m512 one, __m512 mone) {
  constexpr int s = kSigns.s[I][A2];
  if constexpr (A2 == 0) return s > 0 ? p : _mm512_xor_ps(p, _mm512_set1_ps(-0.0f));
  else if constexpr ((A2 & 1) == 1) return _mm512_fmadd_ps(p, s > 0 ? one : mone, sum);
  else return s > 0 ? _mm512_add_ps(sum, p) : _mm512_sub_ps(sum, p);
}
template <int A2, int... Is>
inline void all_rows(__m512 (&sum)[12], __m512 p, __m512 one, __m512 mone, std::integer_sequence<int, Is...>) {
  ((sum[Is] = step<A2, Is>(sum[Is], p, one, mone)), ...);
}
template <int... A2s>
inline void all_sources(__m512 (&sum)[12], const float* x, int64_t block, __m512 pre, __m512 c, int64_t c0,
                        __m512 one, __m512 mone, std::integer_sequence<int, A2s...>) {
  ((all_rows<A2s>(sum, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + A2s * block + c0), pre), c), one, mone,
                  std::make_integer_sequence<int, 12>{})), ...);
}
inline void mix_spec(const float* x, int64_t block, float pre_scale, float mag, float* out) {
  const __m512 pre = _mm512_set1_ps(pre_scale), c = _mm512_set1_ps(mag);
  const __m512 one = _mm512_set1_ps(1.0f), mone = _mm512_set1_ps(-1.0f);
  for (int64_t c0 = 0; c0 < block; c0 += 16) {
    __m512 sum[12];
    all_sources(sum, x, block, pre, c, c0, one, mone, std::make_integer_sequence<int, 12>{});
    for (int i = 0; i < 12; ++i) _mm512_storeu_ps(out + i * block + c0, sum[i]);
  }
}
