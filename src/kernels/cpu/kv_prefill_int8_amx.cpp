// AMX-INT8 prefill attention products (kv_prefill_int8.h): both products are u8 x s8 with
// int32 sums, exactly tdpbusd, and the tile layouts of kv_prefill_int8.h are already its
// operands: a 16-row A tile is 16 query vectors (scores: 64 dimensions of qu) or 16 rows
// of softmax weights (weighted sum: the tile's 64 keys of u); a B tile is 16 quads x 16
// columns, i.e. 16 keys x 64 dimensions of a key tile (rows 256 bytes apart) or 64 keys x
// 16 dimensions of a value tile (rows hd * 4 bytes apart). Blocks of 2 x 2 C tiles (32
// rows x 32 columns) as in int_gemm_amx.cpp. The sums are exact and the float epilogues
// are the VNNI kernels' operations in the same order: the same bits. The codes, the
// softmax rows and the query quantization are the VNNI kernels'.
//
// Contract beyond the VNNI kernels': hd % 64 == 0; qu and u hold whole 16-row tiles (rows
// past nq are read, any values, and their results dropped); the weighted sum reads all
// 64 positions of u and of the value tile, so u must be zero past `keys` (the VNNI path
// asks that only up to the next multiple of 4); calls run between begin() and end().
#include <immintrin.h>

// GCC 12 warns inside its own _mm512_cvtepi32_ps (an intentionally undefined
// pass-through operand); nothing here is uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <cstdint>

#include "kernels/cpu/amx_tiles.h"
#include "kernels/cpu/kv_prefill_int8.h"

namespace quarot::kv_detail {
namespace {

constexpr int64_t kKeyTileRow = kPrefillKeys * 4;  // bytes between a key tile's quad rows

// tmm0-3 = A rows [0, 16) and [16, 32) (a, lda) x B strips at b and b + 64 (ldb), over
// `steps` K steps of 64 bytes (A) / 16 quad rows (B, b_step bytes apart).
inline void products_2x2(const uint8_t* a, int64_t lda, const int8_t* b, int64_t ldb, int64_t steps, int64_t b_step,
                         bool two_rows, bool two_strips) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t k = 0; k < steps; ++k) {
    const uint8_t* ak = a + k * 64;
    const int8_t* bk = b + k * b_step;
    _tile_loadd(4, ak, lda);
    _tile_loadd(6, bk, ldb);
    _tile_dpbusd(0, 4, 6);
    if (two_strips) {
      _tile_loadd(7, bk + 64, ldb);
      _tile_dpbusd(1, 4, 7);
    }
    if (two_rows) {
      _tile_loadd(5, ak + 16 * lda, lda);
      _tile_dpbusd(2, 5, 6);
      if (two_strips) _tile_dpbusd(3, 5, 7);
    }
  }
}

// acc[i * 32 + c]: row i < 32, column c < 32 of the 2 x 2 block.
inline void store_2x2(int32_t* acc) {
  _tile_stored(0, acc, 128);
  _tile_stored(1, acc + 16, 128);
  _tile_stored(2, acc + 16 * 32, 128);
  _tile_stored(3, acc + 16 * 32 + 16, 128);
}

void scores(const uint8_t* qu, int64_t nq, int64_t hd, const int8_t* kq, const int32_t* kcorr, const float* kscale,
            int64_t keys, const float* qfactor, float* s, int64_t ld) {
  const int64_t strips = std::min<int64_t>(4, (keys + 15) / 16);
  alignas(64) int32_t acc[32 * 32];
  for (int64_t r0 = 0; r0 < nq; r0 += 32) {
    const int64_t rows = std::min<int64_t>(32, nq - r0);
    for (int64_t s0 = 0; s0 < strips; s0 += 2) {
      const int64_t n_strips = std::min<int64_t>(2, strips - s0);
      products_2x2(qu + r0 * hd, hd, kq + s0 * 64, kKeyTileRow, hd / 64, 16 * kKeyTileRow, rows > 16, n_strips > 1);
      store_2x2(acc);
      for (int64_t i = 0; i < rows; ++i) {
        const __m512 f = _mm512_set1_ps(qfactor[r0 + i]);
        for (int64_t st = 0; st < n_strips; ++st) {
          const int64_t j = (s0 + st) * 16;
          const __m512i x = _mm512_sub_epi32(_mm512_load_si512(acc + i * 32 + st * 16), _mm512_loadu_si512(kcorr + j));
          const __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(x), f);
          _mm512_storeu_ps(s + (r0 + i) * ld + j, _mm512_mul_ps(t, _mm512_loadu_ps(kscale + j)));
        }
      }
    }
  }
}

void weighted_sum(const uint8_t* u, int64_t nq, int64_t ldu, const int8_t* vq, int64_t /*keys*/, int64_t hd,
                  const float* wscale, float* o) {
  const int64_t strips = hd / 16;
  alignas(64) int32_t acc[32 * 32];
  for (int64_t r0 = 0; r0 < nq; r0 += 32) {
    const int64_t rows = std::min<int64_t>(32, nq - r0);
    for (int64_t s0 = 0; s0 < strips; s0 += 2) {
      const int64_t n_strips = std::min<int64_t>(2, strips - s0);
      products_2x2(u + r0 * ldu, ldu, vq + s0 * 64, hd * 4, 1, 0, rows > 16, n_strips > 1);
      store_2x2(acc);
      for (int64_t i = 0; i < rows; ++i) {
        const __m512 f = _mm512_set1_ps(wscale[r0 + i]);
        for (int64_t st = 0; st < n_strips; ++st) {
          float* dst = o + (r0 + i) * hd + (s0 + st) * 16;
          _mm512_storeu_ps(dst, _mm512_fmadd_ps(f, _mm512_cvtepi32_ps(_mm512_load_si512(acc + i * 32 + st * 16)),
                                                _mm512_loadu_ps(dst)));
        }
      }
    }
  }
}

}  // namespace

const PrefillInt8Kernels& prefill_int8_kernels_amx() {
  static const PrefillInt8Kernels k = [] {
    PrefillInt8Kernels t = prefill_int8_kernels_avx512vnni();
    t.scores = scores;
    t.weighted_sum = weighted_sum;
    t.begin = amx_detail::configure_tiles;
    t.end = amx_detail::release_tiles;
    return t;
  }();
  return k;
}

}  // namespace quarot::kv_detail
