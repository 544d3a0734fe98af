#include "kernels/cpu/int_quant.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace quarot {
namespace {

void check_args(int bits, int min_bits, float clip_ratio) {
  QUAROT_CHECK(bits >= min_bits && bits <= 8, "quantize: bit width {} is outside {}..8", bits, min_bits);
  QUAROT_CHECK(std::isfinite(clip_ratio) && clip_ratio > 0.0f, "quantize: clip ratio {} is not positive",
               clip_ratio);
}

}  // namespace

float quantize_sym(const float* x, int64_t n, int bits, float clip_ratio, int8_t* q) {
  check_args(bits, 2, clip_ratio);
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    QUAROT_CHECK(std::isfinite(x[i]), "quantize: non-finite value {} at index {}", x[i], i);
    amax = std::max(amax, std::fabs(x[i]));
  }
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  const float s = clip_ratio * amax / qmax;
  if (s == 0.0f) {
    std::fill(q, q + n, int8_t{0});
    return 0.0f;
  }
  for (int64_t i = 0; i < n; ++i) {
    q[i] = static_cast<int8_t>(std::clamp(std::nearbyint(x[i] / s), -qmax - 1.0f, qmax));
  }
  return s;
}

AsymQuantParams quantize_asym(const float* x, int64_t n, int bits, float clip_ratio, uint8_t* q) {
  check_args(bits, 1, clip_ratio);
  float lo = 0.0f, hi = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    QUAROT_CHECK(std::isfinite(x[i]), "quantize: non-finite value {} at index {}", x[i], i);
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  lo *= clip_ratio;
  hi *= clip_ratio;
  const float qmax = static_cast<float>((1 << bits) - 1);
  AsymQuantParams params;
  params.scale = (hi - lo) / qmax;
  if (params.scale == 0.0f) {
    std::fill(q, q + n, uint8_t{0});
    return params;
  }
  const float z = std::nearbyint(-lo / params.scale);
  params.zero = static_cast<int32_t>(z);
  for (int64_t i = 0; i < n; ++i) {
    q[i] = static_cast<uint8_t>(std::clamp(std::nearbyint(x[i] / params.scale) + z, 0.0f, qmax));
  }
  return params;
}

}  // namespace quarot
