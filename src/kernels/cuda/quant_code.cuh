#pragma once
// One symmetric quantization code, q = clamp(rint(y / s), -qmax - 1, qmax) with
// qmax = 2^(BITS-1) - 1 and the IEEE division (kernels/cpu/int_quant.h's quantize_sym),
// for the GPU quantizers that must match it bit for bit (hadamard_quant.cu,
// swiglu_hadamard_quant.cu).
#include <cstdint>

namespace quarot::cuda {

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

// The reference: the code as a two's complement integer (low byte = the int8 code).
template <int BITS>
__device__ __forceinline__ uint32_t quant_code_exact(float y, float s) {
  constexpr float qmax = static_cast<float>((1 << (BITS - 1)) - 1);
  const float q = fminf(fmaxf(rintf(__fdiv_rn(y, s)), -qmax - 1.0f), qmax);
  return static_cast<uint32_t>(static_cast<int>(q));
}

}  // namespace quarot::cuda
