// AVX2 + FMA + F16C kernels for codebook_gemm.
// GEMV: eight rows of a group of 32 / b same-width columns are one 8-lane vector of the
// repacked words (kernels/cpu/codebook_lanes.h), loaded once per group, aligned (loads at
// byte offsets were 1.1-1.4x slower on Zen 4: some split across cache lines); column f is
// that vector shifted right by the immediate b f, and a
// permute looks the weight up in the column's FP32 table held in a register: vpermilps
// (in-lane, reads bits 0..1) for 2- and 4-entry tables, vpermps (reads bits 0..2) for
// 8 entries; tables are repeated to fill 8 lanes, so the fields above do not matter;
// 16-entry tables use two vpermps and a blend on bit 3.
// That is 3 instructions per 8 weights (shift, permute, FMA; 2 for field 0) plus, per
// column and pass, one table load and one broadcast per
// activation row.
// Prefill panels (decode16): one 4-byte broadcast and a per-lane variable shift put
// index j of the file's stream in lane j's low bits, then the same permutes.
// Widths 5..8 (not produced by CLAQ) take a slower scalar-lookup path from the stream.
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

// Position k's table (2^B centroids) widened to FP32: lo = entries 0..7 (repeated when
// B < 3), hi = entries 8..15 (B == 4 only).
template <int B>
inline void load_table(const uint16_t* t, __m256& lo, __m256& hi) {
  if constexpr (B == 4) {
    lo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t)));
    hi = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + 8)));
  } else if constexpr (B == 3) {
    lo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t)));
  } else if constexpr (B == 2) {
    uint64_t v;
    std::memcpy(&v, t, 8);
    const __m128 q = _mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<long long>(v)));
    lo = _mm256_set_m128(q, q);
  } else {
    const __m128 q = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(load_u32(reinterpret_cast<const uint8_t*>(t)))));
    const __m128 d = _mm_movelh_ps(q, q);  // t0 t1 t0 t1
    lo = _mm256_set_m128(d, d);
  }
}

template <int B>
inline __m256i lane_shifts() {
  return _mm256_setr_epi32(0, B, 2 * B, 3 * B, 4 * B, 5 * B, 6 * B, 7 * B);
}

// The 8 weights of rows 8 g .. 8 g + 7 of a slice.
template <int B>
inline __m256 lookup8(const uint8_t* slice, int64_t g, __m256 lo, __m256 hi, __m256i shifts, __m256i sel_shifts) {
  const __m256i v = _mm256_set1_epi32(static_cast<int>(load_u32(slice + g * B)));
  const __m256i idx = _mm256_srlv_epi32(v, shifts);
  const __m256 wl = _mm256_permutevar8x32_ps(lo, idx);
  if constexpr (B == 4) {
    // Bit 3 of index j sits at bit 4 j + 3; shifting it to bit 31 drives the blend.
    const __m256 sel = _mm256_castsi256_ps(_mm256_sllv_epi32(v, sel_shifts));
    return _mm256_blendv_ps(wl, _mm256_permutevar8x32_ps(hi, idx), sel);
  } else {
    return wl;
  }
}

// Scalar lookups for widths 5..8: table in FP32, indices from a 64-bit load.
inline __m256 lookup8_wide(const uint8_t* slice, int64_t g, int b, const float* table) {
  uint64_t v;
  std::memcpy(&v, slice + g * b, 8);  // <= 8 - b bytes past the slice: inside the padded stream
  alignas(32) float w[8];
  const uint64_t mask = (uint64_t{1} << b) - 1;
  for (int j = 0; j < 8; ++j) w[j] = table[(v >> (j * b)) & mask];
  return _mm256_load_ps(w);
}

inline void widen_table(const uint16_t* t, int b, float* out) {
  for (int i = 0; i < (1 << b); i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + i))));
}

// Field F of a group of width B for rows 8 g .. 8 g + 7 (g < G) of the block: the
// group's words (loaded once, aligned) shifted right by B F, so the field is in each
// lane's low bits; vpermps ignores the fields above it.
template <int M, int G, int B, int F>
__attribute__((always_inline)) inline void lane_field(const __m256i (&words)[G], const float* table, const float* x,
                                                      int64_t x_stride, __m256 (&acc)[M][G]) {
  constexpr int kShift = B * F;
  constexpr int kStride = B == 4 ? 16 : 8;
  __m256 lo = _mm256_load_ps(table + F * kStride);
  __m256 hi = lo;
  if constexpr (B == 4) hi = _mm256_load_ps(table + F * kStride + 8);
  // Keep the tables in registers: left alone, GCC folds the load into every vpermps
  // (a memory operand per 8 weights), measured 9% slower on Zen 3 (0.71 vs 0.66 ns per
  // 8 weights at 3 bits).
  asm("" : "+x"(lo), "+x"(hi));
  __m256 xb[M];
  for (int i = 0; i < M; ++i) xb[i] = _mm256_broadcast_ss(x + i * x_stride + F);
  for (int g = 0; g < G; ++g) {
    const __m256i v = words[g];
    __m256i idx = v;
    if constexpr (kShift != 0) idx = _mm256_srli_epi32(v, kShift);
    // Up to 4 entries: the in-lane vpermilps (bits 0..1, the table repeated in both
    // 128-bit lanes) is much cheaper than the cross-lane vpermps on Zen 3 (measured:
    // 0.40 vs 0.69 ns per 8 weights, bench in docs/results/2026-12-02-epyc2-claq-gemv).
    __m256 wv;
    if constexpr (B <= 2) {
      wv = _mm256_permutevar_ps(lo, idx);
    } else {
      wv = _mm256_permutevar8x32_ps(lo, idx);
    }
    if constexpr (B == 4) {
      // Bit 3 of the field (bit kShift + 3 of v) to bit 31 drives the blend.
      const __m256 sel = _mm256_castsi256_ps(_mm256_slli_epi32(v, 28 - kShift));
      wv = _mm256_blendv_ps(wv, _mm256_permutevar8x32_ps(hi, idx), sel);
    }
    for (int i = 0; i < M; ++i) acc[i][g] = _mm256_fmadd_ps(wv, xb[i], acc[i][g]);
  }
}

template <int M, int G, int B, int... F>
__attribute__((always_inline)) inline void lane_group(const uint32_t* block, const float* table, const float* x,
                                                      int64_t x_stride, __m256 (&acc)[M][G],
                                                      std::integer_sequence<int, F...>) {
  __m256i words[G];
  for (int g = 0; g < G; ++g) words[g] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 8 * g));
  (lane_field<M, G, B, F>(words, table, x, x_stride, acc), ...);
}

// Widths 1..4 from the repacked words: every group of the width, all its fields.
template <int M, int G, int B>
inline void accumulate_width(const CodebookView& w, int64_t stripe, int64_t row0, const float* xs,
                             __m256 (&acc_io)[M][G]) {
  // A private copy: with the caller's array the compiler may store every accumulator
  // after each column, since the index loads might alias it.
  __m256 acc[M][G];
  for (int i = 0; i < M; ++i)
    for (int g = 0; g < G; ++g) acc[i][g] = acc_io[i][g];
  constexpr int kFields = 32 / B, kStride = B == 4 ? 16 : 8;
  const uint32_t* block = w.words + (stripe * w.groups_per_stripe + w.group_start[B]) * kStripe + row0;
  const float* table = w.tables + w.table_start[B];
  const float* x = xs + w.slot_start[B];
  for (int64_t g = w.group_start[B]; g < w.group_start[B + 1];
       ++g, block += kStripe, table += kFields * kStride, x += kFields)
    lane_group<M, G, B>(block, table, x, w.x_stride, acc, std::make_integer_sequence<int, kFields>{});
  for (int i = 0; i < M; ++i)
    for (int g = 0; g < G; ++g) acc_io[i][g] = acc[i][g];
}

// Rows 8 g0 .. 8 (g0 + G) - 1 of the stripe for M activation rows.
template <int M, int G>
void stripe_pass(const CodebookView& w, int64_t stripe, int64_t g0, const float* xs, float* out) {
  __m256 acc[M][G];
  for (int i = 0; i < M; ++i)
    for (int g = 0; g < G; ++g) acc[i][g] = _mm256_setzero_ps();
  accumulate_width<M, G, 1>(w, stripe, 8 * g0, xs, acc);
  accumulate_width<M, G, 2>(w, stripe, 8 * g0, xs, acc);
  accumulate_width<M, G, 3>(w, stripe, 8 * g0, xs, acc);
  accumulate_width<M, G, 4>(w, stripe, 8 * g0, xs, acc);
  const uint8_t* base = w.indices + stripe * w.stripe_bytes;
  for (int b = 5; b <= 8; ++b) {
    const uint8_t* slice = base + w.slice_start[b];
    const uint16_t* table = w.centroids + w.centroid_start[b];
    for (int64_t k = w.width_start[b]; k < w.width_start[b + 1]; ++k, slice += 8 * b, table += 1 << b) {
      alignas(32) float t[256];
      widen_table(table, b, t);
      const float* x = xs + w.wide_x + (k - w.width_start[5]);
      for (int g = 0; g < G; ++g) {
        const __m256 wv = lookup8_wide(slice, g0 + g, b, t);
        for (int i = 0; i < M; ++i)
          acc[i][g] = _mm256_fmadd_ps(wv, _mm256_broadcast_ss(x + i * w.x_stride), acc[i][g]);
      }
    }
  }
  for (int i = 0; i < M; ++i)
    for (int g = 0; g < G; ++g) _mm256_storeu_ps(out + i * kStripe + (g0 + g) * 8, acc[i][g]);
}

// Accumulators per pass: M x G registers of 8 rows, at most 8 so tables, shifts and
// broadcasts still fit in the 16 ymm registers; G at most 4 (a half stripe).
template <int M>
void stripe_m(const CodebookView& w, int64_t stripe, int half, const float* xs, float* out) {
  constexpr int G = M <= 2 ? 4 : M <= 4 ? 2 : 1;
  constexpr int64_t kHalfGroups = kStripe / 16;
  for (int64_t g0 = half * kHalfGroups; g0 < (half + 1) * kHalfGroups; g0 += G) stripe_pass<M, G>(w, stripe, g0, xs, out);
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
void decode_width(const CodebookView& w, const uint8_t* base, int64_t g0, const int32_t* order, float* dst,
                  int64_t ld) {
  const __m256i shifts = lane_shifts<B>();
  const __m256i sel_shifts = _mm256_setr_epi32(28, 24, 20, 16, 12, 8, 4, 0);
  const uint8_t* slice = base + w.slice_start[B];
  const uint16_t* table = w.centroids + w.centroid_start[B];
  for (int64_t k = w.width_start[B]; k < w.width_start[B + 1]; ++k, slice += 8 * B, table += 1 << B) {
    __m256 lo, hi = _mm256_setzero_ps();
    load_table<B>(table, lo, hi);
    float* d = dst + order[k] * ld;
    _mm256_storeu_ps(d, lookup8<B>(slice, g0, lo, hi, shifts, sel_shifts));
    _mm256_storeu_ps(d + 8, lookup8<B>(slice, g0 + 1, lo, hi, shifts, sel_shifts));
  }
}

void decode16(const CodebookView& w, int64_t r0, const int32_t* order, float* dst, int64_t ld) {
  const uint8_t* base = w.indices + (r0 / kStripe) * w.stripe_bytes;
  const int64_t g0 = (r0 % kStripe) / 8;
  decode_width<1>(w, base, g0, order, dst, ld);
  decode_width<2>(w, base, g0, order, dst, ld);
  decode_width<3>(w, base, g0, order, dst, ld);
  decode_width<4>(w, base, g0, order, dst, ld);
  for (int b = 5; b <= 8; ++b) {
    const uint8_t* slice = base + w.slice_start[b];
    const uint16_t* table = w.centroids + w.centroid_start[b];
    for (int64_t k = w.width_start[b]; k < w.width_start[b + 1]; ++k, slice += 8 * b, table += 1 << b) {
      alignas(32) float t[256];
      widen_table(table, b, t);
      float* d = dst + order[k] * ld;
      _mm256_storeu_ps(d, lookup8_wide(slice, g0, b, t));
      _mm256_storeu_ps(d + 8, lookup8_wide(slice, g0 + 1, b, t));
    }
  }
}

}  // namespace

const CodebookKernels& codebook_kernels_avx2() {
  static const CodebookKernels k{&gemv_stripe, &decode16, nullptr};
  return k;
}

}  // namespace quarot::codebook_detail
