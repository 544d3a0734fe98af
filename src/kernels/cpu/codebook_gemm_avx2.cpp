// AVX2 + FMA + F16C kernels for codebook_gemm. Eight rows of one column are eight
// b-bit indices = b contiguous bytes of the column's slice: one 4-byte broadcast and a
// per-lane variable shift put index j in lane j's low bits, and vpermps (which reads
// only bits 0..2) looks the weight up in the column's table held in a register. Tables
// of 2 or 4 entries are repeated to fill 8 lanes, so the bits above an index (its
// neighbours') do not matter; 16-entry tables use two permutes and a blend on bit 3.
// Widths 5..8 (not produced by CLAQ) take a slower scalar-lookup path.
// Internal linkage except the table (see codebook_gemm_kernels.h on the ODR).
#include <immintrin.h>

#include <cstring>

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

template <int M, int G, int B>
inline void accumulate_width(const CodebookView& w, const uint8_t* base, int64_t g0, const float* xp,
                             __m256 (&acc_io)[M][G]) {
  // A private copy: with the caller's array the compiler stores every accumulator
  // after each column, since the byte loads of the indices might alias it.
  __m256 acc[M][G];
  for (int i = 0; i < M; ++i)
    for (int g = 0; g < G; ++g) acc[i][g] = acc_io[i][g];
  const __m256i shifts = lane_shifts<B>();
  const __m256i sel_shifts = _mm256_setr_epi32(28, 24, 20, 16, 12, 8, 4, 0);
  const int64_t k0 = w.width_start[B], k1 = w.width_start[B + 1];
  const uint8_t* slice = base + w.slice_start[B];
  const uint16_t* table = w.centroids + w.centroid_start[B];
  for (int64_t k = k0; k < k1; ++k, slice += 8 * B, table += 1 << B) {
    __m256 lo, hi = _mm256_setzero_ps();
    load_table<B>(table, lo, hi);
    __m256 xb[M];
    for (int i = 0; i < M; ++i) xb[i] = _mm256_broadcast_ss(xp + i * w.cols + k);
    for (int g = 0; g < G; ++g) {
      const __m256 wv = lookup8<B>(slice, g0 + g, lo, hi, shifts, sel_shifts);
      for (int i = 0; i < M; ++i) acc[i][g] = _mm256_fmadd_ps(wv, xb[i], acc[i][g]);
    }
  }
  for (int i = 0; i < M; ++i)
    for (int g = 0; g < G; ++g) acc_io[i][g] = acc[i][g];
}

// Rows 8 g0 .. 8 (g0 + G) - 1 of the stripe for M activation rows.
template <int M, int G>
void stripe_pass(const CodebookView& w, const uint8_t* base, int64_t g0, const float* xp, float* out) {
  __m256 acc[M][G];
  for (int i = 0; i < M; ++i)
    for (int g = 0; g < G; ++g) acc[i][g] = _mm256_setzero_ps();
  accumulate_width<M, G, 1>(w, base, g0, xp, acc);
  accumulate_width<M, G, 2>(w, base, g0, xp, acc);
  accumulate_width<M, G, 3>(w, base, g0, xp, acc);
  accumulate_width<M, G, 4>(w, base, g0, xp, acc);
  for (int b = 5; b <= 8; ++b) {
    const uint8_t* slice = base + w.slice_start[b];
    const uint16_t* table = w.centroids + w.centroid_start[b];
    for (int64_t k = w.width_start[b]; k < w.width_start[b + 1]; ++k, slice += 8 * b, table += 1 << b) {
      alignas(32) float t[256];
      widen_table(table, b, t);
      for (int g = 0; g < G; ++g) {
        const __m256 wv = lookup8_wide(slice, g0 + g, b, t);
        for (int i = 0; i < M; ++i)
          acc[i][g] = _mm256_fmadd_ps(wv, _mm256_broadcast_ss(xp + i * w.cols + k), acc[i][g]);
      }
    }
  }
  for (int i = 0; i < M; ++i)
    for (int g = 0; g < G; ++g) _mm256_storeu_ps(out + i * kStripe + (g0 + g) * 8, acc[i][g]);
}

// Accumulators per pass: M x G registers of 8 rows, at most 8 so tables, shifts and
// broadcasts still fit in the 16 ymm registers; G at most 4 (a half stripe).
template <int M>
void stripe_m(const CodebookView& w, const uint8_t* base, int half, const float* xp, float* out) {
  constexpr int G = M <= 2 ? 4 : M <= 4 ? 2 : 1;
  constexpr int64_t kHalfGroups = kStripe / 16;
  for (int64_t g0 = half * kHalfGroups; g0 < (half + 1) * kHalfGroups; g0 += G) stripe_pass<M, G>(w, base, g0, xp, out);
}

void gemv_stripe(const CodebookView& w, int64_t stripe, int half, const float* xp, int64_t n, float* out) {
  const uint8_t* base = w.indices + stripe * w.stripe_bytes;
  switch (n) {
    case 1: return stripe_m<1>(w, base, half, xp, out);
    case 2: return stripe_m<2>(w, base, half, xp, out);
    case 3: return stripe_m<3>(w, base, half, xp, out);
    case 4: return stripe_m<4>(w, base, half, xp, out);
    case 5: return stripe_m<5>(w, base, half, xp, out);
    case 6: return stripe_m<6>(w, base, half, xp, out);
    case 7: return stripe_m<7>(w, base, half, xp, out);
    default: return stripe_m<8>(w, base, half, xp, out);
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
  static const CodebookKernels k{&gemv_stripe, &decode16};
  return k;
}

}  // namespace quarot::codebook_detail
