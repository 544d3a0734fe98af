// AVX-512 contiguous Walsh-Hadamard transform (fwht_kernels.h), the AVX2 kernel's
// scheme on 16-float registers: stages h = 1, 2, 4, 8 inside one register (a lane
// permute brings each element's partner, an add and a subtract form both candidates, a
// mask blend keeps the one the element's index bit asks for), the later stages pair
// whole registers. Rows of up to 256 values (down_proj's H_128 blocks, a 64- or
// 128-dimensional head) stay in registers from load to store.
#include <immintrin.h>

#include "kernels/cpu/fwht_kernels.h"
#include "kernels/cpu/fwht_register_stages.h"

namespace quarot::fwht_detail {
namespace {

// Lane i becomes v[i] + v[i + s] when bit s of i is clear and v[i - s] - v[i] when it is
// set (the scalar kernel's two expressions); `partner` holds v[i ^ s]. One fused
// multiply-add with a +-1 lane sign gives both: v * (+-1) is exact, so the one rounding
// of partner +- v is the add's or the subtract's (half the work of both plus a blend).
__m512 stage(__m512 v, __m512 partner, __m512 sign) { return _mm512_fmadd_ps(v, sign, partner); }

// +1 where bit s of the lane index is clear, -1 where it is set.
__m512 lane_signs(int s) {
  alignas(64) float f[16];
  for (int i = 0; i < 16; ++i) f[i] = (i & s) ? -1.0f : 1.0f;
  return _mm512_load_ps(f);
}

struct FirstStageSigns {
  __m512 s1 = lane_signs(1), s2 = lane_signs(2), s4 = lane_signs(4), s8 = lane_signs(8);
};

__m512 first_stages(__m512 v, const FirstStageSigns& g) {
  v = stage(v, _mm512_permute_ps(v, 0xB1), g.s1);               // s = 1
  v = stage(v, _mm512_permute_ps(v, 0x4E), g.s2);               // s = 2
  v = stage(v, _mm512_shuffle_f32x4(v, v, 0xB1), g.s4);         // s = 4: swap 128-bit quarters 0<->1, 2<->3
  return stage(v, _mm512_shuffle_f32x4(v, v, 0x4E), g.s8);      // s = 8: swap 256-bit halves
}

template <int R>
void in_registers(const float* src, float* dst) {
  const FirstStageSigns g;
  __m512 r[R];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) r[i] = first_stages(_mm512_loadu_ps(src + 16 * i), g);
  pair_stages<R, 1>(r);
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) _mm512_storeu_ps(dst + 16 * i, r[i]);
}

}  // namespace

void fwht_contiguous_avx512(const float* src, float* x, int64_t p) {
  switch (p) {
    case 16: return in_registers<1>(src, x);
    case 32: return in_registers<2>(src, x);
    case 64: return in_registers<4>(src, x);
    case 128: return in_registers<8>(src, x);
    case 256: return in_registers<16>(src, x);
    default: break;
  }
  const FirstStageSigns g;
  for (int64_t c = 0; c < p; c += 16) _mm512_storeu_ps(x + c, first_stages(_mm512_loadu_ps(src + c), g));
  for (int64_t h = 16; h < p; h *= 2)
    for (int64_t block = 0; block < p; block += 2 * h)
      for (int64_t j = block; j < block + h; j += 16) {
        const __m512 u = _mm512_loadu_ps(x + j), v = _mm512_loadu_ps(x + j + h);
        _mm512_storeu_ps(x + j, _mm512_add_ps(u, v));
        _mm512_storeu_ps(x + j + h, _mm512_sub_ps(u, v));
      }
}

}  // namespace quarot::fwht_detail
