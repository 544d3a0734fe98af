// AVX-512 kernels for codebook_gemm.
// GEMV: sixteen rows of a group of 32 / b same-width columns are one 16-lane vector of
// the repacked words (kernels/cpu/codebook_lanes.h), loaded once, aligned (loads at byte
// offsets split across cache lines: 1.1-1.5x slower); column f is that vector shifted
// right by the immediate b f, and one vpermps
// (which reads bits 0..3) looks the weight up in the column's FP32 table: a 16-entry
// table is exactly one zmm, smaller ones (8 stored floats, repeated) are broadcast to
// fill it. 3 instructions per 16 weights (shift, permute, FMA). For one activation row
// the 2-bit columns go two at a time through pair tables (x folded in, 16 entries: one
// zmm), 3 instructions per 32 weights: 1.6-1.8x faster at 2 bits on the 2-vCPU EPYC.
// Prefill panels (decode16): two 4-byte broadcasts of the file's stream (rows 0..7 and
// 8..15, b bytes apart) blended into one register and a per-lane variable shift put
// index j in lane j's low bits, then the same permute of the FP16 table widened.
// Widths 5..8 take a scalar-lookup path from the stream.
// Internal linkage except the table (see codebook_gemm_kernels.h on the ODR).
#include <immintrin.h>

#include <cstring>
#include <utility>

#include "kernels/cpu/codebook_gemm_kernels.h"

namespace quarot::codebook_detail {
namespace {

constexpr int64_t kStripe = 64;

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Position k's 2^B centroids as 16 FP32 lanes, lane m holding entry m mod 2^B.
template <int B>
inline __m512 load_table(const uint16_t* t) {
  if constexpr (B == 4) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t)));
  } else {
    __m128i h;
    if constexpr (B == 3) {
      h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(t));
    } else if constexpr (B == 2) {
      uint64_t v;
      std::memcpy(&v, t, 8);
      h = _mm_cvtsi64_si128(static_cast<long long>(v));
    } else {
      h = _mm_cvtsi32_si128(static_cast<int>(load_u32(reinterpret_cast<const uint8_t*>(t))));
    }
    const __m512 f = _mm512_cvtph_ps(_mm256_zextsi128_si256(h));
    constexpr int n = 1 << B;
    const __m512i rep = _mm512_setr_epi32(0 % n, 1 % n, 2 % n, 3 % n, 4 % n, 5 % n, 6 % n, 7 % n, 8 % n, 9 % n,
                                          10 % n, 11 % n, 12 % n, 13 % n, 14 % n, 15 % n);
    return _mm512_permutexvar_ps(rep, f);
  }
}

template <int B>
inline __m512i lane_shifts() {
  return _mm512_setr_epi32(0, B, 2 * B, 3 * B, 4 * B, 5 * B, 6 * B, 7 * B, 0, B, 2 * B, 3 * B, 4 * B, 5 * B, 6 * B,
                           7 * B);
}

// The 16 weights of rows 16 q .. 16 q + 15 of a slice.
template <int B>
inline __m512 lookup16(const uint8_t* slice, int64_t q, __m512 table, __m512i shifts) {
  const uint8_t* p = slice + q * 2 * B;
  const __m512i v = _mm512_mask_blend_epi32(0xff00, _mm512_set1_epi32(static_cast<int>(load_u32(p))),
                                            _mm512_set1_epi32(static_cast<int>(load_u32(p + B))));
  return _mm512_permutexvar_ps(_mm512_srlv_epi32(v, shifts), table);
}

inline __m512 lookup16_wide(const uint8_t* slice, int64_t q, int b, const float* table) {
  alignas(64) float w[16];
  const uint64_t mask = (uint64_t{1} << b) - 1;
  for (int h = 0; h < 2; ++h) {
    uint64_t v;
    std::memcpy(&v, slice + (2 * q + h) * b, 8);  // <= 8 - b bytes past the slice: inside the padded stream
    for (int j = 0; j < 8; ++j) w[h * 8 + j] = table[(v >> (j * b)) & mask];
  }
  return _mm512_load_ps(w);
}

inline void widen_table(const uint16_t* t, int b, float* out) {
  for (int i = 0; i < (1 << b); i += 16)
    _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + i))));
}

// Field F of a group of width B for rows 16 q .. 16 q + 15 (q < Q) of the block: the
// group's words (loaded once, aligned: loads at byte offsets would split across cache
// lines) shifted right by B F; vpermps reads bits 0..3, and tables below 16 entries
// are repeated, so the fields above do not matter.
template <int M, int Q, int B, int F>
__attribute__((always_inline)) inline void lane_field(const __m512i (&words)[Q], const float* table, const float* x,
                                                      int64_t x_stride, __m512 (&acc)[M][Q]) {
  constexpr int kStride = B == 4 ? 16 : 8;
  __m512 t;
  if constexpr (B == 4) {
    t = _mm512_loadu_ps(table + F * kStride);
  } else {
    t = _mm512_broadcast_f32x8(_mm256_loadu_ps(table + F * kStride));
  }
  __m512 xb[M];
  for (int i = 0; i < M; ++i) xb[i] = _mm512_set1_ps(x[i * x_stride + F]);
  for (int q = 0; q < Q; ++q) {
    const __m512i idx = F == 0 ? words[q] : _mm512_srli_epi32(words[q], B * F);
    const __m512 wv = _mm512_permutexvar_ps(idx, t);
    for (int i = 0; i < M; ++i) acc[i][q] = _mm512_fmadd_ps(wv, xb[i], acc[i][q]);
  }
}

template <int M, int Q, int B, int... F>
__attribute__((always_inline)) inline void lane_group(const uint32_t* block, const float* table, const float* x,
                                                      int64_t x_stride, __m512 (&acc)[M][Q],
                                                      std::integer_sequence<int, F...>) {
  __m512i words[Q];
  for (int q = 0; q < Q; ++q) words[q] = _mm512_loadu_si512(block + 16 * q);
  (lane_field<M, Q, B, F>(words, table, x, x_stride, acc), ...);
}

// Widths 1..4 from the repacked words: every group of the width, all its fields.
template <int M, int Q, int B>
inline void accumulate_width(const CodebookView& w, int64_t stripe, int64_t row0, const float* xs,
                             __m512 (&acc_io)[M][Q]) {
  // A private copy: with the caller's array the compiler may store every accumulator
  // after each column, since the index loads might alias it.
  __m512 acc[M][Q];
  for (int i = 0; i < M; ++i)
    for (int q = 0; q < Q; ++q) acc[i][q] = acc_io[i][q];
  constexpr int kFields = 32 / B, kStride = B == 4 ? 16 : 8;
  const uint32_t* block = w.words + (stripe * w.groups_per_stripe + w.group_start[B]) * kStripe + row0;
  const float* table = w.tables + w.table_start[B];
  const float* x = xs + w.slot_start[B];
  for (int64_t g = w.group_start[B]; g < w.group_start[B + 1];
       ++g, block += kStripe, table += kFields * kStride, x += kFields)
    lane_group<M, Q, B>(block, table, x, w.x_stride, acc, std::make_integer_sequence<int, kFields>{});
  for (int i = 0; i < M; ++i)
    for (int q = 0; q < Q; ++q) acc_io[i][q] = acc[i][q];
}

// The 2-bit groups' fields two at a time from pair tables (CodebookView::pair_tables):
// pair p's 4-bit index is bits [4p, 4p + 4) of the words, which one vpermps looks up in
// its 16-entry table of T_2p[a] x_2p + T_2p+1[b] x_2p+1 (x already in). Even and odd
// pairs add into separate chains.
template <int Q>
inline void accumulate_pairs(const CodebookView& w, int64_t stripe, int64_t row0, __m512 (&acc_io)[Q]) {
  __m512 acc[2][Q];
  for (int q = 0; q < Q; ++q) {
    acc[0][q] = acc_io[q];
    acc[1][q] = _mm512_setzero_ps();
  }
  const uint32_t* block = w.words + (stripe * w.groups_per_stripe + w.group_start[2]) * kStripe + row0;
  const float* pt = w.pair_tables;
  for (int64_t g = w.group_start[2]; g < w.group_start[3]; ++g, block += kStripe, pt += 8 * 16) {
    // One aligned load of the words per 16 rows; each pair's field is a shift of it
    // (loads at byte offsets 1..3 would split across cache lines).
    __m512i words[Q];
    for (int q = 0; q < Q; ++q) words[q] = _mm512_loadu_si512(block + 16 * q);
    const auto pair = [&](auto p) {
      constexpr int P = decltype(p)::value;
      const __m512 t = _mm512_loadu_ps(pt + 16 * P);
      for (int q = 0; q < Q; ++q) {
        const __m512i idx = P == 0 ? words[q] : _mm512_srli_epi32(words[q], 4 * P);
        acc[P % 2][q] = _mm512_add_ps(_mm512_permutexvar_ps(idx, t), acc[P % 2][q]);
      }
    };
    [&]<int... P>(std::integer_sequence<int, P...>) { (pair(std::integral_constant<int, P>{}), ...); }(
        std::make_integer_sequence<int, 8>{});
  }
  for (int q = 0; q < Q; ++q) acc_io[q] = _mm512_add_ps(acc[0][q], acc[1][q]);
}

void pair_tables(const CodebookView& w, const float* xs, float* out) {
  const __m512i hi_index = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  constexpr int64_t kStride = 8;  // codebook_lane_table_stride(2)
  const int64_t pairs = (w.group_start[3] - w.group_start[2]) * 8;
  for (int64_t p = 0; p < pairs; ++p) {
    const int64_t slot = w.slot_start[2] + 2 * p;
    const float* t0 = w.tables + w.table_start[2] + (slot - w.slot_start[2]) * kStride;
    // Lane l: entry l mod 8 of the first table (entry m holds centroid m mod 4), and
    // entry l / 4 of the second.
    const __m512 lo = _mm512_broadcast_f32x8(_mm256_loadu_ps(t0));
    const __m512 hi = _mm512_permutexvar_ps(hi_index, _mm512_castps256_ps512(_mm256_loadu_ps(t0 + kStride)));
    _mm512_storeu_ps(out + 16 * p,
                     _mm512_fmadd_ps(lo, _mm512_set1_ps(xs[slot]), _mm512_mul_ps(hi, _mm512_set1_ps(xs[slot + 1]))));
  }
}

// Rows 16 q0 .. 16 (q0 + Q) - 1 of the stripe for M activation rows.
template <int M, int Q>
void stripe_pass(const CodebookView& w, int64_t stripe, int64_t q0, const float* xs, float* out) {
  __m512 acc[M][Q];
  for (int i = 0; i < M; ++i)
    for (int q = 0; q < Q; ++q) acc[i][q] = _mm512_setzero_ps();
  accumulate_width<M, Q, 1>(w, stripe, 16 * q0, xs, acc);
  if (M == 1 && w.pair_tables != nullptr)
    accumulate_pairs<Q>(w, stripe, 16 * q0, acc[0]);
  else
    accumulate_width<M, Q, 2>(w, stripe, 16 * q0, xs, acc);
  accumulate_width<M, Q, 3>(w, stripe, 16 * q0, xs, acc);
  accumulate_width<M, Q, 4>(w, stripe, 16 * q0, xs, acc);
  const uint8_t* base = w.indices + stripe * w.stripe_bytes;
  for (int b = 5; b <= 8; ++b) {
    const uint8_t* slice = base + w.slice_start[b];
    const uint16_t* table = w.centroids + w.centroid_start[b];
    for (int64_t k = w.width_start[b]; k < w.width_start[b + 1]; ++k, slice += 8 * b, table += 1 << b) {
      alignas(64) float t[256];
      widen_table(table, b, t);
      const float* x = xs + w.wide_x + (k - w.width_start[5]);
      for (int q = 0; q < Q; ++q) {
        const __m512 wv = lookup16_wide(slice, q0 + q, b, t);
        for (int i = 0; i < M; ++i) acc[i][q] = _mm512_fmadd_ps(wv, _mm512_set1_ps(x[i * w.x_stride]), acc[i][q]);
      }
    }
  }
  for (int i = 0; i < M; ++i)
    for (int q = 0; q < Q; ++q) _mm512_storeu_ps(out + i * kStripe + (q0 + q) * 16, acc[i][q]);
}

// One pass over a half stripe: 2 x M accumulators (at most 16 of the 32 zmm registers).
template <int M>
void stripe_m(const CodebookView& w, int64_t stripe, int half, const float* xs, float* out) {
  stripe_pass<M, 2>(w, stripe, 2 * half, xs, out);
}

void gemv_stripe(const CodebookView& w, int64_t stripe, int half, const float* xs, int64_t n, float* out) {
  switch (n) {
    case 1: return stripe_m<1>(w, stripe, half, xs, out);
    case 2: return stripe_m<2>(w, stripe, half, xs, out);
    case 3: return stripe_m<3>(w, stripe, half, xs, out);
    case 4: return stripe_m<4>(w, stripe, half, xs, out);
    case 5: return stripe_m<5>(w, stripe, half, xs, out);
    case 6: return stripe_m<6>(w, stripe, half, xs, out);
    case 7: return stripe_m<7>(w, stripe, half, xs, out);
    default: return stripe_m<8>(w, stripe, half, xs, out);
  }
}

template <int B>
void decode_width(const CodebookView& w, const uint8_t* base, int64_t q, const int32_t* order, float* dst,
                  int64_t ld) {
  const __m512i shifts = lane_shifts<B>();
  const uint8_t* slice = base + w.slice_start[B];
  const uint16_t* table = w.centroids + w.centroid_start[B];
  for (int64_t k = w.width_start[B]; k < w.width_start[B + 1]; ++k, slice += 8 * B, table += 1 << B)
    _mm512_storeu_ps(dst + order[k] * ld, lookup16<B>(slice, q, load_table<B>(table), shifts));
}

void decode16(const CodebookView& w, int64_t r0, const int32_t* order, float* dst, int64_t ld) {
  const uint8_t* base = w.indices + (r0 / kStripe) * w.stripe_bytes;
  const int64_t q = (r0 % kStripe) / 16;
  decode_width<1>(w, base, q, order, dst, ld);
  decode_width<2>(w, base, q, order, dst, ld);
  decode_width<3>(w, base, q, order, dst, ld);
  decode_width<4>(w, base, q, order, dst, ld);
  for (int b = 5; b <= 8; ++b) {
    const uint8_t* slice = base + w.slice_start[b];
    const uint16_t* table = w.centroids + w.centroid_start[b];
    for (int64_t k = w.width_start[b]; k < w.width_start[b + 1]; ++k, slice += 8 * b, table += 1 << b) {
      alignas(64) float t[256];
      widen_table(table, b, t);
      _mm512_storeu_ps(dst + order[k] * ld, lookup16_wide(slice, q, b, t));
    }
  }
}

}  // namespace

const CodebookKernels& codebook_kernels_avx512() {
  static const CodebookKernels k{&gemv_stripe, &decode16, &pair_tables};
  return k;
}

}  // namespace quarot::codebook_detail
