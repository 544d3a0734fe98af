#pragma once
// exp2, log2 and |x|^p as polynomials that vectorize (std::exp / std::pow do not
// without -ffast-math): softmax in attention and the clip search's L_p error.
// Accurate to ~1e-6 relative. Decisions are made on the integer bit patterns:
// under -ftrapping-math GCC will not if-convert a float comparison, which would
// keep the loops scalar.
#include <bit>
#include <cmath>
#include <cstdint>

namespace quarot::detail {

// log2(x) for finite x > 0 (normal floats).
inline float fast_log2(float x) {
  const int32_t bits = std::bit_cast<int32_t>(x);
  // Mantissa in [1, 2), then halved when above sqrt(2) so it is centred on 1 and the
  // atanh series below converges fast.
  int32_t m_bits = (bits & 0x007fffff) | 0x3f800000;
  const int32_t high = m_bits > 0x3fb504f3 ? 1 : 0;  // sqrt(2)
  m_bits -= high << 23;
  const float m = std::bit_cast<float>(m_bits);
  const float exponent = static_cast<float>((bits >> 23) - 127 + high);
  // ln(m) = 2 atanh(t), t = (m - 1) / (m + 1), |t| <= 0.172.
  const float t = (m - 1.0f) / (m + 1.0f);
  const float t2 = t * t;
  const float ln_m = t * (2.0f + t2 * (2.0f / 3 + t2 * (2.0f / 5 + t2 * (2.0f / 7 + t2 * (2.0f / 9)))));
  return exponent + ln_m * 1.4426950408889634f;
}

// 2^y for |y| < 1000, with the exponent clamped to the normal float range: results
// below it come out as ~1e-38 rather than 0, negligible in an error sum. (Masking
// them to 0 makes GCC branch, which stops vectorization.)
inline float fast_exp2(float y) {
  const float whole = __builtin_floorf(y);  // the builtin, so it inlines under an optimize pragma
  // 2^f = sqrt(2) e^g with g = (f - 1/2) ln 2 in [-0.347, 0.347): degree-6 Taylor.
  const float g = (y - whole - 0.5f) * 0.6931471805599453f;
  const float e_g =
      1.0f + g * (1.0f + g * (0.5f + g * (1.0f / 6 + g * (1.0f / 24 + g * (1.0f / 120 + g * (1.0f / 720))))));
  int32_t e = static_cast<int32_t>(whole);
  e = e > 127 ? 127 : (e < -126 ? -126 : e);
  const float scale = std::bit_cast<float>((e + 127) << 23);
  return scale * 1.4142135623730951f * e_g;
}

// |x|^p for p > 0; |x| below ~1e-30 gives ~1e-38 (see fast_exp2).
inline float fast_pow_abs(float x, float p) {
  const float a = std::bit_cast<float>(std::bit_cast<int32_t>(x) & 0x7fffffff);
  return fast_exp2(p * fast_log2(a));
}

}  // namespace quarot::detail
