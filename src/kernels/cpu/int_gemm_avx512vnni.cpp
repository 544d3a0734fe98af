// AVX-512 VNNI integer GEMM tile: up to 8 activation rows x two 16-column panels,
// one zmm int32 accumulator per row and panel (16 of 32 registers). vpdpbusd adds
// four u8 x s8 products per lane into int32 without intermediate saturation, so
// every bit width pair is exact with one instruction per 4 positions. Decode
// (M <= 8) streams nibble panels directly: one 64-byte load feeds two vpdpbusd.
// Internal linkage except the table; no std:: templates (see act_quant_avx2.cpp).
#include <immintrin.h>

// GCC 12 warns inside its own _mm512_cvtepi32_ps (an intentionally undefined
// pass-through operand); nothing here is uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <cstring>

#include "kernels/cpu/int_gemm_kernels.h"

namespace quarot::int_gemm_detail {
namespace {

constexpr int kRows = 8;
constexpr int kPanels = 2;

__m512i broadcast4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

template <int M, int NP, WeightFormat F>
void tile_rows(const IntTileArgs& t) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const int64_t ldo = NP * 16;
  for (int i = 0; i < M; ++i) {
    for (int j = 0; j < NP; ++j) _mm512_storeu_ps(t.out + i * ldo + j * 16, _mm512_setzero_ps());
  }
  const int64_t w_block_bytes = t.kbw * (F == WeightFormat::kNibbles ? 8 : 16);
  for (int64_t b = 0; b < t.blocks; ++b) {
    __m512i acc[M][NP];
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) {
      for (int j = 0; j < NP; ++j) acc[i][j] = _mm512_setzero_si512();
    }
    const uint8_t* ab = t.a + b * t.kb;
    const uint8_t* wb = t.w + b * w_block_bytes;
    for (int64_t k = 0; k < t.kbw; k += 8) {
      __m512i w0[NP], w1[NP];
#pragma GCC unroll 2
      for (int j = 0; j < NP; ++j) {
        const uint8_t* p = wb + j * t.w_panel_stride;
        if constexpr (F == WeightFormat::kNibbles) {
          const __m512i v = _mm512_load_si512(p + (k / 8) * 64);
          w0[j] = _mm512_and_si512(v, low4);
          w1[j] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
        } else {
          w0[j] = _mm512_load_si512(p + (k / 4) * 64);
          w1[j] = _mm512_load_si512(p + (k / 4) * 64 + 64);
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
        const int64_t iw = (j * t.blocks + b) * 16;
        const __m512i zt = _mm512_loadu_si512(t.w_zero_term + iw);
        const __m512i ws = _mm512_loadu_si512(t.w_sum + iw);
        // Wrapping int32 arithmetic gives the exact d, which fits (int_gemm checks).
        const __m512i d =
            _mm512_add_epi32(acc[i][j], _mm512_sub_epi32(_mm512_mullo_epi32(zt, a_sum), _mm512_mullo_epi32(a_off, ws)));
        const __m512 scale = _mm512_mul_ps(a_scale, _mm512_loadu_ps(t.w_scale + iw));
        float* f = t.out + i * ldo + j * 16;
        _mm512_storeu_ps(f, _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(d), _mm512_loadu_ps(f)));
      }
    }
  }
}

template <int NP, WeightFormat F>
void tile_panels(const IntTileArgs& t) {
  switch (t.m) {
    case 8: return tile_rows<8, NP, F>(t);
    case 7: return tile_rows<7, NP, F>(t);
    case 6: return tile_rows<6, NP, F>(t);
    case 5: return tile_rows<5, NP, F>(t);
    case 4: return tile_rows<4, NP, F>(t);
    case 3: return tile_rows<3, NP, F>(t);
    case 2: return tile_rows<2, NP, F>(t);
    default: return tile_rows<1, NP, F>(t);
  }
}

void tile(const IntTileArgs& t) {
  if (t.format == WeightFormat::kNibbles) {
    return t.np == 2 ? tile_panels<2, WeightFormat::kNibbles>(t) : tile_panels<1, WeightFormat::kNibbles>(t);
  }
  return t.np == 2 ? tile_panels<2, WeightFormat::kInt8>(t) : tile_panels<1, WeightFormat::kInt8>(t);
}

int64_t prepared_kbw(int64_t kbw) { return kbw; }

void prepare_panel(const uint8_t* packed, WeightFormat format, int64_t blocks, int64_t kbw, uint8_t* out) {
  const int64_t positions = blocks * kbw;
  if (format == WeightFormat::kInt8) {
    std::memcpy(out, packed, positions * 16);
    return;
  }
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  for (int64_t s = 0; s < positions / 8; ++s) {
    const __m512i v = _mm512_load_si512(packed + s * 64);
    _mm512_store_si512(out + s * 128, _mm512_and_si512(v, low4));
    _mm512_store_si512(out + s * 128 + 64, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4));
  }
}

}  // namespace

const IntGemmKernels& int_gemm_kernels_avx512vnni() {
  static const IntGemmKernels kernels{kRows, kPanels, &prepared_kbw, &prepare_panel, &tile};
  return kernels;
}

}  // namespace quarot::int_gemm_detail
