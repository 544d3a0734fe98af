#pragma once
// One symmetric quantization code, q = clamp(rint(y / s), -qmax - 1, qmax) with
// qmax = 2^(BITS-1) - 1 and the IEEE division (kernels/cpu/int_quant.h's quantize_sym),
// for the GPU quantizers that must match it bit for bit (hadamard_quant.cu,
// swiglu_hadamard_quant.cu).
#include <cstdint>

namespace quarot::cuda {

// max(m, |v|) that keeps a NaN (max.NaN): a row's maximum then flags NaN, and its bit
// pattern, like infinity's, exceeds every finite one, so the bits can be reduced as integers.
__device__ __forceinline__ float max_nan(float a, float b) {
  float r;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
}
__device__ __forceinline__ float max_abs_nan(float m, float v) { return max_nan(m, fabsf(v)); }

// max |v| over N values (N a power of two) as a tree: log2 N dependent steps instead of N
// (the compiler may not reassociate the asm of a chain).
template <int N>
__device__ __forceinline__ float max_abs_nan_tree(const float* v) {
  static_assert(N >= 2 && (N & (N - 1)) == 0, "a power of two");
  if constexpr (N == 2) {
    return max_nan(fabsf(v[0]), fabsf(v[1]));
  } else {
    return max_nan(max_abs_nan_tree<N / 2>(v), max_abs_nan_tree<N / 2>(v + N / 2));
  }
}

// Without a division per value: t = y * (1 / s) differs from the correctly rounded
// y / s by a few ulp, which changes rint() only when y / s is within that distance of
// a half-integer; such values set near_tie and must take quant_code_exact. Clamping
// first is the same because the bounds are integers. Rounding adds 1.5 * 2^23: the
// float's low mantissa bits are then the two's complement integer (so its low byte is
// the int8 code), and no float -> int conversion (a quarter-rate instruction) runs.
template <int BITS>
__device__ __forceinline__ uint32_t quant_code(float y, float r, bool& near_tie) {
  constexpr float qmax = static_cast<float>((1 << (BITS - 1)) - 1);
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  // |t| <= 2^(BITS-1) + 1 after clamping, |t - y/s| <= 2^-22 * that; margin x4.
  constexpr float kTieEps = BITS == 4 ? 1.0f / (1 << 17) : 1.0f / (1 << 13);
  const float t = fminf(fmaxf(__fmul_rn(y, r), -qmax - 1.0f), qmax);
  const float big = __fadd_rn(t, kMagic);
  const float rounded = __fsub_rn(big, kMagic);
  near_tie |= fabsf(fabsf(__fsub_rn(t, rounded)) - 0.5f) < kTieEps;
  return __float_as_uint(big);
}

// The same without the per-value tie test, for a run of values sharing one scale: t = y *
// rr rounded to an integer as above (one fma gives rint(t) + 1.5 * 2^23, a second the
// signed distance to it, exact), and dmax collects |distance|. When the run ends,
// dmax > kQuantNearTie<BITS> means some value was within eps of a half-integer, and the
// whole run must be redone with quant_code_exact. kClamp (clip < 1) clamps t first; without
// it |t| stays below qmax + 1/2, so no clamp is needed. rr is 1 / s, or (1 / s) / sqrt(p)
// with y the unscaled value when 1 / sqrt(p) is a power of two (then y * rr is exactly
// (y / sqrt(p)) * (1 / s), one multiply less; callers keep s in [1e-30, 1e30]).
template <int BITS>
constexpr float kQuantNearTie = 0.5f - (BITS == 4 ? 1.0f / (1 << 17) : 1.0f / (1 << 13));

template <int BITS, bool kClamp>
__device__ __forceinline__ uint32_t quant_code_fast(float y, float rr, float& dmax) {
  constexpr float qmax = static_cast<float>((1 << (BITS - 1)) - 1);
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  float big, d;
  if constexpr (kClamp) {
    const float t = fminf(fmaxf(__fmul_rn(y, rr), -qmax - 1.0f), qmax);
    big = __fadd_rn(t, kMagic);
    d = __fsub_rn(t, __fsub_rn(big, kMagic));
  } else {
    big = __fmaf_rn(y, rr, kMagic);
    d = __fmaf_rn(y, rr, -__fsub_rn(big, kMagic));
  }
  dmax = fmaxf(dmax, fabsf(d));
  return __float_as_uint(big);
}

// The reference: the code as a two's complement integer (low byte = the int8 code).
template <int BITS>
__device__ __forceinline__ uint32_t quant_code_exact(float y, float s) {
  constexpr float qmax = static_cast<float>((1 << (BITS - 1)) - 1);
  const float q = fminf(fmaxf(rintf(__fdiv_rn(y, s)), -qmax - 1.0f), qmax);
  return static_cast<uint32_t>(static_cast<int>(q));
}

}  // namespace quarot::cuda
