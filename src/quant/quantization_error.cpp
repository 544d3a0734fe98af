// The clip search's inner loop: ~80 candidate grids per row, so it dominates RTN.
// It is compiled without -ftrapping-math: quarot never enables floating-point
// exceptions, and without the flag GCC refuses to if-convert the clamp and keeps
// the loop scalar (results are identical either way; only speed changes).
#include <cmath>
#include <cstdint>

#include "quant/weight_quantizer.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "quant/fast_math.h"

namespace quarot {

float quantization_error(const float* w, int64_t n, QuantParams p, int bits, float norm) {
  const float top = static_cast<float>((1 << bits) - 1);
  const float scale = p.scale, zero = p.zero;
  // A reciprocal instead of a division per weight: this only ranks candidates, and the
  // chosen grid is applied with the exact division later.
  const float inv_scale = 1.0f / scale;
  // Independent partial sums (a fixed order, so results do not depend on the ISA)
  // that the compiler maps onto vector lanes.
  constexpr int kLanes = 8;
  float partial[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int k = 0; k < kLanes; ++k) {
      const float x = w[i + k];
      float code = __builtin_nearbyintf(x * inv_scale) + zero;
      code = code < 0.0f ? 0.0f : (code > top ? top : code);
      partial[k] += detail::fast_pow_abs(scale * (code - zero) - x, norm);
    }
  }
  float err = 0.0f;
  for (; i < n; ++i) {
    float code = __builtin_nearbyintf(w[i] * inv_scale) + zero;
    code = code < 0.0f ? 0.0f : (code > top ? top : code);
    err += detail::fast_pow_abs(scale * (code - zero) - w[i], norm);
  }
  for (int k = 0; k < kLanes; ++k) err += partial[k];
  return err;
}

}  // namespace quarot
