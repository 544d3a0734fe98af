#pragma once
// Internal, included by act_quant_avx512.cpp (AVX2 divides: its reciprocal variant of
// 2026-12-05 was slower on the Xeon, docs/kernels.md): when a code
// clamp(rint(x / s) + add, lo, hi) may be computed as rint(x * r), r = RN(1 / s),
// instead of dividing (IEEE division and rint, as the reference does).
//
// Why it is exact. r = (1/s)(1 + e1) and RN(x/s) = (x/s)(1 + e2) with |e1|, |e2| <=
// 2^-24 (r normal; a subnormal x/s rounds to code 0 either way), so the exact product
// y = x r lies within |x/s| 2^-23 of RN(x/s). With n = rint(RN(y)) and d = RN(y - n)
// (one FMA), |d| < tie_limit = 1/2 - bound 2^-21 puts y at least bound 2^-21 - 2^-25 from
// every half step, farther than RN(x/s) can be from y while |x/s| <= bound: both lie
// inside (n - 1/2, n + 1/2) and the division's code is n. A lane at or over the limit
// takes the division. Lanes with |y| > bound - 1 may be off by one, but bound is 2 past
// the largest |code - add| the clamp lets through, so both candidates clamp alike.
namespace quarot::act_quant_detail {
namespace {

struct ReciprocalCodes {
  bool usable = false;  // false: divide every value
  float reciprocal = 0.0f;
  float tie_limit = 0.0f;
};

inline ReciprocalCodes reciprocal_codes(float s, float add, float lo, float hi) {
  ReciprocalCodes rc;
  rc.reciprocal = 1.0f / s;
  const float reach_lo = __builtin_fabsf(lo - add);
  const float reach_hi = __builtin_fabsf(hi - add);
  const float bound = (reach_lo > reach_hi ? reach_lo : reach_hi) + 2.0f;
  rc.tie_limit = 0.5f - bound * 0x1p-21f;
  // Codes reach 255 at most, so the limit stays near 1/2 (> 0.49).
  rc.usable = __builtin_isnormal(rc.reciprocal) && bound < 4096.0f;
  return rc;
}

}  // namespace
}  // namespace quarot::act_quant_detail
