// AMX-INT8 integer GEMM tile: 32 activation rows x two 16-column panels as 2 x 2
// accumulator tiles (tmm0-3, 16 x 16 int32), A tiles of 16 rows x 64 codes
// (tmm4-5) loaded straight from the activation rows, B tiles of 16 quads x 16
// columns (tmm6-7) from the prepared panel: the packed quad layout is exactly
// tdpbusd's B layout, so preparing only widens nibbles and pads each K block to
// 64 positions with zeros (a block's tail then multiplies zero weights; the codes
// read past it belong to the next block or to the zeroed row padding).
// Accumulators go to memory once per K block for the AVX-512 epilogue. With one K block
// (`rows`, `rows_swiglu`) a task's row tiles are pipelined: tile i's products are issued
// before tile i-1's epilogue, which writes y itself (and, for gate/up, the SwiGLU gating).
// Callers must hold AMX permission (cpu_features.h: amx_permission()).
#include <immintrin.h>

// GCC 12 warns inside its own _mm512_cvtepi32_ps (an intentionally undefined
// pass-through operand); nothing here is uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/amx_tiles.h"
#include "kernels/cpu/int_gemm_kernels.h"
#include "kernels/cpu/silu_simd.h"

namespace quarot::int_gemm_detail {
namespace {

constexpr int kRows = 32;
constexpr int kPanels = 2;
// Rows per prefill task: each task widens its int4 panels once, so 256 rows widen half as often
// as 128; 512 was slower than 256 on 2 threads (docs/results/2026-12-06-xeon2-amx-row-block-256/).
constexpr int64_t kRowBlock = 256;

// The first block writes f = fma(scale, d, 0) (the contract's first step from f = 0, without
// reading a zeroed buffer), later ones accumulate into it.
template <bool kFirst>
void epilogue(const int32_t* acc, int64_t ld_acc, const IntTileArgs& t, int64_t b) {
  const int64_t ldo = t.np * 16;
  for (int64_t i = 0; i < t.m; ++i) {
    const int64_t ia = i * t.blocks + b;
    const __m512i a_sum = _mm512_set1_epi32(t.a_sum[ia]);
    const __m512i a_off = _mm512_set1_epi32(t.a_offset[ia]);
    const __m512 a_scale = _mm512_set1_ps(t.a_scale[ia]);
    for (int64_t j = 0; j < t.np; ++j) {
      const int64_t iw = (j * t.blocks + b) * 16;
      const __m512i dot = _mm512_loadu_si512(acc + i * ld_acc + j * 16);
      const __m512i zt = _mm512_loadu_si512(t.w_zero_term + iw);
      const __m512i ws = _mm512_loadu_si512(t.w_sum + iw);
      const __m512i d =
          _mm512_add_epi32(dot, _mm512_sub_epi32(_mm512_mullo_epi32(zt, a_sum), _mm512_mullo_epi32(a_off, ws)));
      const __m512 scale = _mm512_mul_ps(a_scale, _mm512_loadu_ps(t.w_scale + iw));
      float* f = t.out + i * ldo + j * 16;
      if constexpr (kFirst) {
        _mm512_storeu_ps(f, _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(d), _mm512_setzero_ps()));
      } else {
        _mm512_storeu_ps(f, _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(d), _mm512_loadu_ps(f)));
      }
    }
  }
}

// The products of one row tile and one K block (codes at a, prepared panels at w) into tmm0-3.
inline void products(const IntTileArgs& t, const uint8_t* a, const uint8_t* w, bool two_row_tiles, bool two_panels) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t k = 0; k < t.kbw; k += 64) {
    _tile_loadd(4, a + k, t.lda);
    _tile_loadd(6, w + k * 16, 64);
    _tile_dpbusd(0, 4, 6);
    if (two_panels) {
      _tile_loadd(7, w + t.w_panel_stride + k * 16, 64);
      _tile_dpbusd(1, 4, 7);
    }
    if (two_row_tiles) {
      _tile_loadd(5, a + 16 * t.lda + k, t.lda);
      _tile_dpbusd(2, 5, 6);
      if (two_panels) _tile_dpbusd(3, 5, 7);
    }
  }
}

void store_products(int32_t* acc) {
  _tile_stored(0, acc, 128);
  _tile_stored(1, acc + 16, 128);
  _tile_stored(2, acc + 16 * 32, 128);
  _tile_stored(3, acc + 16 * 32 + 16, 128);
}

// Between IntGemmKernels::begin and end (the tile configuration).
void tile(const IntTileArgs& t) {
  alignas(64) int32_t acc[32 * 32];
  for (int64_t b = 0; b < t.blocks; ++b) {
    products(t, t.a + b * t.kb, t.w + b * t.kbw * 16, t.m > 16, t.np == 2);
    store_products(acc);
    if (b == 0) {
      epilogue<true>(acc, 32, t, b);
    } else {
      epilogue<false>(acc, 32, t, b);
    }
  }
}

// The weight terms of a tile's panels, loaded once per row run.
struct PanelTerms {
  __m512i zero_term[kPanels], sum[kPanels];
  __m512 scale[kPanels];
  explicit PanelTerms(const IntTileArgs& t) {
    for (int64_t j = 0; j < t.np; ++j) {
      zero_term[j] = _mm512_loadu_si512(t.w_zero_term + j * 16);
      sum[j] = _mm512_loadu_si512(t.w_sum + j * 16);
      scale[j] = _mm512_loadu_ps(t.w_scale + j * 16);
    }
  }
};

// The activation terms of one row.
struct RowTerms {
  __m512i sum, offset;
  __m512 scale;
  RowTerms(const IntTileArgs& t, int64_t r)
      : sum(_mm512_set1_epi32(t.a_sum[r])), offset(_mm512_set1_epi32(t.a_offset[r])),
        scale(_mm512_set1_ps(t.a_scale[r])) {}
};

// One K block's f for panel j of one row from its 16 dot products: the contract's
// fma(a_scale * w_scale, float(dot + zero_term * a_sum - a_offset * w_sum), 0), the
// operations of epilogue<true>.
inline __m512 block_f(const int32_t* dot, const PanelTerms& w, int64_t j, const RowTerms& a) {
  const __m512i d = _mm512_add_epi32(_mm512_load_si512(dot), _mm512_sub_epi32(_mm512_mullo_epi32(w.zero_term[j], a.sum),
                                                                              _mm512_mullo_epi32(a.offset, w.sum[j])));
  return _mm512_fmadd_ps(_mm512_mul_ps(a.scale, w.scale[j]), _mm512_cvtepi32_ps(d), _mm512_setzero_ps());
}

// The valid columns of panel j (IntRowsOutput::cols).
inline __mmask16 panel_mask(const IntRowsOutput& o, int64_t j) {
  const int64_t valid = std::min<int64_t>(16, o.cols - j * 16);
  return valid <= 0 ? 0 : static_cast<__mmask16>((1u << valid) - 1);
}

// Rows [row, row + m) of one K block written straight into y: (f + bias) + residual, the
// operations of epilogue<true> followed by finish_tile.
void finish_rows(const int32_t* acc, const IntTileArgs& t, int64_t row, int64_t m, const IntRowsOutput& o) {
  const PanelTerms w(t);
  __m512 bias[kPanels];
  __mmask16 mask[kPanels];
  for (int64_t j = 0; j < t.np; ++j) {
    mask[j] = panel_mask(o, j);
    bias[j] = o.bias != nullptr ? _mm512_maskz_loadu_ps(mask[j], o.bias + j * 16) : _mm512_setzero_ps();
  }
  for (int64_t i = 0; i < m; ++i) {
    const int64_t r = row + i;
    const RowTerms a(t, r);
    float* y = o.y + r * o.ldy;
    const float* res = o.residual != nullptr ? o.residual + r * o.ldy : nullptr;
    for (int64_t j = 0; j < t.np; ++j) {
      __m512 f = block_f(acc + i * 32 + j * 16, w, j, a);
      if (o.bias != nullptr) f = _mm512_add_ps(f, bias[j]);
      if (res != nullptr) f = _mm512_add_ps(f, _mm512_maskz_loadu_ps(mask[j], res + j * 16));
      _mm512_mask_storeu_ps(y + j * 16, mask[j], f);
    }
  }
}

// Row tiles in turn, one behind: tile i's products go to the tile unit before tile i-1's
// epilogue runs on the vector units, so the two overlap (an epilogue right after its own
// products waited for them, and the tile unit idled through it). issue(i0, m, slot) issues
// the tile's products (storing what must leave the tile registers early into `slot`),
// store(slot) stores the rest after the previous tile's finish(row, m, slot).
template <typename Issue, typename Store, typename Finish>
void pipelined_rows(int64_t n_rows, Issue&& issue, Store&& store, Finish&& finish) {
  int64_t prev_row = -1, prev_m = 0;
  int cur = 0;
  for (int64_t i0 = 0; i0 < n_rows; i0 += kRows) {
    const int64_t m = std::min<int64_t>(kRows, n_rows - i0);
    issue(i0, m, cur);
    if (prev_row >= 0) finish(prev_row, prev_m, cur ^ 1);
    store(cur);
    prev_row = i0;
    prev_m = m;
    cur ^= 1;
  }
  if (prev_row >= 0) finish(prev_row, prev_m, cur ^ 1);
}

void rows(const IntTileArgs& t, int64_t n_rows, const IntRowsOutput& o) {
  alignas(64) int32_t acc[2][kRows * 32];
  pipelined_rows(
      n_rows, [&](int64_t i0, int64_t m, int) { products(t, t.a + i0 * t.lda, t.w, m > 16, t.np == 2); },
      [&](int slot) { store_products(acc[slot]); },
      [&](int64_t row, int64_t m, int slot) { finish_rows(acc[slot], t, row, m, o); });
}

// finish_rows' f of both products (the same activation rows, so g's row terms serve
// both), then silu(gate) * up into y.
void finish_swiglu(const int32_t* acc_g, const int32_t* acc_u, const IntTileArgs& g, const IntTileArgs& u,
                   int64_t row, int64_t m, const IntRowsOutput& o) {
  const PanelTerms wg(g), wu(u);
  __mmask16 mask[kPanels];
  for (int64_t j = 0; j < g.np; ++j) mask[j] = panel_mask(o, j);
  for (int64_t i = 0; i < m; ++i) {
    const int64_t r = row + i;
    const RowTerms a(g, r);
    float* y = o.y + r * o.ldy;
    for (int64_t j = 0; j < g.np; ++j) {
      const __m512 fg = block_f(acc_g + i * 32 + j * 16, wg, j, a);
      const __m512 fu = block_f(acc_u + i * 32 + j * 16, wu, j, a);
      _mm512_mask_storeu_ps(y + j * 16, mask[j], silu_detail::silu_mul<silu_detail::Avx512>(fg, fu));
    }
  }
}

// rows() for gate and up: a tile's gate products (stored at once: the up products need the
// accumulators), then its up products, with the previous tile's gated epilogue between them
// and the store of the up tiles.
void rows_swiglu(const IntTileArgs& g, const IntTileArgs& u, int64_t n_rows, const IntRowsOutput& o) {
  alignas(64) int32_t acc_g[2][kRows * 32];
  alignas(64) int32_t acc_u[2][kRows * 32];
  pipelined_rows(
      n_rows,
      [&](int64_t i0, int64_t m, int slot) {
        products(g, g.a + i0 * g.lda, g.w, m > 16, g.np == 2);
        store_products(acc_g[slot]);
        products(u, u.a + i0 * u.lda, u.w, m > 16, u.np == 2);
      },
      [&](int slot) { store_products(acc_u[slot]); },
      [&](int64_t row, int64_t m, int slot) { finish_swiglu(acc_g[slot], acc_u[slot], g, u, row, m, o); });
}

int64_t prepared_kbw(int64_t kbw) { return (kbw + 63) / 64 * 64; }

// Packed panel (nibbles or int8, blocks of kbw positions) to int8 quads, each
// block padded with zero quads to a multiple of 64 positions.
void prepare_panel(const uint8_t* packed, WeightFormat format, int64_t blocks, int64_t kbw, uint8_t* out) {
  const int64_t kbw64 = prepared_kbw(kbw);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  for (int64_t b = 0; b < blocks; ++b) {
    uint8_t* dst = out + b * kbw64 * 16;
    if (format == WeightFormat::kInt8) {
      std::memcpy(dst, packed + b * kbw * 16, kbw * 16);
    } else {
      const uint8_t* src = packed + b * kbw * 8;
      for (int64_t s = 0; s < kbw / 8; ++s) {
        const __m512i v = _mm512_load_si512(src + s * 64);
        _mm512_store_si512(dst + s * 128, _mm512_and_si512(v, low4));
        _mm512_store_si512(dst + s * 128 + 64, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4));
      }
    }
    std::memset(dst + kbw * 16, 0, (kbw64 - kbw) * 16);
  }
}

}  // namespace

const IntGemmKernels& int_gemm_kernels_amx() {
  static const IntGemmKernels kernels{kRows, kPanels, &prepared_kbw, &prepare_panel, &tile,
                                      &amx_detail::configure_tiles, &amx_detail::release_tiles, &rows,
                                      &rows_swiglu, kRowBlock};
  return kernels;
}

}  // namespace quarot::int_gemm_detail
