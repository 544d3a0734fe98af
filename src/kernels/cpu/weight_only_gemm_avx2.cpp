// AVX2 + FMA + F16C kernels for weight_only_gemm: 8 weights at a time are turned
// into FP32 in a register (vcvtph2ps for F16; nibble/byte unpack, integer zero-point
// subtraction and one FP32 multiply by the scale for int codes) and used at once,
// so the weight is streamed from memory in its stored width.
// Internal linkage except the table (see weight_only_gemm_kernels.h on the ODR).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/weight_only_gemm_kernels.h"

namespace quarot::weight_only_detail {
namespace {

// Eight int codes starting at a column that is a multiple of 8 (bytes points at the
// byte holding that column's code), as int32 lanes.
__m256i codes8(const RowView& row, const uint8_t* bytes) {
  if (row.bits <= 4) {
    uint32_t packed;
    std::memcpy(&packed, bytes, 4);
    const __m128i b = _mm_cvtsi32_si128(static_cast<int>(packed));
    const __m128i mask = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_and_si128(b, mask);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
    return _mm256_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi));  // low nibble first
  }
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes)));
}

// W[c .. c + 8) as FP32; bytes points at the stored data of column c. Lanes past
// `valid` use column cols - 1's scale (the caller zeroes them).
__m256 weights8(const RowView& row, const uint8_t* bytes, int64_t c, int64_t valid) {
  if (row.f16) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes)));
  const __m256i codes = codes8(row, bytes);
  const int64_t g0 = c / row.group_size;
  const int64_t g_last = (c + valid - 1) / row.group_size;
  __m256 scale;
  __m256i zero;
  if (g0 == g_last) {
    scale = _mm256_set1_ps(row.scales[g0]);
    zero = _mm256_set1_epi32(row.zeros != nullptr ? static_cast<int32_t>(row.zeros[g0]) : row.sym_zero);
  } else {  // a chunk that straddles groups (group size not a multiple of 8)
    alignas(32) float s[8];
    alignas(32) int32_t z[8];
    for (int l = 0; l < 8; ++l) {
      const int64_t g = (c + (l < valid ? l : valid - 1)) / row.group_size;
      s[l] = row.scales[g];
      z[l] = row.zeros != nullptr ? static_cast<int32_t>(row.zeros[g]) : row.sym_zero;
    }
    scale = _mm256_load_ps(s);
    zero = _mm256_load_si256(reinterpret_cast<const __m256i*>(z));
  }
  // code - zero is exact in int32 and in FP32 (|.| <= 255), so this is
  // float(scale) * (float(code) - float(zero)) with the reference's single rounding.
  return _mm256_mul_ps(scale, _mm256_cvtepi32_ps(_mm256_sub_epi32(codes, zero)));
}

int64_t byte_offset(const RowView& row, int64_t c) {
  if (row.f16) return 2 * c;
  return row.bits <= 4 ? c / 2 : c;
}

// The last cols % 8 columns: a zero-padded copy of their stored bytes, so no load
// reads past the row.
__m256 tail_weights(const RowView& row, int64_t c, int64_t valid) {
  alignas(16) uint8_t buf[16] = {};
  const int64_t end = row.f16 ? 2 * row.cols : (row.bits <= 4 ? (row.cols + 1) / 2 : row.cols);
  const int64_t off = byte_offset(row, c);
  std::memcpy(buf, row.data + off, end - off);
  return weights8(row, buf, c, valid);
}

__m256i lane_mask(int64_t valid) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(valid)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

float hsum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

// Two accumulator chains per activation row (even / odd chunks) while they fit in
// registers, so one FMA's latency does not bound an n = 1 GEMV.
template <int N>
void dot_rows(const RowView& row, const float* x, float* out) {
  constexpr int kChains = N <= 4 ? 2 : 1;
  const int64_t cols = row.cols;
  __m256 acc[kChains][N];
  for (int h = 0; h < kChains; ++h)
    for (int i = 0; i < N; ++i) acc[h][i] = _mm256_setzero_ps();
  const int64_t full = cols / 8 * 8;
  int64_t c = 0;
  for (; c + 8 * kChains <= full; c += 8 * kChains) {
#pragma GCC unroll 2
    for (int h = 0; h < kChains; ++h) {
      const int64_t cc = c + 8 * h;
      const __m256 w = weights8(row, row.data + byte_offset(row, cc), cc, 8);
#pragma GCC unroll 8
      for (int i = 0; i < N; ++i) acc[h][i] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + i * cols + cc), acc[h][i]);
    }
  }
  for (; c < full; c += 8) {
    const __m256 w = weights8(row, row.data + byte_offset(row, c), c, 8);
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) acc[0][i] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + i * cols + c), acc[0][i]);
  }
  if (c < cols) {
    const int64_t valid = cols - c;
    const __m256i mask = lane_mask(valid);
    const __m256 w = _mm256_and_ps(tail_weights(row, c, valid), _mm256_castsi256_ps(mask));
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) acc[0][i] = _mm256_fmadd_ps(w, _mm256_maskload_ps(x + i * cols + c, mask), acc[0][i]);
  }
#pragma GCC unroll 8
  for (int i = 0; i < N; ++i) {
    __m256 s = acc[0][i];
    for (int h = 1; h < kChains; ++h) s = _mm256_add_ps(s, acc[h][i]);
    out[i] = hsum(s);
  }
}

void dot_row(const RowView& row, const float* x, int64_t n, float* out) {
  switch (n) {
    case 1: return dot_rows<1>(row, x, out);
    case 2: return dot_rows<2>(row, x, out);
    case 3: return dot_rows<3>(row, x, out);
    case 4: return dot_rows<4>(row, x, out);
    case 5: return dot_rows<5>(row, x, out);
    case 6: return dot_rows<6>(row, x, out);
    case 7: return dot_rows<7>(row, x, out);
    default: return dot_rows<8>(row, x, out);
  }
}

void decode_row(const RowView& row, float* out) {
  const int64_t cols = row.cols;
  int64_t c = 0;
  for (; c + 8 <= cols; c += 8) _mm256_storeu_ps(out + c, weights8(row, row.data + byte_offset(row, c), c, 8));
  if (c < cols) {
    const int64_t valid = cols - c;
    _mm256_maskstore_ps(out + c, lane_mask(valid), tail_weights(row, c, valid));
  }
}

}  // namespace

const WeightOnlyKernels& weight_only_kernels_avx2() {
  static const WeightOnlyKernels k{dot_row, decode_row};
  return k;
}

}  // namespace quarot::weight_only_detail
