// AVX2 + FMA kernels of kv_code_tiles.h. Codes are widened straight from memory:
// vpmovzxbd turns 8 bytes into 8 int32 lanes; for 4-bit codes lane t holds
// elements 2t (low nibble) and 2t + 1 (high nibble), so one "and" and one shift give
// the even and the odd elements of a 16-element chunk without any byte shuffle. The
// queries (scores) and the outputs (weighted sum) are kept in that even/odd order
// inside the kernel instead: a permutation of nq * head_dim floats per call, where
// the codes of every row would otherwise need one. Then (float(c) - z), exact, and
// FMAs; for one group per head the scale multiplies the finished dot product (keys)
// or the softmax weight (values), else each chunk is scaled by its group's s.
// Scores: 4 rows x up to 3 queries per pass (12 independent FMA chains, each chunk's
// conversion shared by the 3 queries), reduced with horizontal adds. Weighted sum:
// 16 output lanes x 3 queries (32 x 2 for smaller blocks) over all rows of the tile.
// Internal linkage except the table, and no std:: functions or containers: an
// instantiation compiled with AVX2 flags could be the one the linker keeps for
// portable code (ODR); scratch comes from the caller.
#include <immintrin.h>

#include <cstdint>
#include <utility>

#include "kernels/cpu/kv_code_tiles.h"

namespace quarot::kv_detail {
namespace {

constexpr int kQueryBlock = 3;  // queries sharing one conversion of a chunk
constexpr int kRowBlock = 4;    // key rows per scores pass

// f(integral_constant<int, 0>), ..., f(integral_constant<int, N - 1>): a loop the
// compiler must unroll, so arrays indexed by its counter live in registers (with a
// plain loop GCC kept the 12 accumulators on the stack).
template <int N, typename F>
inline __attribute__((always_inline)) void unroll(F&& f) {
  [&]<int... I>(std::integer_sequence<int, I...>) { (f(std::integral_constant<int, I>{}), ...); }(
      std::make_integer_sequence<int, N>{});
}

// Elements d..d+15 of a row as two vectors of (float(code) - zero): packed: the even
// and the odd elements; bytes: d..d+7 and d+8..d+15.
template <bool Packed>
inline __attribute__((always_inline)) void chunk(const uint8_t* row, int64_t d, __m256 zero, __m256* a, __m256* b) {
  if constexpr (Packed) {
    const __m256i x = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + d / 2)));
    *a = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_and_si256(x, _mm256_set1_epi32(0x0f))), zero);
    *b = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(x, 4)), zero);
  } else {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + d));
    *a = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(x)), zero);
    *b = _mm256_sub_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(x, 8))), zero);
  }
}

// Natural element order -> the kernel's (packed: per 16-chunk, the 8 even elements, then the 8 odd).
void to_kernel_order(const float* src, int64_t n, bool packed, float* dst) {
  if (!packed) {
    for (int64_t d = 0; d < n; ++d) dst[d] = src[d];
    return;
  }
  for (int64_t c = 0; c < n; c += 16)
    for (int t = 0; t < 8; ++t) {
      dst[c + t] = src[c + 2 * t];
      dst[c + 8 + t] = src[c + 2 * t + 1];
    }
}

// Lanes 0..3 = the full sums of a0..a3.
inline __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// Scores of QB queries (kernel order, qp) against R rows starting at row j0.
template <bool Packed, bool OneGroup, int QB, int R>
void score_rows(const float* qp, int64_t hd, const CodeRows& k, int64_t j0, float scale, float* out, int64_t ld) {
  const int64_t cb = Packed ? hd / 2 : hd, groups = OneGroup ? 1 : hd / k.group;
  const uint8_t* codes = k.codes + j0 * cb;
  const float* params = k.params + j0 * 2 * groups;
  __m256 acc[QB][R];
  unroll<QB>([&](auto i) { unroll<R>([&](auto r) { acc[i][r] = _mm256_setzero_ps(); }); });
  for (int64_t d = 0; d < hd; d += 16) {
    const int64_t g = OneGroup ? 0 : d / k.group;
    unroll<R>([&](auto r) {
      const float* p = params + r * 2 * groups + 2 * g;
      __m256 a, b;
      chunk<Packed>(codes + r * cb, d, _mm256_broadcast_ss(p + 1), &a, &b);
      if constexpr (!OneGroup) {
        const __m256 s = _mm256_broadcast_ss(p);
        a = _mm256_mul_ps(a, s);
        b = _mm256_mul_ps(b, s);
      }
      unroll<QB>([&](auto i) {
        acc[i][r] = _mm256_fmadd_ps(_mm256_loadu_ps(qp + i * hd + d), a, acc[i][r]);
        acc[i][r] = _mm256_fmadd_ps(_mm256_loadu_ps(qp + i * hd + d + 8), b, acc[i][r]);
      });
    });
  }
  if constexpr (R == 4) {
    __m128 s = _mm_set1_ps(scale);
    if constexpr (OneGroup) s = _mm_mul_ps(_mm_setr_ps(params[0], params[2], params[4], params[6]), s);
    unroll<QB>([&](auto i) {
      _mm_storeu_ps(out + i * ld + j0, _mm_mul_ps(hsum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]), s));
    });
  } else {
    unroll<R>([&](auto r) {
      const float s = OneGroup ? params[r * 2] * scale : scale;
      unroll<QB>([&](auto i) {
        out[i * ld + j0 + r] = _mm_cvtss_f32(hsum4(acc[i][r], acc[i][r], acc[i][r], acc[i][r])) * s;
      });
    });
  }
}

template <bool Packed, bool OneGroup, int QB>
void score_queries(const float* qp, int64_t hd, const CodeRows& k, float scale, float* out, int64_t ld) {
  int64_t j = 0;
  for (; j + kRowBlock <= k.rows; j += kRowBlock) score_rows<Packed, OneGroup, QB, kRowBlock>(qp, hd, k, j, scale, out, ld);
  for (; j < k.rows; ++j) score_rows<Packed, OneGroup, QB, 1>(qp, hd, k, j, scale, out, ld);
}

template <bool Packed, bool OneGroup>
void scores_impl(const float* qp, int64_t nq, const CodeRows& k, float scale, float* out, int64_t ld) {
  const int64_t hd = k.head_dim;
  for (int64_t i = 0; i < nq; i += kQueryBlock) {
    const float* q = qp + i * hd;
    float* o = out + i * ld;
    switch (nq - i >= kQueryBlock ? kQueryBlock : nq - i) {
      case 3: score_queries<Packed, OneGroup, 3>(q, hd, k, scale, o, ld); break;
      case 2: score_queries<Packed, OneGroup, 2>(q, hd, k, scale, o, ld); break;
      default: score_queries<Packed, OneGroup, 1>(q, hd, k, scale, o, ld); break;
    }
  }
}

void scores(const float* q, int64_t nq, const CodeRows& k, float scale, float* out, int64_t ld, float* work) {
  const int64_t hd = k.head_dim;
  for (int64_t i = 0; i < nq; ++i) to_kernel_order(q + i * hd, hd, k.packed, work + i * hd);
  const bool one = k.group == hd;
  if (k.packed)
    one ? scores_impl<true, true>(work, nq, k, scale, out, ld) : scores_impl<true, false>(work, nq, k, scale, out, ld);
  else
    one ? scores_impl<false, true>(work, nq, k, scale, out, ld) : scores_impl<false, false>(work, nq, k, scale, out, ld);
}

// Two kernel-order vectors (a: even / first 8, b: odd / next 8) to 16 elements in order.
template <bool Packed>
inline __attribute__((always_inline)) void store16(float* dst, __m256 a, __m256 b) {
  if constexpr (Packed) {
    const __m256 lo = _mm256_unpacklo_ps(a, b), hi = _mm256_unpackhi_ps(a, b);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(dst + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
  } else {
    _mm256_storeu_ps(dst, a);
    _mm256_storeu_ps(dst + 8, b);
  }
}

// QB queries' outputs at elements d0 .. d0 + 16 * C - 1 (C = 2: 32 lanes, C = 1: the
// 16-element tail) over every row. w: the per-row weights of the QB queries (row
// stride ldw): p * s for one group per head, else p (the chunk carries its s).
template <bool Packed, bool OneGroup, int QB, int C>
void sum_block(const float* w, int64_t ldw, const CodeRows& v, int64_t d0, float* o, int64_t hd) {
  const int64_t cb = Packed ? hd / 2 : hd, groups = OneGroup ? 1 : hd / v.group;
  __m256 acc[QB][2 * C];
  unroll<QB>([&](auto i) { unroll<2 * C>([&](auto u) { acc[i][u] = _mm256_setzero_ps(); }); });
  int64_t g[C];
  unroll<C>([&](auto c) { g[c] = OneGroup ? 0 : (d0 + 16 * c) / v.group; });
  for (int64_t j = 0; j < v.rows; ++j) {
    const uint8_t* row = v.codes + j * cb;
    const float* p = v.params + j * 2 * groups;
    __m256 x[2 * C];
    unroll<C>([&](auto c) {
      chunk<Packed>(row, d0 + 16 * c, _mm256_broadcast_ss(p + 2 * g[c] + 1), &x[2 * c], &x[2 * c + 1]);
      if constexpr (!OneGroup) {
        const __m256 s = _mm256_broadcast_ss(p + 2 * g[c]);
        x[2 * c] = _mm256_mul_ps(x[2 * c], s);
        x[2 * c + 1] = _mm256_mul_ps(x[2 * c + 1], s);
      }
    });
    unroll<QB>([&](auto i) {
      const __m256 wi = _mm256_broadcast_ss(w + i * ldw + j);
      unroll<2 * C>([&](auto u) { acc[i][u] = _mm256_fmadd_ps(wi, x[u], acc[i][u]); });
    });
  }
  unroll<QB>([&](auto i) {
    unroll<C>([&](auto c) { store16<Packed>(o + i * hd + d0 + 16 * c, acc[i][2 * c], acc[i][2 * c + 1]); });
  });
}

template <bool Packed, bool OneGroup, int QB>
void sum_queries(const float* w, int64_t ldw, const CodeRows& v, float* o) {
  const int64_t hd = v.head_dim;
  int64_t d0 = 0;
  if constexpr (QB == kQueryBlock) {
    // 16 lanes per pass: 3 x 4 accumulators and the 4 converted vectors did not fit
    // the 16 registers (GCC kept one accumulator on the stack, a store / reload per row).
    for (; d0 < hd; d0 += 16) sum_block<Packed, OneGroup, QB, 1>(w, ldw, v, d0, o, hd);
  } else {
    for (; d0 + 32 <= hd; d0 += 32) sum_block<Packed, OneGroup, QB, 2>(w, ldw, v, d0, o, hd);
    if (d0 < hd) sum_block<Packed, OneGroup, QB, 1>(w, ldw, v, d0, o, hd);
  }
}

template <bool Packed, bool OneGroup>
void weighted_sum_impl(const float* w, int64_t ldw, int64_t nq, const CodeRows& v, float* o) {
  const int64_t hd = v.head_dim;
  for (int64_t i = 0; i < nq; i += kQueryBlock) {
    switch (nq - i >= kQueryBlock ? kQueryBlock : nq - i) {
      case 3: sum_queries<Packed, OneGroup, 3>(w + i * ldw, ldw, v, o + i * hd); break;
      case 2: sum_queries<Packed, OneGroup, 2>(w + i * ldw, ldw, v, o + i * hd); break;
      default: sum_queries<Packed, OneGroup, 1>(w + i * ldw, ldw, v, o + i * hd); break;
    }
  }
}

void weighted_sum(const float* p, int64_t nq, int64_t ld, const CodeRows& v, float* o, float* work) {
  if (v.group == v.head_dim) {
    // The value rows' scale folds into the softmax weights: w[i][j] = p[i][j] * s_j.
    for (int64_t i = 0; i < nq; ++i)
      for (int64_t j = 0; j < v.rows; ++j) work[i * v.rows + j] = p[i * ld + j] * v.params[2 * j];
    if (v.packed)
      weighted_sum_impl<true, true>(work, v.rows, nq, v, o);
    else
      weighted_sum_impl<false, true>(work, v.rows, nq, v, o);
  } else if (v.packed) {
    weighted_sum_impl<true, false>(p, ld, nq, v, o);
  } else {
    weighted_sum_impl<false, false>(p, ld, nq, v, o);
  }
}

}  // namespace

const CodeTileKernels& code_tile_kernels_avx2() {
  static const CodeTileKernels k{scores, weighted_sum};
  return k;
}

}  // namespace quarot::kv_detail
