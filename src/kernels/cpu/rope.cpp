#include "kernels/cpu/rope.h"

#include <cmath>
#include <vector>

namespace quarot {

void rope_angles(int64_t position, const float* inv_freq, int64_t half, float* cs) {
  for (int64_t i = 0; i < half; ++i) {
    // transformers computes the angle in float32 as position * inv_freq.
    const float angle = static_cast<float>(position) * inv_freq[i];
    cs[i] = std::cos(angle);
    cs[half + i] = std::sin(angle);
  }
}

void apply_rope_angles(float* x, int64_t n_heads, int64_t head_dim, const float* cs) {
  const int64_t half = head_dim / 2;
  const float* c = cs;
  const float* s = cs + half;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* lo = x + h * head_dim;
    float* hi = lo + half;
#pragma omp simd
    for (int64_t i = 0; i < half; ++i) {
      const float a = lo[i], b = hi[i];
      lo[i] = a * c[i] - b * s[i];
      hi[i] = b * c[i] + a * s[i];
    }
  }
}

void apply_rope(float* x, int64_t n_heads, int64_t head_dim, int64_t position, const float* inv_freq) {
  const int64_t half = head_dim / 2;
  constexpr int64_t kStack = 256;
  float stack[2 * kStack];
  std::vector<float> heap(half > kStack ? 2 * half : 0);
  float* cs = half > kStack ? heap.data() : stack;
  rope_angles(position, inv_freq, half, cs);
  apply_rope_angles(x, n_heads, head_dim, cs);
}

}  // namespace quarot
