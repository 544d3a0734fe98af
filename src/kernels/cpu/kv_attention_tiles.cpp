#include "kernels/cpu/kv_attention_tiles.h"

#include "kernels/cpu/fast_math.h"

namespace quarot::kv_detail {
namespace {

void scores_scalar(const float* q, int64_t nq, const float* k, int64_t ldk, int64_t rows, int64_t hd, float scale,
                   float* scores, int64_t ld) {
  for (int64_t i = 0; i < nq; ++i)
    for (int64_t j = 0; j < rows; ++j) {
      float dot = 0.0f;
      for (int64_t d = 0; d < hd; ++d) dot += q[i * hd + d] * k[j * ldk + d];
      scores[i * ld + j] = dot * scale;
    }
}

void weighted_sum_scalar(const float* p, int64_t nq, int64_t ld, const float* v, int64_t ldv, int64_t rows,
                         int64_t hd, float* o, bool accumulate) {
  for (int64_t i = 0; i < nq; ++i) {
    float* oi = o + i * hd;
    if (!accumulate)
      for (int64_t d = 0; d < hd; ++d) oi[d] = 0.0f;
    for (int64_t j = 0; j < rows; ++j) {
      const float a = p[i * ld + j];
      for (int64_t d = 0; d < hd; ++d) oi[d] += a * v[j * ldv + d];
    }
  }
}

float exp_sum_scalar(float* s, int64_t n, float mx) {
  constexpr float kLog2e = 1.4426950408889634f;
  const float shift = mx * kLog2e;
  float sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    const float y = s[j] * kLog2e - shift;
    s[j] = detail::fast_exp2(y < -150.0f ? -150.0f : y);
    sum += s[j];
  }
  return sum;
}

}  // namespace

const TileKernels& tile_kernels_scalar() {
  static const TileKernels k{scores_scalar, weighted_sum_scalar, exp_sum_scalar};
  return k;
}

const TileKernels& tile_kernels_for(Isa isa, int64_t hd) {
  if (isa != Isa::kScalar && hd % 8 == 0) return tile_kernels_avx2();
  return tile_kernels_scalar();
}

}  // namespace quarot::kv_detail
