// AVX2 + FMA + F16C kernels for weight_only_gemm: 8 weights at a time are turned
// into FP32 in a register (vcvtph2ps for F16; nibble/byte unpack, integer zero-point
// subtraction and one FP32 multiply by the scale for int codes) and used at once,
// so the weight is streamed from memory in its stored width.
// Internal linkage except the table (see weight_only_gemm_kernels.h on the ODR).
#include <immintrin.h>

#include <algorithm>
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

// Stored formats with a constant scale / zero point over each run of 8 columns.
enum class Fmt { kF16, kNibble, kByte };

// W[c .. c + 8) for a chunk inside one group (scale and zero broadcast by the caller).
template <Fmt F>
__m256 convert8(const uint8_t* bytes, __m256 scale, __m256i zero) {
  if constexpr (F == Fmt::kF16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes)));
  } else {
    __m256i codes;
    if constexpr (F == Fmt::kNibble) {
      uint32_t packed;
      std::memcpy(&packed, bytes, 4);
      const __m128i b = _mm_cvtsi32_si128(static_cast<int>(packed));
      const __m128i mask = _mm_set1_epi8(0x0f);
      codes = _mm256_cvtepu8_epi32(_mm_unpacklo_epi8(_mm_and_si128(b, mask), _mm_and_si128(_mm_srli_epi16(b, 4), mask)));
    } else {
      codes = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes)));
    }
    return _mm256_mul_ps(scale, _mm256_cvtepi32_ps(_mm256_sub_epi32(codes, zero)));
  }
}

template <Fmt F>
constexpr int64_t chunk_bytes() {
  return F == Fmt::kF16 ? 16 : F == Fmt::kNibble ? 4 : 8;
}

// Two accumulator chains per activation row (even / odd chunks of a group) while they
// fit in registers, so one FMA's latency does not bound an n = 1 GEMV. Groups are
// walked in column order, each with its scale and zero point broadcast once.
template <int N, Fmt F>
void dot_rows_grouped(const RowView& row, const float* x, float* out) {
  constexpr int kChains = N <= 4 ? 2 : 1;
  const int64_t cols = row.cols;
  const int64_t seg = F == Fmt::kF16 ? cols : row.group_size;
  __m256 acc[kChains][N];
  for (int h = 0; h < kChains; ++h)
    for (int i = 0; i < N; ++i) acc[h][i] = _mm256_setzero_ps();
  for (int64_t s0 = 0, g = 0; s0 < cols; s0 += seg, ++g) {
    __m256 scale = _mm256_setzero_ps();
    __m256i zero = _mm256_setzero_si256();
    if constexpr (F != Fmt::kF16) {
      scale = _mm256_set1_ps(row.scales[g]);
      zero = _mm256_set1_epi32(row.zeros != nullptr ? static_cast<int32_t>(row.zeros[g]) : row.sym_zero);
    }
    const int64_t full = s0 + (std::min(cols, s0 + seg) - s0) / 8 * 8;
    const uint8_t* bytes = row.data + byte_offset(row, s0);
    int64_t c = s0;
    for (; c + 8 * kChains <= full; c += 8 * kChains) {
#pragma GCC unroll 2
      for (int h = 0; h < kChains; ++h) {
        const __m256 w = convert8<F>(bytes + h * chunk_bytes<F>(), scale, zero);
#pragma GCC unroll 8
        for (int i = 0; i < N; ++i)
          acc[h][i] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + i * cols + c + 8 * h), acc[h][i]);
      }
      bytes += kChains * chunk_bytes<F>();
    }
    for (; c < full; c += 8) {
      const __m256 w = convert8<F>(bytes, scale, zero);
#pragma GCC unroll 8
      for (int i = 0; i < N; ++i) acc[0][i] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + i * cols + c), acc[0][i]);
      bytes += chunk_bytes<F>();
    }
  }
  const int64_t c = cols / 8 * 8;
  if (c < cols) {  // only the last group can be ragged (group size % 8 == 0 or one group)
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

// Groups whose size is not a multiple of 8: each chunk looks up its lanes' groups.
template <int N>
void dot_rows_straddling(const RowView& row, const float* x, float* out) {
  const int64_t cols = row.cols;
  __m256 acc[N];
  for (int i = 0; i < N; ++i) acc[i] = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 8 <= cols; c += 8) {
    const __m256 w = weights8(row, row.data + byte_offset(row, c), c, 8);
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) acc[i] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + i * cols + c), acc[i]);
  }
  if (c < cols) {
    const int64_t valid = cols - c;
    const __m256i mask = lane_mask(valid);
    const __m256 w = _mm256_and_ps(tail_weights(row, c, valid), _mm256_castsi256_ps(mask));
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) acc[i] = _mm256_fmadd_ps(w, _mm256_maskload_ps(x + i * cols + c, mask), acc[i]);
  }
  for (int i = 0; i < N; ++i) out[i] = hsum(acc[i]);
}

bool chunks_within_groups(const RowView& row) {
  return row.f16 || row.group_size % 8 == 0 || row.group_size == row.cols;
}

template <int N>
void dot_rows(const RowView& row, const float* x, float* out) {
  if (!chunks_within_groups(row)) return dot_rows_straddling<N>(row, x, out);
  if (row.f16) return dot_rows_grouped<N, Fmt::kF16>(row, x, out);
  if (row.bits <= 4) return dot_rows_grouped<N, Fmt::kNibble>(row, x, out);
  dot_rows_grouped<N, Fmt::kByte>(row, x, out);
}

void dot_row(const RowView& row, const float* x, int64_t n, float* out) {
  for_row_count(n, [&](auto rows) { dot_rows<decltype(rows)::value>(row, x, out); });
}

template <Fmt F>
void decode_row_grouped(const RowView& row, float* out) {
  const int64_t cols = row.cols;
  const int64_t seg = F == Fmt::kF16 ? cols : row.group_size;
  for (int64_t s0 = 0, g = 0; s0 < cols; s0 += seg, ++g) {
    __m256 scale = _mm256_setzero_ps();
    __m256i zero = _mm256_setzero_si256();
    if constexpr (F != Fmt::kF16) {
      scale = _mm256_set1_ps(row.scales[g]);
      zero = _mm256_set1_epi32(row.zeros != nullptr ? static_cast<int32_t>(row.zeros[g]) : row.sym_zero);
    }
    const int64_t full = s0 + (std::min(cols, s0 + seg) - s0) / 8 * 8;
    const uint8_t* bytes = row.data + byte_offset(row, s0);
    for (int64_t c = s0; c < full; c += 8, bytes += chunk_bytes<F>())
      _mm256_storeu_ps(out + c, convert8<F>(bytes, scale, zero));
  }
}

void decode_row(const RowView& row, float* out) {
  const int64_t cols = row.cols;
  int64_t c = 0;
  if (chunks_within_groups(row)) {
    if (row.f16) {
      decode_row_grouped<Fmt::kF16>(row, out);
    } else if (row.bits <= 4) {
      decode_row_grouped<Fmt::kNibble>(row, out);
    } else {
      decode_row_grouped<Fmt::kByte>(row, out);
    }
    c = cols / 8 * 8;
  } else {
    for (; c + 8 <= cols; c += 8) _mm256_storeu_ps(out + c, weights8(row, row.data + byte_offset(row, c), c, 8));
  }
  if (c < cols) {
    const int64_t valid = cols - c;
    _mm256_maskstore_ps(out + c, lane_mask(valid), tail_weights(row, c, valid));
  }
}

// Decode's one-activation-row GEMV (the lm_head): the shared row stream, each row by
// dot_rows<1>, so each result is the one-row kernel's bit for bit.
void rows1(const RowView& first, int64_t row_stride, int64_t rows, const float* x, float* out) {
  stream_rows1(first, row_stride, rows, x, out, dot_rows<1>);
}

}  // namespace

const WeightOnlyKernels& weight_only_kernels_avx2() {
  static const WeightOnlyKernels k{dot_row, decode_row, rows1};
  return k;
}

}  // namespace quarot::weight_only_detail
