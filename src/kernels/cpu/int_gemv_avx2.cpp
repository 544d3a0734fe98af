// AVX2 decode kernel (int_gemv_kernels.h): up to 4 activation rows against one
// 16-column panel at a time, panel after panel, so the weight is read as one
// stream; rows 5..8 reuse the panel from L1. Per 8 positions a 64-byte nibble
// vector is split into the two quads (and + shift), vpmaddubsw multiplies the
// broadcast u8 activation codes by them into int16 pair sums, and those are added
// in int16 for as many steps as ProductMode allows (int_gemm_kernels.h) before one
// vpmaddwd widens them: the weight costs 6 simple ops per 64 bytes, far below what
// memory delivers, so the loop waits on memory only. Software prefetch runs
// IntGemvArgs::prefetch's distances ahead of the stream (stream_prefetch.h says per CPU).
// Internal linkage except the table; no std:: templates (see act_quant_avx2.cpp).
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/int_gemv_kernels.h"

namespace quarot::int_gemv_detail {
namespace {

constexpr int kMaxRows = 4;  // rows per pass over a panel

__m256i broadcast4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Positions k..k+3 (w0) and k+4..k+7 (w1) of one panel; [0]: columns 0-7, [1]: 8-15.
template <WeightFormat F>
inline void load_step(const uint8_t* wb, int64_t k, const StreamPrefetch& ahead, __m256i* w0, __m256i* w1) {
  if constexpr (F == WeightFormat::kNibbles) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const uint8_t* p = wb + (k / 8) * 64;
    prefetch_ahead(p, ahead);
    for (int h = 0; h < 2; ++h) {
      const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 32 * h));
      w0[h] = _mm256_and_si256(v, low4);
      w1[h] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
    }
  } else {
    const uint8_t* p = wb + (k / 4) * 64;
    prefetch_ahead(p, ahead);
    prefetch_ahead(p + 64, ahead);
    for (int h = 0; h < 2; ++h) {
      w0[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 32 * h));
      w1[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 64 + 32 * h));
    }
  }
}

// Block b of rows i0..i0+R-1 on one panel: the int32 dots of 16 columns per row.
template <int R, WeightFormat F, ProductMode P>
inline void block_dots(const IntGemvArgs& t, const uint8_t* ab, const uint8_t* wb, __m256i (&acc)[R][2]) {
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i sixteen = _mm256_set1_epi16(16);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  // kDeep / kFast: int16 sums of `steps` steps, then one widening.
  const int64_t chunk = 8 * (P == ProductMode::kDeep ? t.deep_steps : 1);
  for (int64_t k0 = 0; k0 < t.kbw; k0 += chunk) {
    const int64_t k1 = k0 + chunk < t.kbw ? k0 + chunk : t.kbw;
    __m256i s16[R][2];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) s16[r][0] = s16[r][1] = _mm256_setzero_si256();
    for (int64_t k = k0; k < k1; k += 8) {
      __m256i w0[2], w1[2];
      load_step<F>(wb, k, t.prefetch, w0, w1);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m256i x0 = broadcast4(ab + r * t.lda + k);
        const __m256i x1 = broadcast4(ab + r * t.lda + k + 4);
        for (int h = 0; h < 2; ++h) {
          if constexpr (P == ProductMode::kDeep || P == ProductMode::kFast) {
            s16[r][h] = _mm256_add_epi16(
                s16[r][h], _mm256_add_epi16(_mm256_maddubs_epi16(x0, w0[h]), _mm256_maddubs_epi16(x1, w1[h])));
          } else if constexpr (P == ProductMode::kPlain) {
            acc[r][h] = _mm256_add_epi32(acc[r][h], _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(x0, w0[h]), ones),
                                                                     _mm256_madd_epi16(_mm256_maddubs_epi16(x1, w1[h]), ones)));
          } else {  // kSplit: activation nibbles, 16 * high half formed in int32
            const __m256i lo0 = _mm256_and_si256(x0, low4), hi0 = _mm256_and_si256(_mm256_srli_epi16(x0, 4), low4);
            const __m256i lo1 = _mm256_and_si256(x1, low4), hi1 = _mm256_and_si256(_mm256_srli_epi16(x1, 4), low4);
            const __m256i plo = _mm256_add_epi16(_mm256_maddubs_epi16(lo0, w0[h]), _mm256_maddubs_epi16(lo1, w1[h]));
            const __m256i phi = _mm256_add_epi16(_mm256_maddubs_epi16(hi0, w0[h]), _mm256_maddubs_epi16(hi1, w1[h]));
            acc[r][h] = _mm256_add_epi32(acc[r][h],
                                         _mm256_add_epi32(_mm256_madd_epi16(plo, ones), _mm256_madd_epi16(phi, sixteen)));
          }
        }
      }
    }
    if constexpr (P == ProductMode::kDeep || P == ProductMode::kFast) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r)
        for (int h = 0; h < 2; ++h) acc[r][h] = _mm256_add_epi32(acc[r][h], _mm256_madd_epi16(s16[r][h], ones));
    }
  }
}

// Rows i0..i0+R-1 against panel p (of the range), every block, epilogue included;
// f lives in `out` between blocks (it changes once per block).
template <int R, WeightFormat F, ProductMode P>
void rows_panel(const IntGemvArgs& t, int64_t i0, int64_t p) {
  const int64_t w_block_bytes = t.kbw * (F == WeightFormat::kNibbles ? 8 : 16);
  const uint8_t* panel = t.w + p * t.panel_bytes;
  for (int64_t b = 0; b < t.blocks; ++b) {
    __m256i acc[R][2];
    block_dots<R, F, P>(t, t.a + i0 * t.lda + b * t.kb, panel + b * w_block_bytes, acc);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const int64_t ia = (i0 + r) * t.blocks + b;
      const __m256i a_sum = _mm256_set1_epi32(t.a_sum[ia]);
      const __m256i a_off = _mm256_set1_epi32(t.a_offset[ia]);
      const __m256 a_scale = _mm256_set1_ps(t.a_scale[ia]);
      for (int h = 0; h < 2; ++h) {
        const int64_t iw = (p * t.blocks + b) * 16 + h * 8;
        const __m256i zt = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.w_zero_term + iw));
        const __m256i ws = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.w_sum + iw));
        // Wrapping int32 arithmetic: the true d fits (int_gemm checks), so it comes out exact.
        const __m256i d =
            _mm256_add_epi32(acc[r][h], _mm256_sub_epi32(_mm256_mullo_epi32(zt, a_sum), _mm256_mullo_epi32(a_off, ws)));
        if (t.dots != nullptr) {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(t.dots + (((i0 + r) * t.panels + p) * t.blocks + b) * 16 + h * 8),
                              d);
          continue;
        }
        float* o = t.out + (i0 + r) * t.ldo + p * 16 + h * 8;
        const __m256 prev = b == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(o);
        const __m256 scale = _mm256_mul_ps(a_scale, _mm256_loadu_ps(t.w_scale + iw));
        _mm256_storeu_ps(o, _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(d), prev));
      }
    }
  }
}

template <WeightFormat F, ProductMode P>
void rows_dispatch(const IntGemvArgs& t, int64_t i0, int64_t rows, int64_t p) {
  switch (rows) {
    case 4: return rows_panel<4, F, P>(t, i0, p);
    case 3: return rows_panel<3, F, P>(t, i0, p);
    case 2: return rows_panel<2, F, P>(t, i0, p);
    default: return rows_panel<1, F, P>(t, i0, p);
  }
}

template <WeightFormat F, ProductMode P>
void run_mode(const IntGemvArgs& t) {
  // Rows in passes of at most 4 (5..8 rows: two nearly equal passes), panel by panel.
  const int64_t passes = (t.m + kMaxRows - 1) / kMaxRows;
  const int64_t first = (t.m + passes - 1) / passes;
  for (int64_t p = 0; p < t.panels; ++p) {
    rows_dispatch<F, P>(t, 0, first, p);
    if (passes > 1) rows_dispatch<F, P>(t, first, t.m - first, p);
  }
}

void run(const IntGemvArgs& t) {
  if (t.format == WeightFormat::kNibbles) {
    // int_gemm picks the mode from the code ranges (nibbles: always kDeep); every
    // mode is kept for both formats so tests can run each one.
    switch (t.mode) {
      case ProductMode::kDeep: return run_mode<WeightFormat::kNibbles, ProductMode::kDeep>(t);
      case ProductMode::kFast: return run_mode<WeightFormat::kNibbles, ProductMode::kFast>(t);
      case ProductMode::kPlain: return run_mode<WeightFormat::kNibbles, ProductMode::kPlain>(t);
      case ProductMode::kSplit: return run_mode<WeightFormat::kNibbles, ProductMode::kSplit>(t);
    }
  }
  switch (t.mode) {
    case ProductMode::kDeep: return run_mode<WeightFormat::kInt8, ProductMode::kDeep>(t);
    case ProductMode::kFast: return run_mode<WeightFormat::kInt8, ProductMode::kFast>(t);
    case ProductMode::kPlain: return run_mode<WeightFormat::kInt8, ProductMode::kPlain>(t);
    case ProductMode::kSplit: return run_mode<WeightFormat::kInt8, ProductMode::kSplit>(t);
  }
}

}  // namespace

const IntGemvKernels& int_gemv_kernels_avx2() {
  static const IntGemvKernels k{"avx2 gemv", &run};
  return k;
}

}  // namespace quarot::int_gemv_detail
