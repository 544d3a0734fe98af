#include "kernels/cpu/fake_quant.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace quarot {
namespace {

// Symmetric needs 2 bits at least: with 1 bit qmax = 2^0 - 1 = 0 and no scale exists.
void check_bits(int bits, float clip_ratio, bool symmetric) {
  const int min_bits = symmetric ? 2 : 1;
  QUAROT_CHECK(bits >= min_bits && bits <= 16, "fake_quant: bit width {} is outside {}..16 ({})", bits, min_bits,
               symmetric ? "symmetric" : "asymmetric");
  QUAROT_CHECK(std::isfinite(clip_ratio) && clip_ratio > 0.0f, "fake_quant: clip ratio {} is not positive",
               clip_ratio);
}

// NaN-propagating max/min: std::max(a, NaN) would silently drop the NaN, and a
// group containing a NaN must come out NaN rather than quantized around it.
float max_nan(float a, float b) { return (std::isnan(a) || a > b) ? a : b; }
float min_nan(float a, float b) { return (std::isnan(a) || a < b) ? a : b; }

// Arithmetic stays in float throughout (never a float -> int conversion), so NaN
// and infinity flow through as values instead of undefined behaviour.
void sym_group(float* x, int64_t n, int bits, float clip_ratio) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = max_nan(amax, std::fabs(x[i]));
  if (amax == 0.0f) return;  // a zero group stays zero (and avoids 0/0)
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  const float qmin = -qmax - 1.0f;
  const float s = clip_ratio * amax / qmax;
  if (s == 0.0f) return;  // tiny subnormal group: the scale underflowed
  for (int64_t i = 0; i < n; ++i) {
    const float q = std::clamp(std::nearbyint(x[i] / s), qmin, qmax);
    x[i] = s * q;
  }
}

void asym_group(float* x, int64_t n, int bits, float clip_ratio) {
  float lo = 0.0f;
  float hi = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    lo = min_nan(lo, x[i]);
    hi = max_nan(hi, x[i]);
  }
  lo *= clip_ratio;
  hi *= clip_ratio;
  const float qmax = static_cast<float>((1 << bits) - 1);
  const float s = (hi - lo) / qmax;
  if (s == 0.0f) return;  // all zero (or underflowed): stays as is
  const float z = std::nearbyint(-lo / s);
  for (int64_t i = 0; i < n; ++i) {
    const float q = std::clamp(std::nearbyint(x[i] / s) + z, 0.0f, qmax);
    x[i] = s * (q - z);
  }
}

}  // namespace

void fake_quant_sym(float* x, int64_t n, int bits, float clip_ratio) {
  check_bits(bits, clip_ratio, true);
  if (n > 0) sym_group(x, n, bits, clip_ratio);
}

void fake_quant_asym(float* x, int64_t n, int bits, float clip_ratio) {
  check_bits(bits, clip_ratio, false);
  if (n > 0) asym_group(x, n, bits, clip_ratio);
}

void fake_quant_rows(float* x, int64_t rows, int64_t cols, int bits, float clip_ratio, int64_t group,
                     bool symmetric) {
  check_bits(bits, clip_ratio, symmetric);
  QUAROT_CHECK(rows >= 0 && cols >= 0, "fake_quant: invalid matrix shape [{}, {}]", rows, cols);
  QUAROT_CHECK(group >= 0, "fake_quant: negative group size {}", group);
  const int64_t g = group == 0 ? cols : group;
  QUAROT_CHECK(cols == 0 || cols % g == 0, "fake_quant: group size {} does not divide the row length {}", g, cols);
  if (rows == 0 || cols == 0) return;
  const int64_t groups_per_row = cols / g;
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (int64_t idx = 0; idx < rows * groups_per_row; ++idx) {
    float* p = x + idx * g;  // groups tile each row, and rows are contiguous
    if (symmetric) {
      sym_group(p, g, bits, clip_ratio);
    } else {
      asym_group(p, g, bits, clip_ratio);
    }
  }
}

}  // namespace quarot
