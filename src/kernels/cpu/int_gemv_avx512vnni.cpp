// AVX-512 VNNI decode kernel (int_gemv_kernels.h): all m (<= 8) activation rows
// against two 16-column panels at a time, one zmm int32 accumulator per row and
// panel (16 of 32 registers). vpdpbusd adds four u8 x s8 products per lane into
// int32 without saturation, so every bit width is exact with one instruction per 4
// positions and no ProductMode is needed; one 64-byte nibble load feeds two of them.
// The panels of the range are consecutive in memory, so the weight is one stream,
// prefetched a fixed distance ahead.
// Internal linkage except the table; no std:: templates (see act_quant_avx2.cpp).
#include <immintrin.h>

// GCC 12 warns inside its own _mm512_cvtepi32_ps (an intentionally undefined
// pass-through operand); nothing here is uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <cstring>

#include "kernels/cpu/int_gemv_kernels.h"

namespace quarot::int_gemv_detail {
namespace {

constexpr int64_t kPrefetchBytes = 2048;

__m512i broadcast4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Rows 0..M-1 against panels p..p+NP-1 of the range, every block, epilogue included
// (f lives in `out` between blocks).
template <int M, int NP, WeightFormat F>
void rows_panels(const IntGemvArgs& t, int64_t p) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const int64_t w_block_bytes = t.kbw * (F == WeightFormat::kNibbles ? 8 : 16);
  for (int64_t b = 0; b < t.blocks; ++b) {
    __m512i acc[M][NP];
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      for (int j = 0; j < NP; ++j) acc[i][j] = _mm512_setzero_si512();
    }
    const uint8_t* ab = t.a + b * t.kb;
    const uint8_t* wb = t.w + p * t.panel_bytes + b * w_block_bytes;
    for (int64_t k = 0; k < t.kbw; k += 8) {
      __m512i w0[NP], w1[NP];
#pragma GCC unroll 2
      for (int j = 0; j < NP; ++j) {
        const uint8_t* q = wb + j * t.panel_bytes;
        if constexpr (F == WeightFormat::kNibbles) {
          q += (k / 8) * 64;
          _mm_prefetch(reinterpret_cast<const char*>(q + kPrefetchBytes), _MM_HINT_T0);
          const __m512i v = _mm512_load_si512(q);
          w0[j] = _mm512_and_si512(v, low4);
          w1[j] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
        } else {
          q += (k / 4) * 64;
          _mm_prefetch(reinterpret_cast<const char*>(q + kPrefetchBytes), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(q + kPrefetchBytes + 64), _MM_HINT_T0);
          w0[j] = _mm512_load_si512(q);
          w1[j] = _mm512_load_si512(q + 64);
        }
      }
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) {
        const uint8_t* ar = ab + i * t.lda + k;
        const __m512i x0 = broadcast4(ar);
        const __m512i x1 = broadcast4(ar + 4);
#pragma GCC unroll 2
        for (int j = 0; j < NP; ++j) {
          acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], x0, w0[j]);
          acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], x1, w1[j]);
        }
      }
    }
    for (int i = 0; i < M; ++i) {
      const int64_t ia = i * t.blocks + b;
      const __m512i a_sum = _mm512_set1_epi32(t.a_sum[ia]);
      const __m512i a_off = _mm512_set1_epi32(t.a_offset[ia]);
      const __m512 a_scale = _mm512_set1_ps(t.a_scale[ia]);
      for (int j = 0; j < NP; ++j) {
        const int64_t iw = ((p + j) * t.blocks + b) * 16;
        const __m512i zt = _mm512_loadu_si512(t.w_zero_term + iw);
        const __m512i ws = _mm512_loadu_si512(t.w_sum + iw);
        // Wrapping int32 arithmetic gives the exact d, which fits (int_gemm checks).
        const __m512i d =
            _mm512_add_epi32(acc[i][j], _mm512_sub_epi32(_mm512_mullo_epi32(zt, a_sum), _mm512_mullo_epi32(a_off, ws)));
        if (t.dots != nullptr) {
          _mm512_storeu_si512(t.dots + ((i * t.panels + p + j) * t.blocks + b) * 16, d);
          continue;
        }
        float* o = t.out + i * t.ldo + (p + j) * 16;
        const __m512 prev = b == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(o);
        const __m512 scale = _mm512_mul_ps(a_scale, _mm512_loadu_ps(t.w_scale + iw));
        _mm512_storeu_ps(o, _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(d), prev));
      }
    }
  }
}

template <int NP, WeightFormat F>
void rows_dispatch(const IntGemvArgs& t, int64_t p) {
  switch (t.m) {
    case 8: return rows_panels<8, NP, F>(t, p);
    case 7: return rows_panels<7, NP, F>(t, p);
    case 6: return rows_panels<6, NP, F>(t, p);
    case 5: return rows_panels<5, NP, F>(t, p);
    case 4: return rows_panels<4, NP, F>(t, p);
    case 3: return rows_panels<3, NP, F>(t, p);
    case 2: return rows_panels<2, NP, F>(t, p);
    default: return rows_panels<1, NP, F>(t, p);
  }
}

template <WeightFormat F>
void run_format(const IntGemvArgs& t) {
  int64_t p = 0;
  for (; p + 2 <= t.panels; p += 2) rows_dispatch<2, F>(t, p);
  if (p < t.panels) rows_dispatch<1, F>(t, p);
}

void run(const IntGemvArgs& t) {
  if (t.format == WeightFormat::kNibbles) return run_format<WeightFormat::kNibbles>(t);
  run_format<WeightFormat::kInt8>(t);
}

}  // namespace

const IntGemvKernels& int_gemv_kernels_avx512vnni() {
  static const IntGemvKernels k{"avx512vnni gemv", &run};
  return k;
}

}  // namespace quarot::int_gemv_detail
