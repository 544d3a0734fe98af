// AVX-512 VNNI decode kernel (int_gemv_kernels.h): all m (<= 8) activation rows
// against one 16-column panel at a time, panel after panel, so the weight is read
// as one sequential stream (two panels at once are two streams a panel apart, which
// Zen 4's prefetchers serve at about half the rate: 45 vs 23 us for a 1536 x 576
// int4 GEMV on one core). vpdpbusd adds four u8 x s8 products per lane into int32
// without saturation, so every bit width is exact with one instruction per 4
// positions and no ProductMode is needed; one 64-byte nibble load feeds two of them,
// which go to two accumulators per row (positions k..k+3 and k+4..k+7) so the chain
// of dependent vpdpbusd is half as long; int32 sums are exact in any order.
// Internal linkage except the table; no std:: templates (see act_quant_avx2.cpp).
#include <immintrin.h>

// GCC 12 warns inside its own _mm512_cvtepi32_ps (an intentionally undefined
// pass-through operand); nothing here is uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <cstring>

#include "kernels/cpu/int_gemv_kernels.h"

namespace quarot::int_gemv_detail {
namespace {

__m512i broadcast4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Rows 0..M-1 against panel p of the range, every block, epilogue included (f lives
// in `out` between blocks).
template <int M, WeightFormat F>
void rows_panel(const IntGemvArgs& t, int64_t p) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const int64_t w_block_bytes = t.kbw * (F == WeightFormat::kNibbles ? 8 : 16);
  for (int64_t b = 0; b < t.blocks; ++b) {
    __m512i acc0[M], acc1[M];
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) acc0[i] = acc1[i] = _mm512_setzero_si512();
    const uint8_t* ab = t.a + b * t.kb;
    const uint8_t* wb = t.w + p * t.panel_bytes + b * w_block_bytes;
    for (int64_t k = 0; k < t.kbw; k += 8) {
      __m512i w0, w1;
      if constexpr (F == WeightFormat::kNibbles) {
        const uint8_t* q = wb + (k / 8) * 64;
        prefetch_ahead(q, t.prefetch);
        const __m512i v = _mm512_load_si512(q);
        w0 = _mm512_and_si512(v, low4);
        w1 = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
      } else {
        const uint8_t* q = wb + (k / 4) * 64;
        prefetch_ahead(q, t.prefetch);
        prefetch_ahead(q + 64, t.prefetch);
        w0 = _mm512_load_si512(q);
        w1 = _mm512_load_si512(q + 64);
      }
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) {
        const uint8_t* ar = ab + i * t.lda + k;
        acc0[i] = _mm512_dpbusd_epi32(acc0[i], broadcast4(ar), w0);
        acc1[i] = _mm512_dpbusd_epi32(acc1[i], broadcast4(ar + 4), w1);
      }
    }
    const int64_t iw = (p * t.blocks + b) * 16;
    const __m512i zt = _mm512_loadu_si512(t.w_zero_term + iw);
    const __m512i ws = _mm512_loadu_si512(t.w_sum + iw);
    const __m512 w_scale = _mm512_loadu_ps(t.w_scale + iw);
    for (int i = 0; i < M; ++i) {
      const int64_t ia = i * t.blocks + b;
      const __m512i a_sum = _mm512_set1_epi32(t.a_sum[ia]);
      const __m512i a_off = _mm512_set1_epi32(t.a_offset[ia]);
      // Wrapping int32 arithmetic gives the exact d, which fits (int_gemm checks).
      const __m512i d = _mm512_add_epi32(_mm512_add_epi32(acc0[i], acc1[i]),
                                         _mm512_sub_epi32(_mm512_mullo_epi32(zt, a_sum), _mm512_mullo_epi32(a_off, ws)));
      if (t.dots != nullptr) {
        _mm512_storeu_si512(t.dots + ((i * t.panels + p) * t.blocks + b) * 16, d);
        continue;
      }
      float* o = t.out + i * t.ldo + p * 16;
      const __m512 prev = b == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(o);
      const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(t.a_scale[ia]), w_scale);
      _mm512_storeu_ps(o, _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(d), prev));
    }
  }
}

template <WeightFormat F>
void run_format(const IntGemvArgs& t) {
  void (*panel)(const IntGemvArgs&, int64_t) = nullptr;
  switch (t.m) {
    case 8: panel = rows_panel<8, F>; break;
    case 7: panel = rows_panel<7, F>; break;
    case 6: panel = rows_panel<6, F>; break;
    case 5: panel = rows_panel<5, F>; break;
    case 4: panel = rows_panel<4, F>; break;
    case 3: panel = rows_panel<3, F>; break;
    case 2: panel = rows_panel<2, F>; break;
    default: panel = rows_panel<1, F>; break;
  }
  for (int64_t p = 0; p < t.panels; ++p) panel(t, p);
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
