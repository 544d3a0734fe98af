#pragma once
// Internal, included by fwht_avx2.cpp and fwht_avx512.cpp: the transform's stages that
// pair whole registers (distance H registers, then 2H, ... up to R), on GCC vector
// types (__m256, __m512), so each file gets its own copy for its instruction set (see
// act_quant_kernels.h on the ODR). Every loop bound is a constant, so the loops unroll
// fully and r[] stays in registers (as plain loops over the distance, GCC kept r[] on
// the stack and the 128-point transform ran ~10% slower).
namespace quarot::fwht_detail {
namespace {

template <int R, int H, class V>
inline void pair_stages(V (&r)[R]) {
  if constexpr (H < R) {
#pragma GCC unroll 16
    for (int b = 0; b < R; b += 2 * H)
#pragma GCC unroll 16
      for (int j = b; j < b + H; ++j) {
        const V u = r[j], v = r[j + H];
        r[j] = u + v;
        r[j + H] = u - v;
      }
    pair_stages<R, 2 * H>(r);
  }
}

}  // namespace
}  // namespace quarot::fwht_detail
