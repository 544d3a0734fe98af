// AVX-512 GEMV kernels for weight_only_gemm (decode, n <= 8 activation rows) over
// integer grids, 16 weights per vector (F16 rows take the AVX2 kernel, except in rows1
// where wide_f16_rows(): f16_row, the same sums 16 lanes at a time). The scale
// leaves the inner loop: within one scale group the exact integers (code - zero) are
// converted to FP32 and multiplied into the activations, and the group's sum is scaled
// once. Dequantizing each weight first (the AVX2 kernel's float(scale) * float(code -
// zero), 5 instructions per 8 weights) made an int8 lm_head GEMV compute-bound on Zen 4:
// 2.03 ms at 49152 x 576 on 2 threads, slower than the F16 one with twice its bytes;
// this one takes 0.98 ms (29 GB/s, the memory's speed; bench_weight_only_gemm).
// Results differ from the dequantize-then-multiply reference by float rounding (one
// rounding per group instead of one per weight), as weight_only_gemm.h states.
// Prefill panels (decode_row) keep the AVX2 kernel: they need the exact dequantized values.
// Internal linkage except the table (see weight_only_gemm_kernels.h on the ODR).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/weight_only_gemm_kernels.h"

namespace quarot::weight_only_detail {
namespace {

enum class Fmt { kNibble, kByte };

template <Fmt F>
constexpr int64_t chunk_bytes() {
  return F == Fmt::kNibble ? 8 : 16;
}

int64_t byte_offset(const RowView& row, int64_t c) { return row.bits <= 4 ? c / 2 : c; }

// 16 nibble codes (low nibble first) from 8 bytes, as int32 lanes.
__m512i nibbles16(__m128i b) {
  const __m128i mask = _mm_set1_epi8(0x0f);
  return _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(_mm_and_si128(b, mask), _mm_and_si128(_mm_srli_epi16(b, 4), mask)));
}

// Codes c .. c + 16 as the exact integers code - zero, in FP32.
template <Fmt F>
__m512 convert16(const uint8_t* bytes, __m512i zero) {
  if constexpr (F == Fmt::kNibble) {
    return _mm512_cvtepi32_ps(
        _mm512_sub_epi32(nibbles16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes))), zero));
  } else {
    return _mm512_cvtepi32_ps(
        _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes))), zero));
  }
}

// The last `valid` (< 16) columns of a row: only their stored bytes are read (masked
// loads); the other lanes hold finite values that meet zero activations.
template <Fmt F>
__m512 convert_tail(const uint8_t* bytes, int64_t valid, __m512i zero) {
  if constexpr (F == Fmt::kNibble) {
    const auto m = static_cast<__mmask16>((1u << ((valid + 1) / 2)) - 1);
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(nibbles16(_mm_maskz_loadu_epi8(m, bytes)), zero));
  } else {
    const auto m = static_cast<__mmask16>((1u << valid) - 1);
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, bytes)), zero));
  }
}

// out[i] = sum over groups g of scale_g * sum_{c in g} float(code_c - zero_g) * x[i, c].
// Several accumulator chains per activation row so the FMA
// latency does not bound a one-row GEMV; chains and groups are combined in a fixed order.
template <int N, Fmt F>
void dot_rows_grouped(const RowView& row, const float* x, float* out) {
  constexpr int kChains = N == 1 ? 4 : N <= 4 ? 2 : 1;
  const int64_t cols = row.cols;
  const int64_t seg = row.group_size;
  __m512 total[N];
  for (int i = 0; i < N; ++i) total[i] = _mm512_setzero_ps();
  for (int64_t s0 = 0, g = 0; s0 < cols; s0 += seg, ++g) {
    const int64_t end = std::min(cols, s0 + seg);
    const int64_t full = s0 + (end - s0) / 16 * 16;
    const __m512i zero =
        _mm512_set1_epi32(row.zeros != nullptr ? static_cast<int32_t>(row.zeros[g]) : row.sym_zero);
    __m512 acc[kChains][N];
    for (int h = 0; h < kChains; ++h)
      for (int i = 0; i < N; ++i) acc[h][i] = _mm512_setzero_ps();
    const uint8_t* bytes = row.data + byte_offset(row, s0);
    int64_t c = s0;
    for (; c + 16 * kChains <= full; c += 16 * kChains) {
#pragma GCC unroll 4
      for (int h = 0; h < kChains; ++h) {
        const __m512 w = convert16<F>(bytes + h * chunk_bytes<F>(), zero);
#pragma GCC unroll 8
        for (int i = 0; i < N; ++i)
          acc[h][i] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x + i * cols + c + 16 * h), acc[h][i]);
      }
      bytes += kChains * chunk_bytes<F>();
    }
    for (; c < full; c += 16) {
      const __m512 w = convert16<F>(bytes, zero);
#pragma GCC unroll 8
      for (int i = 0; i < N; ++i) acc[0][i] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x + i * cols + c), acc[0][i]);
      bytes += chunk_bytes<F>();
    }
    if (c < end) {  // only a row's last group can be ragged (group sizes are multiples of 16)
      const int64_t valid = end - c;
      const auto m = static_cast<__mmask16>((1u << valid) - 1);
      const __m512 w = convert_tail<F>(bytes, valid, zero);
#pragma GCC unroll 8
      for (int i = 0; i < N; ++i) acc[0][i] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m, x + i * cols + c), acc[0][i]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) {
      __m512 s = acc[0][i];
      for (int h = 1; h < kChains; ++h) s = _mm512_add_ps(s, acc[h][i]);
      total[i] = _mm512_fmadd_ps(_mm512_set1_ps(row.scales[g]), s, total[i]);
    }
  }
  for (int i = 0; i < N; ++i) out[i] = _mm512_reduce_add_ps(total[i]);
}

// Split nibble rows (weight_only_gemm_kernels.h: x comes with each 32-column block as its
// even columns, then its odd ones): 16 bytes give 32 weights with one widening load, a
// mask and a shift (low nibbles = even columns, high = odd), instead of unpacking 16
// nibbles per 16 weights. U blocks per step keep 2U accumulator chains per row. (Two
// running totals picked by group parity were slower: an array indexed at run time lives
// on the stack, and every group then waited on a store-to-load round trip.)
template <int N>
void dot_rows_split(const RowView& row, const float* x, float* out) {
  constexpr int U = N <= 2 ? 2 : 1;
  constexpr int64_t B = kSplitBlock;
  const int64_t cols = row.cols, full = cols / B * B, seg = row.group_size;
  const __m512i low4 = _mm512_set1_epi32(0x0F);
  __m512 total[N];
  for (int i = 0; i < N; ++i) total[i] = _mm512_setzero_ps();
  for (int64_t s0 = 0, g = 0; s0 < cols; s0 += seg, ++g) {
    const int64_t end = std::min(cols, s0 + seg), blocks_end = std::min(end, full);
    const __m512i zero =
        _mm512_set1_epi32(row.zeros != nullptr ? static_cast<int32_t>(row.zeros[g]) : row.sym_zero);
    __m512 acc[2 * U][N];
    for (int h = 0; h < 2 * U; ++h)
      for (int i = 0; i < N; ++i) acc[h][i] = _mm512_setzero_ps();
    const uint8_t* bytes = row.data + s0 / 2;
    int64_t c = s0;
    const auto block = [&](int u, int64_t col, const uint8_t* p) {
      const __m512i d = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      const __m512 even = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(d, low4), zero));
      const __m512 odd = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(d, 4), zero));
#pragma GCC unroll 8
      for (int i = 0; i < N; ++i) {
        acc[2 * u][i] = _mm512_fmadd_ps(even, _mm512_loadu_ps(x + i * cols + col), acc[2 * u][i]);
        acc[2 * u + 1][i] = _mm512_fmadd_ps(odd, _mm512_loadu_ps(x + i * cols + col + B / 2), acc[2 * u + 1][i]);
      }
    };
    for (; c + U * B <= blocks_end; c += U * B, bytes += U * B / 2)
#pragma GCC unroll 2
      for (int u = 0; u < U; ++u) block(u, c + u * B, bytes + u * B / 2);
    for (; c < blocks_end; c += B, bytes += B / 2) block(0, c, bytes);
    for (; c < end; c += 16, bytes += 8) {  // a ragged tail (< 32 columns) in the original order
      const int64_t valid = std::min<int64_t>(16, end - c);
      const auto m = static_cast<__mmask16>((1u << valid) - 1);
      const __m512 w = valid == 16 ? convert16<Fmt::kNibble>(bytes, zero) : convert_tail<Fmt::kNibble>(bytes, valid, zero);
#pragma GCC unroll 8
      for (int i = 0; i < N; ++i) acc[0][i] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m, x + i * cols + c), acc[0][i]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) {
      __m512 sum = acc[0][i];
      for (int h = 1; h < 2 * U; ++h) sum = _mm512_add_ps(sum, acc[h][i]);
      total[i] = _mm512_fmadd_ps(_mm512_set1_ps(row.scales[g]), sum, total[i]);
    }
  }
  for (int i = 0; i < N; ++i) out[i] = _mm512_reduce_add_ps(total[i]);
}

// F16 rows and group sizes that are not a multiple of 16 (nor the whole row) take the
// AVX2 kernel: it handles any group layout, and for F16 it streams faster on Zen 4
// (bench_weight_only_gemm, 49152 x 576, 2 threads: 1.66-1.80 ms vs 1.90-1.94 ms with
// 16-wide vcvtph2ps), where both are at the memory's speed. Elsewhere one F16 row of
// n = 1 takes f16_row below (wide_f16_rows()).
bool takes_avx2(const RowView& row) { return row.f16 || (row.group_size % 16 != 0 && row.group_size != row.cols); }

// The AVX2 kernel's sum for one F16 row of n = 1 (weight_only_gemm_avx2.cpp,
// dot_rows_grouped<1, kF16>) in one 16-lane register, cols % 16 == 0: that kernel
// keeps two 8-lane chains, columns c..c+7 and c+8..c+15 of each step of 16, which are
// this register's low and high halves (same products, same order, exact F16 -> FP32
// conversions), then adds the chains and sums the 8 lanes as hsum8 does. Bit for bit
// the same number, with half the instructions per byte.
float hsum8(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

void f16_row(const RowView& row, const float* x, float* out) {
  __m512 acc = _mm512_setzero_ps();
  for (int64_t c = 0; c < row.cols; c += 16) {
    const __m512 w = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row.data + 2 * c)));
    acc = _mm512_fmadd_ps(w, _mm512_loadu_ps(x + c), acc);
  }
  const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
  *out = hsum8(_mm256_add_ps(_mm512_castps512_ps256(acc), high));
}

template <int N>
void dot_rows(const RowView& row, const float* x, float* out) {
  if (takes_avx2(row)) return weight_only_kernels_avx2().dot_row(row, x, N, out);
  if (split_nibble_row(row)) return dot_rows_split<N>(row, x, out);
  if (row.bits <= 4) return dot_rows_grouped<N, Fmt::kNibble>(row, x, out);
  dot_rows_grouped<N, Fmt::kByte>(row, x, out);
}

void dot_row(const RowView& row, const float* x, int64_t n, float* out) {
  for_row_count(n, [&](auto rows) { dot_rows<decltype(rows)::value>(row, x, out); });
}

void decode_row(const RowView& row, float* out) { weight_only_kernels_avx2().decode_row(row, out); }

// Decode's one-activation-row GEMV (the lm_head): the shared row stream, each row by
// dot_rows<1>, so each result is the one-row kernel's bit for bit.
void rows1(const RowView& first, int64_t row_stride, int64_t rows, const float* x, float* out) {
  const bool f16_wide = first.f16 && first.cols % 16 == 0 && wide_f16_rows();
  stream_rows1(first, row_stride, rows, x, out, f16_wide ? f16_row : dot_rows<1>);
}

}  // namespace

const WeightOnlyKernels& weight_only_kernels_avx512() {
  static const WeightOnlyKernels k{dot_row, decode_row, rows1, true};
  return k;
}

}  // namespace quarot::weight_only_detail
