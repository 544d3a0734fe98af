// AVX-512 VNNI prefill attention products (kv_prefill_int8.h): blocks of up to six
// query vectors x four 16-lane strips in 24 int32 accumulators (plus four loaded strips
// and one broadcast: 29 of the 32 zmm registers); each vpdpbusd adds 4 products per
// lane, so a block step of 4 dimensions (scores) or 4 keys (weighted sum) is 24
// instructions for 1536 multiply-adds. The accumulators are named, not an array: GCC
// keeps a local __m512i array partly on the stack and copies the tied operand of
// every vpdpbusd (seen in int_gemm's tile loop), and even named ones need the asm
// below. Same bits as the scalar reference.
// Internal linkage except the table (ODR).
#include <immintrin.h>

// GCC 12 warns inside its own _mm512_cvtepi32_ps (an intentionally undefined
// pass-through operand); nothing here is uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/kv_prefill_int8.h"

namespace quarot::kv_detail {
namespace {

constexpr int kRows = 6;

__m512i broadcast4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// acc += u8(a) x s8(b), four per lane. Written as asm because GCC 12's register
// allocation around the vpdpbusd builtin spilled most of the 24 accumulators to the
// stack and reloaded them every step (2048-token SmolLM2 prefill attention, 2 threads: 25.5
// ms against 18.2 with the asm); "+v" keeps each one in its register.
inline void dpbusd(__m512i& acc, __m512i a, __m512i b) { asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b)); }

#define QUAROT_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define QUAROT_DECLARE(r)                                                                   \
  __m512i c##r##0 = _mm512_setzero_si512(), c##r##1 = _mm512_setzero_si512(),             \
          c##r##2 = _mm512_setzero_si512(), c##r##3 = _mm512_setzero_si512();

// R rows x S strips of 16 (keys for scores, dimensions for the weighted sum); b0..b3 are
// the step's strips, a(r) the row's 4 broadcast bytes.
#define QUAROT_STEP(r)                                                     \
  if constexpr (R > r) {                                                   \
    const __m512i x = broadcast4(a_row(r));                                \
    dpbusd(c##r##0, x, b0);                                                \
    if constexpr (S > 1) dpbusd(c##r##1, x, b1);                           \
    if constexpr (S > 2) dpbusd(c##r##2, x, b2);                           \
    if constexpr (S > 3) dpbusd(c##r##3, x, b3);                           \
  }

// Stores rows 0..R-1, strips 0..S-1 of the accumulators through the function's own
// QUAROT_STORE_STRIP(r, st), with f = the row's factor (row_factor[r]) broadcast.
#define QUAROT_STORE(r)                             \
  if constexpr (R > r) {                            \
    const __m512 f = _mm512_set1_ps(row_factor[r]); \
    QUAROT_STORE_STRIP(r, 0)                        \
    QUAROT_STORE_STRIP(r, 1)                        \
    QUAROT_STORE_STRIP(r, 2)                        \
    QUAROT_STORE_STRIP(r, 3)                        \
  }

template <int R, int S>
__attribute__((noinline)) void scores_block(const uint8_t* qu, int64_t hd, const int8_t* kq, const int32_t* kcorr,
                                            const float* kscale, const float* qfactor, float* s, int64_t ld) {
  QUAROT_ROWS(QUAROT_DECLARE)
  for (int64_t d4 = 0; d4 < hd / 4; ++d4) {
    const int8_t* k = kq + d4 * kPrefillKeys * 4;
    const __m512i b0 = _mm512_loadu_si512(k);
    const __m512i b1 = S > 1 ? _mm512_loadu_si512(k + 64) : b0;
    const __m512i b2 = S > 2 ? _mm512_loadu_si512(k + 128) : b0;
    const __m512i b3 = S > 3 ? _mm512_loadu_si512(k + 192) : b0;
    auto a_row = [&](int r) { return qu + r * hd + d4 * 4; };
    QUAROT_ROWS(QUAROT_STEP)
  }
#define QUAROT_STORE_STRIP(r, st)                                                                        \
  if constexpr (S > st) {                                                                                \
    const __m512i x = _mm512_sub_epi32(c##r##st, _mm512_loadu_si512(kcorr + 16 * st));                   \
    const __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(x), f);                                            \
    _mm512_storeu_ps(s + r * ld + 16 * st, _mm512_mul_ps(t, _mm512_loadu_ps(kscale + 16 * st)));         \
  }
  const float* row_factor = qfactor;
  QUAROT_ROWS(QUAROT_STORE)
#undef QUAROT_STORE_STRIP
}

template <int R>
void scores_rows(const uint8_t* qu, int64_t hd, const int8_t* kq, const int32_t* kcorr, const float* kscale,
                 int64_t strips, const float* qfactor, float* s, int64_t ld) {
  switch (strips) {
    case 4: return scores_block<R, 4>(qu, hd, kq, kcorr, kscale, qfactor, s, ld);
    case 3: return scores_block<R, 3>(qu, hd, kq, kcorr, kscale, qfactor, s, ld);
    case 2: return scores_block<R, 2>(qu, hd, kq, kcorr, kscale, qfactor, s, ld);
    default: return scores_block<R, 1>(qu, hd, kq, kcorr, kscale, qfactor, s, ld);
  }
}

// f.template operator()<R>(i) over blocks of kRows query rows, then the 1..5 left.
template <typename F>
void for_row_blocks(int64_t nq, F&& f) {
  int64_t i = 0;
  for (; i + kRows <= nq; i += kRows) f.template operator()<kRows>(i);
  switch (nq - i) {
    case 5: f.template operator()<5>(i); break;
    case 4: f.template operator()<4>(i); break;
    case 3: f.template operator()<3>(i); break;
    case 2: f.template operator()<2>(i); break;
    case 1: f.template operator()<1>(i); break;
    default: break;
  }
}

void scores(const uint8_t* qu, int64_t nq, int64_t hd, const int8_t* kq, const int32_t* kcorr, const float* kscale,
            int64_t keys, const float* qfactor, float* s, int64_t ld) {
  const int64_t strips = std::min<int64_t>(4, (keys + 15) / 16);
  if (strips <= 0) return;
  for_row_blocks(nq, [&]<int R>(int64_t i) {
    scores_rows<R>(qu + i * hd, hd, kq, kcorr, kscale, strips, qfactor + i, s + i * ld, ld);
  });
}

// Dimensions d0 .. d0 + 16 * S - 1 of R weight rows.
template <int R, int S>
__attribute__((noinline)) void weighted_block(const uint8_t* u, int64_t ldu, const int8_t* vq, int64_t keys4,
                                              int64_t hd, const float* wscale, float* o) {
  QUAROT_ROWS(QUAROT_DECLARE)
  for (int64_t j4 = 0; j4 < keys4 / 4; ++j4) {
    const int8_t* v = vq + j4 * hd * 4;
    const __m512i b0 = _mm512_loadu_si512(v);
    const __m512i b1 = S > 1 ? _mm512_loadu_si512(v + 64) : b0;
    const __m512i b2 = S > 2 ? _mm512_loadu_si512(v + 128) : b0;
    const __m512i b3 = S > 3 ? _mm512_loadu_si512(v + 192) : b0;
    auto a_row = [&](int r) { return u + r * ldu + j4 * 4; };
    QUAROT_ROWS(QUAROT_STEP)
  }
#define QUAROT_STORE_STRIP(r, st)                                                               \
  if constexpr (S > st) {                                                                       \
    float* dst = o + r * hd + 16 * st;                                                          \
    _mm512_storeu_ps(dst, _mm512_fmadd_ps(f, _mm512_cvtepi32_ps(c##r##st), _mm512_loadu_ps(dst)));  \
  }
  const float* row_factor = wscale;
  QUAROT_ROWS(QUAROT_STORE)
#undef QUAROT_STORE_STRIP
}

template <int R>
void weighted_rows(const uint8_t* u, int64_t ldu, const int8_t* vq, int64_t keys4, int64_t hd, const float* wscale,
                   float* o) {
  int64_t d0 = 0;
  for (; d0 + 64 <= hd; d0 += 64) weighted_block<R, 4>(u, ldu, vq + d0 * 4, keys4, hd, wscale, o + d0);
  switch ((hd - d0) / 16) {
    case 3: weighted_block<R, 3>(u, ldu, vq + d0 * 4, keys4, hd, wscale, o + d0); break;
    case 2: weighted_block<R, 2>(u, ldu, vq + d0 * 4, keys4, hd, wscale, o + d0); break;
    case 1: weighted_block<R, 1>(u, ldu, vq + d0 * 4, keys4, hd, wscale, o + d0); break;
    default: break;
  }
}

void weighted_sum(const uint8_t* u, int64_t nq, int64_t ldu, const int8_t* vq, int64_t keys, int64_t hd,
                  const float* wscale, float* o) {
  const int64_t keys4 = (keys + 3) / 4 * 4;
  for_row_blocks(nq, [&]<int R>(int64_t i) {
    weighted_rows<R>(u + i * ldu, ldu, vq, keys4, hd, wscale + i, o + i * hd);
  });
}

#undef QUAROT_STORE
#undef QUAROT_STEP
#undef QUAROT_DECLARE
#undef QUAROT_ROWS

// Codes of 16 floats: nearest integer (the default rounding mode, ties to even, as
// nearbyint) of x * inverse, clamped to [-127, 127].
__m512i codes16(const float* x, __m512 inverse) {
  const __m512i c = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x), inverse));
  return _mm512_min_epi32(_mm512_max_epi32(c, _mm512_set1_epi32(-127)), _mm512_set1_epi32(127));
}

// max|x| over hd (a multiple of 16) floats.
float abs_max(const float* x, int64_t hd) {
  __m512 mx = _mm512_setzero_ps();
  for (int64_t d = 0; d < hd; d += 16) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(x + d)));
  return _mm512_reduce_max_ps(mx);
}

struct RowScale {
  float scale, inverse;
};
RowScale row_scale(const float* x, int64_t hd, const float* given, int64_t r) {
  if (given != nullptr && given[r] > 0.0f) return {given[r], 1.0f / given[r]};
  const float mx = abs_max(x, hd);
  if (!(mx > 0.0f)) return {0.0f, 0.0f};
  return {mx / 127.0f, 127.0f / mx};
}

void quantize_keys(const float* x, int64_t rows, int64_t stride, int64_t hd, int64_t j0, const float* given,
                   int8_t* kq, float* kscale, int32_t* kcorr) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * stride;
    const RowScale rs = row_scale(row, hd, given, r);
    const __m512 inverse = _mm512_set1_ps(rs.inverse);
    __m512i sum = _mm512_setzero_si512();
    for (int64_t d = 0; d < hd; d += 16) {
      const __m512i c = codes16(row + d, inverse);
      sum = _mm512_add_epi32(sum, c);
      // 16 codes = 4 groups of 4 dimensions, each group in its own 256-byte row of the tile.
      alignas(16) int32_t groups[4];
      _mm_store_si128(reinterpret_cast<__m128i*>(groups), _mm512_cvtepi32_epi8(c));
      for (int g = 0; g < 4; ++g) std::memcpy(kq + (d / 4 + g) * (kPrefillKeys * 4) + (j0 + r) * 4, &groups[g], 4);
    }
    kscale[r] = rs.scale;
    kcorr[r] = 128 * _mm512_reduce_add_epi32(sum);
  }
}

void quantize_values(const float* x, int64_t rows, int64_t stride, int64_t hd, int64_t j0, const float* given,
                     int8_t* vq, float* vscale) {
  // Four positions at a time: byte r of each dimension's 4-byte group is position j + r.
  for (int64_t r0 = 0; r0 < rows; r0 += 4) {
    __m512 inverse[4];
    for (int r = 0; r < 4; ++r) {
      if (r0 + r < rows) {
        const RowScale rs = row_scale(x + (r0 + r) * stride, hd, given, r0 + r);
        vscale[r0 + r] = rs.scale;
        inverse[r] = _mm512_set1_ps(rs.inverse);
      }
    }
    const int64_t j = j0 + r0;
    for (int64_t d = 0; d < hd; d += 16) {
      __m512i packed = _mm512_setzero_si512();
      for (int r = 0; r < 4 && r0 + r < rows; ++r) {
        const __m512i c = _mm512_and_si512(codes16(x + (r0 + r) * stride + d, inverse[r]), _mm512_set1_epi32(0xff));
        packed = _mm512_or_si512(packed, _mm512_slli_epi32(c, 8 * r));
      }
      _mm512_storeu_si512(vq + (j / 4) * hd * 4 + d * 4, packed);
    }
  }
}

void quantize_queries(const float* q, int64_t nq, int64_t hd, float factor, uint8_t* qu, float* qfactor) {
  const __m512i bias = _mm512_set1_epi32(128);
  for (int64_t i = 0; i < nq; ++i) {
    const RowScale rs = row_scale(q + i * hd, hd, nullptr, 0);
    const __m512 inverse = _mm512_set1_ps(rs.inverse);
    for (int64_t d = 0; d < hd; d += 16)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(qu + i * hd + d),
                       _mm512_cvtepi32_epi8(_mm512_add_epi32(codes16(q + i * hd + d, inverse), bias)));
    qfactor[i] = factor * rs.scale;
  }
}

// fast_exp2 (fast_math.h) on 16 lanes: the same polynomial and exponent clamp as the
// AVX2 tiles' exp2_8.
__m512 exp2_16(__m512 y) {
  const __m512 whole = _mm512_roundscale_ps(y, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  const __m512 g = _mm512_mul_ps(_mm512_sub_ps(_mm512_sub_ps(y, whole), _mm512_set1_ps(0.5f)),
                                 _mm512_set1_ps(0.6931471805599453f));
  __m512 e = _mm512_set1_ps(1.0f / 720);
  e = _mm512_fmadd_ps(g, e, _mm512_set1_ps(1.0f / 120));
  e = _mm512_fmadd_ps(g, e, _mm512_set1_ps(1.0f / 24));
  e = _mm512_fmadd_ps(g, e, _mm512_set1_ps(1.0f / 6));
  e = _mm512_fmadd_ps(g, e, _mm512_set1_ps(0.5f));
  e = _mm512_fmadd_ps(g, e, _mm512_set1_ps(1.0f));
  e = _mm512_fmadd_ps(g, e, _mm512_set1_ps(1.0f));
  __m512i k = _mm512_cvttps_epi32(whole);  // whole is integral: exact
  k = _mm512_min_epi32(_mm512_max_epi32(k, _mm512_set1_epi32(-126)), _mm512_set1_epi32(127));
  const __m512 scale = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(k, _mm512_set1_epi32(127)), 23));
  return _mm512_mul_ps(_mm512_mul_ps(scale, _mm512_set1_ps(1.4142135623730951f)), e);
}

// One row in four registers: one pass for the max, one for exp / sum / weights, one for
// the codes, nothing written back but the codes.
void softmax_one(const float* s, int64_t visible, const __m512 (&vs)[4], float* m, uint8_t* u, float* wscale,
                 float* row_sum) {
  constexpr float kLog2e = 1.4426950408889634f;
  __mmask16 mask[4];
  __m512 x[4];
  __m512 mx = _mm512_set1_ps(*m);
  for (int t = 0; t < 4; ++t) {
    const int64_t left = std::clamp<int64_t>(visible - 16 * t, 0, 16);
    mask[t] = static_cast<__mmask16>((uint32_t{1} << left) - 1);
    x[t] = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), mask[t], s + 16 * t);
    mx = _mm512_max_ps(mx, x[t]);
  }
  const float row_max = _mm512_reduce_max_ps(mx);
  *m = row_max;
  const __m512 l2e = _mm512_set1_ps(kLog2e), shift = _mm512_set1_ps(row_max * kLog2e), lo = _mm512_set1_ps(-150.0f);
  __m512 sum = _mm512_setzero_ps(), wmax = _mm512_setzero_ps();
  __m512 w[4];
  for (int t = 0; t < 4; ++t) {
    const __m512 p = _mm512_maskz_mov_ps(mask[t], exp2_16(_mm512_max_ps(_mm512_fmsub_ps(x[t], l2e, shift), lo)));
    sum = _mm512_add_ps(sum, p);
    w[t] = _mm512_mul_ps(p, vs[t]);  // p is 0 past the row's keys, vs finite there
    wmax = _mm512_max_ps(wmax, w[t]);
  }
  const float top = _mm512_reduce_max_ps(wmax);
  *row_sum = _mm512_reduce_add_ps(sum);
  if (!(top > 0.0f)) {
    std::memset(u, 0, kPrefillKeys);
    *wscale = 0.0f;
    return;
  }
  const __m512 inverse = _mm512_set1_ps(255.0f / top), half = _mm512_set1_ps(0.5f);
  for (int t = 0; t < 4; ++t) {
    const __m512i c = _mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(w[t], inverse), half));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(u + 16 * t), _mm512_cvtepi32_epi8(c));
  }
  *wscale = top / 255.0f;
}

// The value scales of the keys any of the rows sees (the rest read as zero: a tile's
// scales past its last key need not be initialized).
void load_vscale(const float* vscale, const int64_t* visible, int64_t nq, __m512 (&vs)[4]) {
  int64_t most = 0;
  for (int64_t i = 0; i < nq; ++i) most = visible[i] > most ? visible[i] : most;
  for (int t = 0; t < 4; ++t) {
    const int64_t left = std::clamp<int64_t>(most - 16 * t, 0, 16);
    vs[t] = _mm512_maskz_loadu_ps(static_cast<__mmask16>((uint32_t{1} << left) - 1), vscale + 16 * t);
  }
}

float softmax_row(const float* s, int64_t visible, const float* vscale, float* m, uint8_t* u, float* wscale) {
  __m512 vs[4];
  load_vscale(vscale, &visible, 1, vs);
  float sum = 0.0f;
  softmax_one(s, visible, vs, m, u, wscale, &sum);
  return sum;
}

// Lane r of the result = v[r] reduced by `op` (max or add) over its 16 lanes, pairing
// lanes as GCC's _mm512_reduce_add_ps / _max_ps do (j with j + 8, then j + 4, j + 2,
// j + 1), so each lane's value is that intrinsic's on its row, bit for bit. Sixteen rows
// at once take 46 operations instead of 16 reductions' ~130, and no serial chain.
template <class Op>
inline __m512 reduce16(const __m512* v, Op op) {
  __m512 a[8], b[4], c[2];
  // Rows 2i and 2i + 1: lanes j + (j + 8) of each, as 256-bit halves.
  for (int i = 0; i < 8; ++i)
    a[i] = op(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44), _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
  // Quarters: j + (j + 4) inside each half; rows (4i, 4i + 1, 4i + 2, 4i + 3) by quarter.
  for (int i = 0; i < 4; ++i)
    b[i] = op(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x88), _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xDD));
  // Inside each quarter: j + (j + 2), two rows per quarter (lanes 0-1: b[2i]'s, 2-3: b[2i+1]'s).
  for (int i = 0; i < 2; ++i)
    c[i] = op(_mm512_shuffle_ps(b[2 * i], b[2 * i + 1], 0x44), _mm512_shuffle_ps(b[2 * i], b[2 * i + 1], 0xEE));
  // j + (j + 1): one lane per row.
  const __m512 d = op(_mm512_shuffle_ps(c[0], c[1], 0x88), _mm512_shuffle_ps(c[0], c[1], 0xDD));
  // Lane 4k + l of d holds row 4l + k (b[i]'s quarter k is row 4i + k; c[i] keeps rows
  // 8i + k and 8i + 4 + k in quarter k; d interleaves c[0] and c[1]): put row r in lane r.
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), d);
}

// Sixteen rows (or fewer: rows >= count are skipped); softmax_one's operations per row,
// its three reductions done sixteen rows at a time by reduce16 (the same bits). One row
// at a time, the reductions' shuffles and latency chains were most of the softmax.
void softmax_16(const float* s, int64_t ld, int64_t count, const int64_t* visible, const __m512 (&vs)[4], float* m,
                uint8_t* u, int64_t ldu, float* wscale, float* sums) {
  constexpr float kLog2e = 1.4426950408889634f;
  const auto vmax = [](__m512 a, __m512 b) { return _mm512_max_ps(a, b); };
  const auto vadd = [](__m512 a, __m512 b) { return _mm512_add_ps(a, b); };
  alignas(64) __m512 part[16];
  alignas(64) float w[16][kPrefillKeys];
  __mmask16 mask[16][4];
  for (int r = 0; r < 16; ++r) {
    __m512 mx = _mm512_set1_ps(r < count ? m[r] : 0.0f);
    for (int t = 0; t < 4; ++t) {
      const int64_t left = r < count ? std::clamp<int64_t>(visible[r] - 16 * t, 0, 16) : 0;
      mask[r][t] = static_cast<__mmask16>((uint32_t{1} << left) - 1);
      mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), mask[r][t], s + r * ld + 16 * t));
    }
    part[r] = mx;
  }
  alignas(64) float row_max[16], shift[16];
  _mm512_store_ps(row_max, reduce16(part, vmax));
  _mm512_store_ps(shift, _mm512_mul_ps(_mm512_load_ps(row_max), _mm512_set1_ps(kLog2e)));
  const __m512 l2e = _mm512_set1_ps(kLog2e), lo = _mm512_set1_ps(-150.0f);
  alignas(64) __m512 wpart[16];
  for (int r = 0; r < 16; ++r) {
    const __m512 sh = _mm512_set1_ps(shift[r]);
    __m512 sum = _mm512_setzero_ps(), wm = _mm512_setzero_ps();
    for (int t = 0; t < 4; ++t) {
      const __m512 x = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), mask[r][t], s + r * ld + 16 * t);
      const __m512 p = _mm512_maskz_mov_ps(mask[r][t], exp2_16(_mm512_max_ps(_mm512_fmsub_ps(x, l2e, sh), lo)));
      sum = _mm512_add_ps(sum, p);
      const __m512 wt = _mm512_mul_ps(p, vs[t]);  // p is 0 past the row's keys, vs finite there
      wm = _mm512_max_ps(wm, wt);
      _mm512_store_ps(w[r] + 16 * t, wt);
    }
    part[r] = sum;
    wpart[r] = wm;
  }
  alignas(64) float row_sum[16], top[16], inverse[16], scale[16];
  _mm512_store_ps(row_sum, reduce16(part, vadd));
  const __m512 tops = reduce16(wpart, vmax);
  _mm512_store_ps(top, tops);
  _mm512_store_ps(inverse, _mm512_div_ps(_mm512_set1_ps(255.0f), tops));
  _mm512_store_ps(scale, _mm512_div_ps(tops, _mm512_set1_ps(255.0f)));
  const __m512 half = _mm512_set1_ps(0.5f);
  for (int r = 0; r < count; ++r) {
    m[r] = row_max[r];
    sums[r] = row_sum[r];
    uint8_t* ur = u + r * ldu;
    if (!(top[r] > 0.0f)) {
      std::memset(ur, 0, kPrefillKeys);
      wscale[r] = 0.0f;
      continue;
    }
    const __m512 inv = _mm512_set1_ps(inverse[r]);
    for (int t = 0; t < 4; ++t) {
      const __m512i c = _mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(_mm512_load_ps(w[r] + 16 * t), inv), half));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(ur + 16 * t), _mm512_cvtepi32_epi8(c));
    }
    wscale[r] = scale[r];
  }
}

void softmax_rows(const float* s, int64_t ld, int64_t nq, const int64_t* visible, const float* vscale, float* m,
                  uint8_t* u, int64_t ldu, float* wscale, float* sums) {
  __m512 vs[4];
  load_vscale(vscale, visible, nq, vs);
  for (int64_t i = 0; i < nq; i += 16) {
    const int64_t count = nq - i < 16 ? nq - i : 16;
    softmax_16(s + i * ld, ld, count, visible + i, vs, m + i, u + i * ldu, ldu, wscale + i, sums + i);
  }
}

}  // namespace

const PrefillInt8Kernels& prefill_int8_kernels_avx512vnni() {
  static const PrefillInt8Kernels k{scores,          weighted_sum, quantize_keys, quantize_values,
                                    quantize_queries, softmax_row,  softmax_rows};
  return k;
}

}  // namespace quarot::kv_detail
