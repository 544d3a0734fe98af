// The clip search's inner loop: ~80 candidate grids per row, so it dominates RTN.
// It is compiled without -ftrapping-math: quarot never enables floating-point
// exceptions, and without the flag GCC refuses to if-convert the clamp and keeps
// the loop scalar (results are identical either way; only speed changes).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "quant/weight_quantizer.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "kernels/cpu/fast_math.h"

namespace quarot {

float quantization_error(const float* w, int64_t n, QuantParams p, int bits, float norm, float stop_above) {
  const float top = static_cast<float>((1 << bits) - 1);
  const float scale = p.scale, zero = p.zero;
  // A reciprocal instead of a division per weight: this only ranks candidates, and the
  // chosen grid is applied with the exact division later.
  const float inv_scale = 1.0f / scale;
  auto error_of = [&](float x) {
    float code = __builtin_nearbyintf(x * inv_scale) + zero;
    code = code < 0.0f ? 0.0f : (code > top ? top : code);
    return detail::fast_pow_abs(scale * (code - zero) - x, norm);
  };
  // Chunks of independent partial sums (a fixed order, so results do not depend on
  // the ISA) that the compiler maps onto vector lanes. Every term is non-negative, so
  // a candidate already worse than `stop_above` is abandoned after any chunk.
  constexpr int kLanes = 8;
  constexpr int64_t kChunk = 64;
  float err = 0.0f;
  int64_t i = 0;
  while (i + kLanes <= n) {
    float partial[kLanes] = {};
    const int64_t chunk_end = std::min(n - (n - i) % kLanes, i + kChunk);
    for (; i < chunk_end; i += kLanes)
      for (int k = 0; k < kLanes; ++k) partial[k] += error_of(w[i + k]);
    for (int k = 0; k < kLanes; ++k) err += partial[k];
    if (err > stop_above) return err;
  }
  for (; i < n; ++i) err += error_of(w[i]);
  return err;
}

}  // namespace quarot
