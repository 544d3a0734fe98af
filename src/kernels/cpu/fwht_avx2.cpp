// AVX2 contiguous Walsh-Hadamard transform (fwht_kernels.h): stages h = 1, 2, 4 run
// inside one 8-float register (a lane permute brings each element's partner, an add
// and a subtract form both candidates, a blend keeps the one the element's index bit
// asks for), the later stages pair whole registers. Rows of up to 64 values (a
// 64-dimensional attention head, the Q/K rotation of every prefill token) stay in
// registers from load to store; the scalar loop spent ~3.7 cycles per value there.
#include <immintrin.h>

#include "kernels/cpu/fwht_kernels.h"
#include "kernels/cpu/fwht_register_stages.h"

namespace quarot::fwht_detail {
namespace {

// One stage of distance s within 8 lanes: lane i becomes v[i] + v[i + s] when bit s of
// i is clear and v[i - s] - v[i] when it is set (the scalar kernel's two expressions).
template <int kPermute, int kBlend>
__m256 stage(__m256 v) {
  const __m256 partner = kPermute < 0 ? _mm256_permute2f128_ps(v, v, 0x01) : _mm256_permute_ps(v, kPermute);
  return _mm256_blend_ps(_mm256_add_ps(v, partner), _mm256_sub_ps(partner, v), kBlend);
}

__m256 first_stages(__m256 v) { return stage<-1, 0xF0>(stage<0x4E, 0xCC>(stage<0xB1, 0xAA>(v))); }

template <int R>
void in_registers(const float* src, float* dst) {
  __m256 r[R];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) r[i] = first_stages(_mm256_loadu_ps(src + 8 * i));
  pair_stages<R, 1>(r);
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) _mm256_storeu_ps(dst + 8 * i, r[i]);
}

}  // namespace

void fwht_contiguous_avx2(const float* src, float* x, int64_t p) {
  switch (p) {
    case 8: return in_registers<1>(src, x);
    case 16: return in_registers<2>(src, x);
    case 32: return in_registers<4>(src, x);
    case 64: return in_registers<8>(src, x);
    default: break;
  }
  for (int64_t c = 0; c < p; c += 8) _mm256_storeu_ps(x + c, first_stages(_mm256_loadu_ps(src + c)));
  for (int64_t h = 8; h < p; h *= 2)
    for (int64_t block = 0; block < p; block += 2 * h)
      for (int64_t j = block; j < block + h; j += 8) {
        const __m256 u = _mm256_loadu_ps(x + j), v = _mm256_loadu_ps(x + j + h);
        _mm256_storeu_ps(x + j, _mm256_add_ps(u, v));
        _mm256_storeu_ps(x + j + h, _mm256_sub_ps(u, v));
      }
}

}  // namespace quarot::fwht_detail
