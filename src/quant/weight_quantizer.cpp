#include "quant/weight_quantizer.h"

#include <algorithm>


namespace quarot {

QuantParams quant_params_for_clip(float w_min, float w_max, float clip, int bits, bool symmetric) {
  QuantParams p;
  if (symmetric) {
    const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
    const float amax = clip * std::max(std::fabs(w_min), std::fabs(w_max));
    p.scale = amax > 0.0f ? amax / qmax : 1.0f;  // an all-zero row stays zero with any scale
    p.zero = static_cast<float>(1 << (bits - 1));
  } else {
    const float lo = clip * std::min(w_min, 0.0f);
    const float hi = clip * std::max(w_max, 0.0f);
    const float range = hi - lo;
    p.scale = range > 0.0f ? range / static_cast<float>(max_code(bits)) : 1.0f;
    p.zero = std::nearbyint(-lo / p.scale);
  }
  return p;
}

QuantParams find_quant_params(const float* w, int64_t n, const WeightQuantSpec& spec) {
  float w_min = 0.0f, w_max = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    w_min = std::min(w_min, w[i]);
    w_max = std::max(w_max, w[i]);
  }
  QuantParams best = quant_params_for_clip(w_min, w_max, 1.0f, spec.bits, spec.symmetric);
  if (!spec.clip_search || (w_min == 0.0f && w_max == 0.0f)) return best;
  float best_err = quantization_error(w, n, best, spec.bits, spec.norm);
  const int steps = static_cast<int>(spec.max_shrink * static_cast<float>(spec.grid));
  for (int i = 1; i < steps; ++i) {
    const float shrink = 1.0f - static_cast<float>(i) / static_cast<float>(spec.grid);
    const QuantParams p = quant_params_for_clip(w_min, w_max, shrink, spec.bits, spec.symmetric);
    const float err = quantization_error(w, n, p, spec.bits, spec.norm, best_err);
    if (err < best_err) {  // strict: ties keep the wider range
      best_err = err;
      best = p;
    }
  }
  return best;
}

}  // namespace quarot
