// AVX2 + FMA tile kernels for decode attention. Scores: eight key rows at a time
// against one query (eight accumulators hide the FMA latency), reduced with
// horizontal adds. Weighted sum: up to 64 output lanes of one query held in eight
// registers across every row of the tile. Internal linkage except the table (ODR).
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/kv_attention_tiles.h"

namespace quarot::kv_detail {
namespace {

float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// Dots of one query with R consecutive key rows; R accumulators keep that many
// FMA chains in flight.
template <int R>
void dots(const float* qi, const float* k, int64_t ldk, int64_t hd, float scale, float* out) {
  __m256 a[R];
  for (int r = 0; r < R; ++r) a[r] = _mm256_setzero_ps();
  for (int64_t d = 0; d < hd; d += 8) {
    const __m256 qv = _mm256_loadu_ps(qi + d);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) a[r] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + r * ldk + d), a[r]);
  }
  if constexpr (R == 8) {
    // Lane r of each half holds partial sums of a_r (a_{r+4} in the second call).
    const __m256 lo = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    const __m256 hi = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    // Put the 128-bit halves of lo and hi side by side and add: lanes 0..7 = rows 0..7.
    const __m256 x = _mm256_permute2f128_ps(lo, hi, 0x20), y = _mm256_permute2f128_ps(lo, hi, 0x31);
    _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_add_ps(x, y), _mm256_set1_ps(scale)));
  } else {
    for (int r = 0; r < R; ++r) out[r] = hsum(a[r]) * scale;
  }
}

void scores(const float* q, int64_t nq, const float* k, int64_t ldk, int64_t rows, int64_t hd, float scale,
            float* out, int64_t ld) {
  for (int64_t i = 0; i < nq; ++i) {
    int64_t j = 0;
    for (; j + 8 <= rows; j += 8) dots<8>(q + i * hd, k + j * ldk, ldk, hd, scale, out + i * ld + j);
    for (; j < rows; ++j) dots<1>(q + i * hd, k + j * ldk, ldk, hd, scale, out + i * ld + j);
  }
}

template <int W>  // W vectors of 8 lanes
void weighted_sum_block(const float* p, const float* v, int64_t ldv, int64_t rows, float* o, bool accumulate) {
  __m256 acc[W];
  for (int u = 0; u < W; ++u) acc[u] = accumulate ? _mm256_loadu_ps(o + 8 * u) : _mm256_setzero_ps();
  for (int64_t j = 0; j < rows; ++j) {
    const __m256 a = _mm256_broadcast_ss(p + j);
#pragma GCC unroll 8
    for (int u = 0; u < W; ++u) acc[u] = _mm256_fmadd_ps(a, _mm256_loadu_ps(v + j * ldv + 8 * u), acc[u]);
  }
  for (int u = 0; u < W; ++u) _mm256_storeu_ps(o + 8 * u, acc[u]);
}

void weighted_sum(const float* p, int64_t nq, int64_t ld, const float* v, int64_t ldv, int64_t rows, int64_t hd,
                  float* o, bool accumulate) {
  for (int64_t i = 0; i < nq; ++i) {
    int64_t d = 0;
    for (; d + 64 <= hd; d += 64) weighted_sum_block<8>(p + i * ld, v + d, ldv, rows, o + i * hd + d, accumulate);
    for (; d + 32 <= hd; d += 32) weighted_sum_block<4>(p + i * ld, v + d, ldv, rows, o + i * hd + d, accumulate);
    for (; d < hd; d += 8) weighted_sum_block<1>(p + i * ld, v + d, ldv, rows, o + i * hd + d, accumulate);
  }
}

// fast_exp2 (fast_math.h) on 8 lanes: the same polynomial and exponent clamp.
__m256 exp2_8(__m256 y) {
  const __m256 whole = _mm256_floor_ps(y);
  const __m256 g = _mm256_mul_ps(_mm256_sub_ps(_mm256_sub_ps(y, whole), _mm256_set1_ps(0.5f)),
                                 _mm256_set1_ps(0.6931471805599453f));
  __m256 e = _mm256_set1_ps(1.0f / 720);
  e = _mm256_fmadd_ps(g, e, _mm256_set1_ps(1.0f / 120));
  e = _mm256_fmadd_ps(g, e, _mm256_set1_ps(1.0f / 24));
  e = _mm256_fmadd_ps(g, e, _mm256_set1_ps(1.0f / 6));
  e = _mm256_fmadd_ps(g, e, _mm256_set1_ps(0.5f));
  e = _mm256_fmadd_ps(g, e, _mm256_set1_ps(1.0f));
  e = _mm256_fmadd_ps(g, e, _mm256_set1_ps(1.0f));
  __m256i k = _mm256_cvttps_epi32(whole);  // whole is integral: exact
  k = _mm256_min_epi32(_mm256_max_epi32(k, _mm256_set1_epi32(-126)), _mm256_set1_epi32(127));
  const __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
  return _mm256_mul_ps(_mm256_mul_ps(scale, _mm256_set1_ps(1.4142135623730951f)), e);
}

float exp_sum(float* s, int64_t n, float mx) {
  const float log2e = 1.4426950408889634f;
  const __m256 l2e = _mm256_set1_ps(log2e), shift = _mm256_set1_ps(mx * log2e), lo = _mm256_set1_ps(-150.0f);
  __m256 acc = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 y = _mm256_max_ps(_mm256_fmsub_ps(_mm256_loadu_ps(s + j), l2e, shift), lo);
    const __m256 e = exp2_8(y);
    _mm256_storeu_ps(s + j, e);
    acc = _mm256_add_ps(acc, e);
  }
  if (j < n) {
    // The tail through a masked load / store: lanes past n read 0 and are not stored.
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - j)), idx);
    const __m256 y = _mm256_max_ps(_mm256_fmsub_ps(_mm256_maskload_ps(s + j, mask), l2e, shift), lo);
    const __m256 e = _mm256_and_ps(exp2_8(y), _mm256_castsi256_ps(mask));
    _mm256_maskstore_ps(s + j, mask, e);
    acc = _mm256_add_ps(acc, e);
  }
  return hsum(acc);
}

}  // namespace

const TileKernels& tile_kernels_avx2() {
  static const TileKernels k{scores, weighted_sum, exp_sum};
  return k;
}

}  // namespace quarot::kv_detail
