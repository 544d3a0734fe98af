#pragma once
// |x|^p for the clip search's L_p error. std::pow is ~20x slower than the rest of
// the search and does not vectorize without -ffast-math; these branch-free
// polynomial forms vectorize and are accurate to ~1e-6 relative, far below the gap
// between neighbouring clip candidates.
#include <bit>
#include <cmath>
#include <cstdint>

namespace quarot::detail {

// log2(x) for finite x > 0 (normal floats).
inline float fast_log2(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  float exponent = static_cast<float>(static_cast<int32_t>(bits >> 23) - 127);
  float m = std::bit_cast<float>((bits & 0x007fffffu) | 0x3f800000u);  // mantissa in [1, 2)
  // Centre the mantissa on 1 so the atanh series below converges fast.
  const bool high = m > 1.41421356f;
  m = high ? m * 0.5f : m;
  exponent = high ? exponent + 1.0f : exponent;
  // ln(m) = 2 atanh(t), t = (m - 1) / (m + 1), |t| <= 0.172.
  const float t = (m - 1.0f) / (m + 1.0f);
  const float t2 = t * t;
  const float ln_m = t * (2.0f + t2 * (2.0f / 3 + t2 * (2.0f / 5 + t2 * (2.0f / 7 + t2 * (2.0f / 9)))));
  return exponent + ln_m * 1.4426950408889634f;
}

// 2^y, saturating to the normal float range.
inline float fast_exp2(float y) {
  y = std::fmin(std::fmax(y, -126.0f), 127.0f);
  const float whole = std::floor(y);
  // 2^f = sqrt(2) e^g with g = (f - 1/2) ln 2 in [-0.347, 0.347): degree-6 Taylor.
  const float g = (y - whole - 0.5f) * 0.6931471805599453f;
  const float e_g =
      1.0f + g * (1.0f + g * (0.5f + g * (1.0f / 6 + g * (1.0f / 24 + g * (1.0f / 120 + g * (1.0f / 720))))));
  const float scale = std::bit_cast<float>(static_cast<uint32_t>(static_cast<int32_t>(whole) + 127) << 23);
  return scale * 1.4142135623730951f * e_g;
}

// |x|^p for p > 0 (0 for x == 0).
inline float fast_pow_abs(float x, float p) {
  const float a = std::fabs(x);
  const float r = fast_exp2(p * fast_log2(a));
  return a > 1e-30f ? r : 0.0f;
}

}  // namespace quarot::detail
