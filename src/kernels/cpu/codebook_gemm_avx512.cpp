// AVX-512 kernels for codebook_gemm. Sixteen rows of one column are sixteen b-bit
// indices = 2 b contiguous bytes of the column's slice: two 4-byte broadcasts (rows
// 0..7 and 8..15, b bytes apart) blended into one register and a per-lane variable
// shift put index j in lane j's low bits, and one vpermps (which reads bits 0..3)
// looks the weight up in the column's table; a 16-entry table is exactly one zmm, and
// smaller ones are repeated to fill it. Widths 5..8 take a scalar-lookup path.
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

template <int M, int Q, int B>
inline void accumulate_width(const CodebookView& w, const uint8_t* base, int64_t q0, const float* xp,
                             __m512 (&acc_io)[M][Q]) {
  // A private copy: with the caller's array the compiler stores every accumulator
  // after each column, since the byte loads of the indices might alias it.
  __m512 acc[M][Q];
  for (int i = 0; i < M; ++i)
    for (int q = 0; q < Q; ++q) acc[i][q] = acc_io[i][q];
  const __m512i shifts = lane_shifts<B>();
  const uint8_t* slice = base + w.slice_start[B];
  const uint16_t* table = w.centroids + w.centroid_start[B];
  for (int64_t k = w.width_start[B]; k < w.width_start[B + 1]; ++k, slice += 8 * B, table += 1 << B) {
    const __m512 t = load_table<B>(table);
    __m512 xb[M];
    for (int i = 0; i < M; ++i) xb[i] = _mm512_set1_ps(xp[i * w.cols + k]);
    for (int q = 0; q < Q; ++q) {
      const __m512 wv = lookup16<B>(slice, q0 + q, t, shifts);
      for (int i = 0; i < M; ++i) acc[i][q] = _mm512_fmadd_ps(wv, xb[i], acc[i][q]);
    }
  }
  for (int i = 0; i < M; ++i)
    for (int q = 0; q < Q; ++q) acc_io[i][q] = acc[i][q];
}

// Rows 16 q0 .. 16 (q0 + Q) - 1 of the stripe for M activation rows.
template <int M, int Q>
void stripe_pass(const CodebookView& w, const uint8_t* base, int64_t q0, const float* xp, float* out) {
  __m512 acc[M][Q];
  for (int i = 0; i < M; ++i)
    for (int q = 0; q < Q; ++q) acc[i][q] = _mm512_setzero_ps();
  accumulate_width<M, Q, 1>(w, base, q0, xp, acc);
  accumulate_width<M, Q, 2>(w, base, q0, xp, acc);
  accumulate_width<M, Q, 3>(w, base, q0, xp, acc);
  accumulate_width<M, Q, 4>(w, base, q0, xp, acc);
  for (int b = 5; b <= 8; ++b) {
    const uint8_t* slice = base + w.slice_start[b];
    const uint16_t* table = w.centroids + w.centroid_start[b];
    for (int64_t k = w.width_start[b]; k < w.width_start[b + 1]; ++k, slice += 8 * b, table += 1 << b) {
      alignas(64) float t[256];
      widen_table(table, b, t);
      for (int q = 0; q < Q; ++q) {
        const __m512 wv = lookup16_wide(slice, q0 + q, b, t);
        for (int i = 0; i < M; ++i) acc[i][q] = _mm512_fmadd_ps(wv, _mm512_set1_ps(xp[i * w.cols + k]), acc[i][q]);
      }
    }
  }
  for (int i = 0; i < M; ++i)
    for (int q = 0; q < Q; ++q) _mm512_storeu_ps(out + i * kStripe + (q0 + q) * 16, acc[i][q]);
}

// One pass over a half stripe: 2 x M accumulators (at most 16 of the 32 zmm registers).
template <int M>
void stripe_m(const CodebookView& w, const uint8_t* base, int half, const float* xp, float* out) {
  stripe_pass<M, 2>(w, base, 2 * half, xp, out);
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
  static const CodebookKernels k{&gemv_stripe, &decode16};
  return k;
}

}  // namespace quarot::codebook_detail
