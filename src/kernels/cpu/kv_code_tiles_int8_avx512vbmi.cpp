// AVX-512 VNNI + VBMI kernels of kv_code_tiles.h's integer decode products (contract
// there). Rows are read in 64-element segments (32 packed bytes): a pair of rows' same
// segment is one 64-byte vector, whose low nibbles are the even elements of both rows
// and whose high nibbles the odd ones.
// Scores: the 16-bit query codes are split into signed high and low bytes (q = 256 h +
// l), stored in that even / odd order, so vpdpbusd multiplies 64 codes of two rows at
// once per byte half (lanes 0-7: row j, 8-15: row j + 1, four elements per lane) and
// the pair's sums are 256 * high + low; 16 rows' partial sums are then reduced to one
// vector of 16 sums (two shuffle stages, then a fixed lane permutation).
// Weighted sum: vpermt2b widens and transposes two rows' nibble halves into dwords of
// 16-bit (row j, row j + 1) codes per element, which vpdpwssd multiplies with the two
// rows' 16-bit weights (one broadcast dword), 64 elements of one query in 4
// accumulators; the even / odd element order is undone once per call.
// Internal linkage except the table; no std:: templates (see act_quant_avx2.cpp).
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/kv_code_tiles.h"

namespace quarot::kv_detail {
namespace {

constexpr int64_t kSegment = 64;  // elements per 32 packed bytes
constexpr int kMaxQueries = 3;    // query vectors per pass (register tiles)

// Segment s of rows j and j + 1 (rows past `rows` read as zero codes).
inline __m512i load_pair(const uint8_t* codes, int64_t cb, int64_t j, int64_t s, int64_t rows) {
  const uint8_t* a = codes + j * cb + s * 32;
  if (j + 1 < rows) {
    if (cb == 32) return _mm512_loadu_si512(a);
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a))),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + cb)), 1);
  }
  const __m256i lo = j < rows ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a)) : _mm256_setzero_si256();
  return _mm512_castsi256_si512(lo);  // upper half zero
}

inline __m512i bcast4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Rows j .. j + 15 of params ({scale, zero} pairs; rows from `rows` on read as zero):
// the scales and the zero points in row order.
inline void row_params(const float* params, int64_t j, int64_t rows, __m512* scale, __m512* zero) {
  const int64_t n = rows - j < 16 ? rows - j : 16;
  const __m512 pa = _mm512_maskz_loadu_ps(n >= 8 ? 0xFFFF : static_cast<__mmask16>((1u << (2 * n)) - 1),
                                          params + 2 * j);
  const __m512 pb = _mm512_maskz_loadu_ps(n > 8 ? static_cast<__mmask16>((1u << (2 * (n - 8))) - 1) : 0,
                                          params + 2 * j + 16);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  *scale = _mm512_permutex2var_ps(pa, even, pb);
  *zero = _mm512_permutex2var_ps(pa, _mm512_add_epi32(even, _mm512_set1_epi32(1)), pb);
}

// ---- scores -----------------------------------------------------------------------

// Per query and segment, four vectors of int8: the high bytes of the 16-bit codes, even
// elements twice ([e | e]), then odd ([o | o]); then the low bytes likewise. Q = the
// codes' sum; factor = scale * m / kCodeTileQueryMax.
struct QueryCodes {
  const int8_t* codes;  // [nq][segments][4][64]
  const int32_t* total;
  const float* factor;
};

// vpermb selectors: the even elements of 64 bytes, twice; the odd ones, twice.
struct EvenOdd {
  __m512i even, odd;
  EvenOdd() {
    alignas(64) uint8_t e[64], o[64];
    for (int k = 0; k < 64; ++k) {
      e[k] = static_cast<uint8_t>(2 * (k % 32));
      o[k] = static_cast<uint8_t>(2 * (k % 32) + 1);
    }
    even = _mm512_load_si512(e);
    odd = _mm512_load_si512(o);
  }
};

// 64 int32 values (4 vectors) as 64 bytes in element order.
inline __m512i bytes_of(const __m512i (&c)[4]) {
  const __m128i b0 = _mm512_cvtepi32_epi8(c[0]), b1 = _mm512_cvtepi32_epi8(c[1]);
  const __m128i b2 = _mm512_cvtepi32_epi8(c[2]), b3 = _mm512_cvtepi32_epi8(c[3]);
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(b0), b1, 1)),
                            _mm256_inserti128_si256(_mm256_castsi128_si256(b2), b3, 1), 1);
}

QueryCodes quantize_queries(const float* q, int64_t nq, int64_t hd, float scale, float* work) {
  const int64_t segments = hd / kSegment;
  float* factor = work;
  int32_t* total = reinterpret_cast<int32_t*>(work + nq);
  int8_t* codes = reinterpret_cast<int8_t*>(work + 2 * nq);
  static const EvenOdd split;
  const __m512i qmax = _mm512_set1_epi32(kCodeTileQueryMax);
  for (int64_t i = 0; i < nq; ++i) {
    const float* qi = q + i * hd;
    __m512 mx = _mm512_setzero_ps();
    for (int64_t d = 0; d < hd; d += 16) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(qi + d)));
    const float m = _mm512_reduce_max_ps(mx);
    const __m512 vinv = _mm512_set1_ps(m > 0.0f ? static_cast<float>(kCodeTileQueryMax) / m : 0.0f);
    __m512i sum = _mm512_setzero_si512();
    for (int64_t s = 0; s < segments; ++s) {
      __m512i hi[4], lo[4];
      for (int t = 0; t < 4; ++t) {
        const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(qi + s * kSegment + 16 * t), vinv));
        const __m512i c = _mm512_max_epi32(_mm512_min_epi32(v, qmax), _mm512_sub_epi32(_mm512_setzero_si512(), qmax));
        sum = _mm512_add_epi32(sum, c);
        lo[t] = _mm512_srai_epi32(_mm512_slli_epi32(c, 24), 24);  // the low byte, signed
        hi[t] = _mm512_srai_epi32(_mm512_sub_epi32(c, lo[t]), 8);
      }
      const __m512i h = bytes_of(hi), l = bytes_of(lo);
      int8_t* dst = codes + (i * segments + s) * 256;
      _mm512_storeu_si512(dst, _mm512_permutexvar_epi8(split.even, h));
      _mm512_storeu_si512(dst + 64, _mm512_permutexvar_epi8(split.odd, h));
      _mm512_storeu_si512(dst + 128, _mm512_permutexvar_epi8(split.even, l));
      _mm512_storeu_si512(dst + 192, _mm512_permutexvar_epi8(split.odd, l));
    }
    total[i] = _mm512_reduce_add_epi32(sum);
    factor[i] = scale * (m / static_cast<float>(kCodeTileQueryMax));
  }
  return {codes, total, factor};
}

// 16 row sums from 8 pair accumulators (P[k] lanes 0-7: row 2k, 8-15: row 2k + 1), in
// row order.
inline __m512i reduce16(const __m512i (&p)[8]) {
  __m512i e[4];
  for (int m = 0; m < 4; ++m) {
    const __m512i c = _mm512_shuffle_i32x4(p[2 * m], p[2 * m + 1], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i d = _mm512_shuffle_i32x4(p[2 * m], p[2 * m + 1], _MM_SHUFFLE(3, 1, 3, 1));
    e[m] = _mm512_add_epi32(c, d);  // 128-bit lane L: the 4 partials of row 4m + L
  }
  const __m512i u01 = _mm512_add_epi32(_mm512_unpacklo_epi32(e[0], e[1]), _mm512_unpackhi_epi32(e[0], e[1]));
  const __m512i u23 = _mm512_add_epi32(_mm512_unpacklo_epi32(e[2], e[3]), _mm512_unpackhi_epi32(e[2], e[3]));
  const __m512i r = _mm512_add_epi32(_mm512_unpacklo_epi64(u01, u23), _mm512_unpackhi_epi64(u01, u23));
  // r's dword 4L + m holds row 4m + L.
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_epi32(order, r);
}

template <int QB>
void score_block(const QueryCodes& qc, int64_t i0, const CodeRows& k, int64_t j0, float* out, int64_t ld) {
  const int64_t segments = k.head_dim / kSegment, cb = k.head_dim / 2;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512i p[QB][8];
#pragma GCC unroll 8
  for (int pr = 0; pr < 8; ++pr) {
    for (int i = 0; i < QB; ++i) p[i][pr] = _mm512_setzero_si512();
    const int64_t j = j0 + 2 * pr;
    if (j >= k.rows) continue;
    for (int64_t s = 0; s < segments; ++s) {
      const __m512i v = load_pair(k.codes, cb, j, s, k.rows);
      const __m512i lo = _mm512_and_si512(v, low4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
      for (int i = 0; i < QB; ++i) {
        const int8_t* qs = qc.codes + ((i0 + i) * segments + s) * 256;
        __m512i h = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512(qs));
        h = _mm512_dpbusd_epi32(h, hi, _mm512_loadu_si512(qs + 64));
        __m512i l = _mm512_dpbusd_epi32(_mm512_slli_epi32(h, 8), lo, _mm512_loadu_si512(qs + 128));
        l = _mm512_dpbusd_epi32(l, hi, _mm512_loadu_si512(qs + 192));
        p[i][pr] = _mm512_add_epi32(p[i][pr], l);
      }
    }
  }
  const int64_t n = k.rows - j0 < 16 ? k.rows - j0 : 16;
  const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1);
  __m512 sc, zr;
  row_params(k.params, j0, k.rows, &sc, &zr);
  for (int i = 0; i < QB; ++i) {
    const __m512 d = _mm512_cvtepi32_ps(reduce16(p[i]));
    const __m512 base = _mm512_fnmadd_ps(zr, _mm512_set1_ps(static_cast<float>(qc.total[i0 + i])), d);
    const __m512 f = _mm512_mul_ps(sc, _mm512_set1_ps(qc.factor[i0 + i]));
    _mm512_mask_storeu_ps(out + (i0 + i) * ld + j0, mask, _mm512_mul_ps(base, f));
  }
}

void scores(const float* q, int64_t nq, const CodeRows& k, float scale, float* out, int64_t ld, float* work) {
  const QueryCodes qc = quantize_queries(q, nq, k.head_dim, scale, work);
  for (int64_t j0 = 0; j0 < k.rows; j0 += 16) {
    for (int64_t i = 0; i < nq; i += kMaxQueries) {
      switch (nq - i >= kMaxQueries ? kMaxQueries : nq - i) {
        case 3: score_block<3>(qc, i, k, j0, out, ld); break;
        case 2: score_block<2>(qc, i, k, j0, out, ld); break;
        default: score_block<1>(qc, i, k, j0, out, ld); break;
      }
    }
  }
}

// ---- weighted sum -----------------------------------------------------------------

// vpermt2b selectors (second source zero): dword t of the output = words (byte t, byte
// 32 + t) of the first source (rows j, j + 1), t = base .. base + 15.
struct Widen {
  __m512i first, second;
  Widen() {
    alignas(64) uint8_t a[64], b[64];
    for (int t = 0; t < 16; ++t) {
      const uint8_t src[4] = {static_cast<uint8_t>(t), 64, static_cast<uint8_t>(32 + t), 64};
      for (int r = 0; r < 4; ++r) {
        a[4 * t + r] = src[r];
        b[4 * t + r] = static_cast<uint8_t>(src[r] == 64 ? 64 : src[r] + 16);
      }
    }
    first = _mm512_load_si512(a);
    second = _mm512_load_si512(b);
  }
};

template <int QB>
void sum_block(const uint16_t* u, int64_t ldu, int64_t rows2, const CodeRows& v, int64_t s, const Widen& wd,
               const float* corr, const float* wscale, float* o, int64_t ldo) {
  const int64_t cb = v.head_dim / 2;
  const __m512i low4 = _mm512_set1_epi8(0x0F), zero = _mm512_setzero_si512();
  // acc[i][0..3]: elements 2t, 2(t + 16), 2t + 1, 2(t + 16) + 1 of segment s, t < 16.
  __m512i acc[QB][4];
  for (int i = 0; i < QB; ++i)
    for (int c = 0; c < 4; ++c) acc[i][c] = _mm512_setzero_si512();
  for (int64_t j = 0; j < rows2; j += 2) {
    const __m512i v01 = load_pair(v.codes, cb, j, s, v.rows);
    const __m512i lo = _mm512_and_si512(v01, low4), hi = _mm512_and_si512(_mm512_srli_epi16(v01, 4), low4);
    const __m512i x[4] = {_mm512_permutex2var_epi8(lo, wd.first, zero), _mm512_permutex2var_epi8(lo, wd.second, zero),
                          _mm512_permutex2var_epi8(hi, wd.first, zero), _mm512_permutex2var_epi8(hi, wd.second, zero)};
    for (int i = 0; i < QB; ++i) {
      const __m512i w = bcast4(reinterpret_cast<const uint8_t*>(u + i * ldu + j));
      for (int c = 0; c < 4; ++c) acc[i][c] = _mm512_dpwssd_epi32(acc[i][c], w, x[c]);
    }
  }
  // Back to element order: out[2t] = even[t], out[2t + 1] = odd[t].
  const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi_idx = _mm512_add_epi32(lo_idx, _mm512_set1_epi32(8));
  for (int i = 0; i < QB; ++i) {
    const __m512 cr = _mm512_set1_ps(corr[i]), ws = _mm512_set1_ps(wscale[i]);
    float* dst = o + i * ldo + s * kSegment;
    for (int h = 0; h < 2; ++h) {
      const __m512 e = _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(acc[i][h]), cr), ws);
      const __m512 od = _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(acc[i][2 + h]), cr), ws);
      _mm512_storeu_ps(dst + 32 * h, _mm512_permutex2var_ps(e, lo_idx, od));
      _mm512_storeu_ps(dst + 32 * h + 16, _mm512_permutex2var_ps(e, hi_idx, od));
    }
  }
}

void weighted_sum(const float* p, int64_t nq, int64_t ld, const CodeRows& v, float* o, float* work) {
  const int64_t hd = v.head_dim, rows2 = (v.rows + 1) / 2 * 2;
  // work: corr[nq], wscale[nq], then 16-bit weights [nq][rows2].
  float* corr = work;
  float* wscale = work + nq;
  uint16_t* u = reinterpret_cast<uint16_t*>(work + 2 * nq);
  // Rows j .. j + 15 (zero past v.rows): w = p * s and the zero points.
  const auto load = [&](const float* pi, int64_t j, __m512* w, __m512* z) {
    const int64_t n = v.rows - j < 16 ? v.rows - j : 16;
    __m512 sc;
    row_params(v.params, j, v.rows, &sc, z);
    *w = _mm512_mul_ps(_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), pi + j), sc);
  };
  for (int64_t i = 0; i < nq; ++i) {
    const float* pi = p + i * ld;
    uint16_t* ui = u + i * rows2;
    __m512 mx = _mm512_setzero_ps(), w, z;
    for (int64_t j = 0; j < v.rows; j += 16) {
      load(pi, j, &w, &z);
      mx = _mm512_max_ps(mx, w);
    }
    const float wmax = _mm512_reduce_max_ps(mx);
    for (int64_t j = v.rows; j < rows2; ++j) ui[j] = 0;
    corr[i] = 0.0f;
    wscale[i] = 0.0f;
    if (!(wmax > 0.0f)) {
      for (int64_t j = 0; j < v.rows; ++j) ui[j] = 0;
      continue;
    }
    const __m512 inv = _mm512_set1_ps(static_cast<float>(kCodeTileWeightMax) / wmax);
    // u * z is an integer far below 2^53 (kv_code_tiles.h): every partial sum is exact in
    // double, so the order does not matter (the reference sums in row order).
    __m512d c0 = _mm512_setzero_pd(), c1 = _mm512_setzero_pd();
    for (int64_t j = 0; j < v.rows; j += 16) {
      load(pi, j, &w, &z);
      const __m512i q =
          _mm512_min_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(w, inv)), _mm512_set1_epi32(kCodeTileWeightMax));
      const int64_t n = v.rows - j < 16 ? v.rows - j : 16;
      _mm256_mask_storeu_epi16(ui + j, static_cast<__mmask16>((1u << n) - 1), _mm512_cvtepi32_epi16(q));
      const __m512 qf = _mm512_cvtepi32_ps(q);
      c0 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(qf)), _mm512_cvtps_pd(_mm512_castps512_ps256(z)), c0);
      c1 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(qf, 1)),
                           _mm512_cvtps_pd(_mm512_extractf32x8_ps(z, 1)), c1);
    }
    corr[i] = static_cast<float>(_mm512_reduce_add_pd(_mm512_add_pd(c0, c1)));
    wscale[i] = wmax / static_cast<float>(kCodeTileWeightMax);
  }
  static const Widen wd;
  for (int64_t s = 0; s < hd / kSegment; ++s) {
    for (int64_t i = 0; i < nq; i += kMaxQueries) {
      const uint16_t* ub = u + i * rows2;
      switch (nq - i >= kMaxQueries ? kMaxQueries : nq - i) {
        case 3: sum_block<3>(ub, rows2, rows2, v, s, wd, corr + i, wscale + i, o + i * hd, hd); break;
        case 2: sum_block<2>(ub, rows2, rows2, v, s, wd, corr + i, wscale + i, o + i * hd, hd); break;
        default: sum_block<1>(ub, rows2, rows2, v, s, wd, corr + i, wscale + i, o + i * hd, hd); break;
      }
    }
  }
}

}  // namespace

const CodeTileKernels& code_tile_kernels_int8_avx512vbmi() {
  static const CodeTileKernels k{scores, weighted_sum};
  return k;
}

}  // namespace quarot::kv_detail
