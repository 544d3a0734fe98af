#pragma once
// The integer grid weights are rounded to, shared by RTN and GPTQ so the two differ
// only by GPTQ's error feedback. Both forms are expressed with unsigned codes:
//   symmetric, b bits:  qmax = 2^(b-1) - 1, s = clip * max|w| / qmax,
//                       q = clamp(round(w / s), -qmax - 1, qmax); code = q + 2^(b-1)
//   asymmetric, b bits: lo = clip * min(min w, 0), hi = clip * max(max w, 0),
//                       s = (hi - lo) / (2^b - 1), z = round(-lo / s),
//                       code = clamp(round(w / s) + z, 0, 2^b - 1)
//   dequantized:        w' = s * (code - z), with z = 2^(b-1) when symmetric.
// These are the formulas of kernels/cpu/fake_quant.h (round half to even). The clip
// factor is 1, or, with the MSE search, the shrink p in {1, 0.99, ..., 1 - (grid *
// max_shrink - 1) / grid} minimizing sum |w - w'|^norm over the row or group
// (GPTQ/QuaRot defaults: max_shrink 0.8, grid 100, norm 2.4).
#include <cmath>
#include <cstdint>
#include <limits>

namespace quarot {

struct WeightQuantSpec {
  int bits = 4;
  bool symmetric = true;
  int64_t group = 0;  // 0 = one scale per output channel (row)
  bool clip_search = true;
  float max_shrink = 0.8f;
  int grid = 100;
  float norm = 2.4f;
};

// Scale and zero point of one row or group. For symmetric grids zero is 2^(b-1).
struct QuantParams {
  float scale = 1.0f;
  float zero = 0.0f;
};

inline int max_code(int bits) { return (1 << bits) - 1; }

// Clamp by comparisons (not fmin/fmax, which are library calls) so loops vectorize.
inline float clamp_code(float q, float top) { return q < 0.0f ? 0.0f : (q > top ? top : q); }

inline float quantize_to_code(float w, QuantParams p, int bits) {
  return clamp_code(std::nearbyint(w / p.scale) + p.zero, static_cast<float>(max_code(bits)));
}

inline float dequantize_code(float code, QuantParams p) { return p.scale * (code - p.zero); }

// Grid parameters for clip factor `clip` over w[0..n).
QuantParams quant_params_for_clip(float w_min, float w_max, float clip, int bits, bool symmetric);
// Grid parameters for w[0..n) under `spec` (with the MSE clip search when enabled).
QuantParams find_quant_params(const float* w, int64_t n, const WeightQuantSpec& spec);
// sum |w - w'|^norm over w[0..n) for the given grid (the search's objective, fast pow).
// Stops early, returning a partial sum above stop_above, once the sum exceeds it.
float quantization_error(const float* w, int64_t n, QuantParams p, int bits, float norm,
                         float stop_above = std::numeric_limits<float>::infinity());

}  // namespace quarot
