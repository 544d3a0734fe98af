#include "kernels/cpu/kv_prefill_tiles.h"

#include <algorithm>
#include <cmath>

namespace quarot::kv_detail {
namespace {

// Loops ordered so each output's sum runs over d (or j) in order while the innermost
// loop walks independent outputs (which a compiler may vectorize without reordering).
void scores_scalar(const float* q, int64_t nq, int64_t hd, const float* kt, int64_t keys, float scale, float* s,
                   int64_t ld) {
  const int64_t width = std::min(kPrefillKeys, (keys + 15) / 16 * 16);
  for (int64_t i = 0; i < nq; ++i) {
    float acc[kPrefillKeys] = {};
    for (int64_t d = 0; d < hd; ++d) {
      const float a = q[i * hd + d];
      for (int64_t j = 0; j < width; ++j) acc[j] = std::fma(a, kt[d * kPrefillKeys + j], acc[j]);
    }
    for (int64_t j = 0; j < width; ++j) s[i * ld + j] = acc[j] * scale;
  }
}

void weighted_sum_scalar(const float* p, int64_t nq, int64_t ld, const float* v, int64_t keys, int64_t hd,
                         float* o) {
  for (int64_t i = 0; i < nq; ++i) {
    float* oi = o + i * hd;
    for (int64_t j = 0; j < keys; ++j) {
      const float a = p[i * ld + j];
      for (int64_t d = 0; d < hd; ++d) oi[d] = std::fma(a, v[j * hd + d], oi[d]);
    }
  }
}

}  // namespace

const PrefillKernels& prefill_kernels_scalar() {
  static const PrefillKernels k{scores_scalar, weighted_sum_scalar};
  return k;
}

const PrefillKernels& prefill_kernels_for(Isa isa, int64_t hd) {
  if (isa != Isa::kScalar && hd % 16 == 0) return prefill_kernels_avx2();
  return prefill_kernels_scalar();
}

}  // namespace quarot::kv_detail
