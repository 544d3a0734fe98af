#pragma once
// Internal, included by act_quant_avx2.cpp and act_quant_avx512.cpp: how a vector
// encoder gets the codes of the reference's division, clamp(rint(RN(x / s)) + add, lo,
// hi), from two fused multiply-adds instead of a division. (A variant of 2026-12-05
// tested |x r - rint(x r)| against a limit instead, which took as many operations as
// the division saved; docs/kernels.md.)
//
// The rounding: for a real t with |t| < 2^22, RN(t + M) with M = 1.5 * 2^23 is
// M + rint(t) (floats in [2^23, 2^24) are the integers; ties go to even, and M is
// even), so its float bits are bits(M) + rint(t): the integer code without a
// conversion, clamped as an integer. Beyond that range RN(t + M) is still monotonic in
// t, and so are its bits while it is positive (a negative float's bits read as a
// negative int32): every such t lies far past the clamp's reach (codes span at most
// 0..255) and clamps where the reference clamps.
//
// The bracket: with r_lo < (1/s)(1 - 2^-24) and r_hi > (1/s)(1 + 2^-24), the reference's
// RN(x / s) = (x / s)(1 + e), |e| <= 2^-24, lies between the exact products x r_lo and
// x r_hi. RN(. + M) is monotonic, so when fma(x, r_lo, M) and fma(x, r_hi, M) (each one
// rounding of an exact value) are the same float, RN(RN(x / s) + M) is that float too:
// the division's code. The bracket is about 2^-21 wide relative to x / s, so only a
// value within ~|x / s| 2^-21 of a half step differs and takes the division (about
// one 4-bit value in 10^5).
#include <cstdint>

namespace quarot::act_quant_detail {
namespace {

constexpr float kRoundingMagic = 12582912.0f;  // 1.5 * 2^23
constexpr int32_t kRoundingMagicBits = __builtin_bit_cast(int32_t, kRoundingMagic);

struct ReciprocalBracket {
  bool usable = false;  // false: divide every value (r_hi would overflow or r_lo underflow)
  float lo = 0.0f, hi = 0.0f;
};

// The clamp on the bits: code = clamp(bits, lo, hi) + shift for
// bits = bits(RN(x / s + 1.5 * 2^23)), i.e. clamp(rint(x / s) + add, lo, hi) + offset
// (add, lo and hi integral floats, as the encoders receive them).
struct CodeBits {
  int32_t lo = 0, hi = 0, shift = 0;
};
inline CodeBits code_bits(float add, float lo, float hi, int32_t offset) {
  const int32_t add_i = static_cast<int32_t>(add);
  return {static_cast<int32_t>(lo) - add_i + kRoundingMagicBits, static_cast<int32_t>(hi) - add_i + kRoundingMagicBits,
          add_i + offset - kRoundingMagicBits};
}

inline ReciprocalBracket reciprocal_bracket(float s) {
  const double r = 1.0 / static_cast<double>(s);  // within 2^-53 of 1/s
  ReciprocalBracket b;
  // One float step toward 0 and toward infinity on the bits (a positive float's bits
  // order as its value; nextafterf was a library call per group). A result that is not a
  // positive normal float makes the bracket unusable below.
  b.lo = __builtin_bit_cast(float, __builtin_bit_cast(uint32_t, static_cast<float>(r * (1.0 - 0x1p-23))) - 1u);
  b.hi = __builtin_bit_cast(float, __builtin_bit_cast(uint32_t, static_cast<float>(r * (1.0 + 0x1p-23))) + 1u);
  // Builtins, not <cmath>'s inline functions: this file is compiled with AVX-512 flags
  // (the ODR note of act_quant_kernels.h).
  b.usable = __builtin_isnormal(b.lo) && __builtin_isnormal(b.hi) && b.lo > 0.0f;
  return b;
}

}  // namespace
}  // namespace quarot::act_quant_detail
