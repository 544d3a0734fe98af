#pragma once
// The float operations of SwiGLU and its k x k mixing factor, shared by swiglu.cu and
// swiglu_hadamard_quant.cu so the fused kernel's intermediate is bit-identical to the
// FP16 rows swiglu_rows writes (the two must agree value for value).
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

namespace quarot::cuda {

constexpr int kSwigluMaxK = 8;
struct SwigluMix {  // row-major k x k, passed by value as a kernel argument
  float m[kSwigluMaxK * kSwigluMaxK];
};

__device__ __forceinline__ void unpack_half8(const uint4& raw, float (&f)[8]) {
  const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 t = __half22float2(h[i]);
    f[2 * i] = t.x, f[2 * i + 1] = t.y;
  }
}

// The host's k x k factor as a kernel argument: false when a value is not finite (k = 1:
// the identity, mix unused).
inline bool make_swiglu_mix(const float* mix, int k, SwigluMix& out) {
  out = SwigluMix{};
  for (int i = 0; i < k * k && k > 1; ++i) {
    if (!std::isfinite(mix[i])) return false;
    out.m[i] = mix[i];
  }
  return true;
}

// silu(g) * u = g / (1 + e^-g) * u, with the fast exponential and the fast division
// (2 ulp; reciprocal and product): the IEEE division's refinement and range checks were
// ~6 of the fused pass's ~45 instructions per value. For g < -87 the denominator is
// infinite and the quotient -0, silu's limit.
__device__ __forceinline__ float silu_times(float g, float u) { return __fdividef(g, 1.0f + __expf(-g)) * u; }

// out[a] = sum_c mix[a k + c] * h[c], an fma chain in c order (k = 1: out = h).
template <int K>
__device__ __forceinline__ void mix_column(const SwigluMix& mix, const float (&h)[K], float (&out)[K]) {
#pragma unroll
  for (int a = 0; a < K; ++a) {
    if constexpr (K == 1) {
      out[a] = h[a];
    } else {
      float s = 0.0f;
#pragma unroll
      for (int c = 0; c < K; ++c) s = fmaf(mix.m[a * K + c], h[c], s);
      out[a] = s;
    }
  }
}

// The mix over the k blocks of 8 consecutive indices a thread holds, in place: for each
// index e, v[.][e] <- out(mix_column(v[.][e])) (out: what the caller makes of each result,
// e.g. the FP16 rounding swiglu_rows' store applies).
template <int K, typename Out>
__device__ __forceinline__ void mix_blocks(const SwigluMix& mix, float (&v)[K][8], Out&& out) {
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    float col[K], mixed[K];
#pragma unroll
    for (int c = 0; c < K; ++c) col[c] = v[c][e];
    mix_column<K>(mix, col, mixed);
#pragma unroll
    for (int a = 0; a < K; ++a) v[a][e] = out(mixed[a]);
  }
}

}  // namespace quarot::cuda
