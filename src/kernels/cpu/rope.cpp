#include "kernels/cpu/rope.h"

#include <cmath>

namespace quarot {

void apply_rope(float* x, int64_t n_heads, int64_t head_dim, int64_t position, const float* inv_freq) {
  const int64_t half = head_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    // transformers computes the angle in float32 as position * inv_freq.
    const float angle = static_cast<float>(position) * inv_freq[i];
    const float c = std::cos(angle), s = std::sin(angle);
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + h * head_dim;
      const float a = v[i], b = v[i + half];
      v[i] = a * c - b * s;
      v[i + half] = b * c + a * s;
    }
  }
}

}  // namespace quarot
