// Reference decode kernel: the contract of int_gemv_kernels.h one weight at a time,
// in int64 (the exact d), reading the same packed panels as the SIMD kernels.
#include <cmath>
#include <cstdint>

#include "kernels/cpu/int_gemv_kernels.h"

namespace quarot::int_gemv_detail {
namespace {

// The stored value s of column `col`, panel position kp (int_gemm.h's quad layout).
int stored(const uint8_t* panel, WeightFormat format, int64_t col, int64_t kp) {
  if (format == WeightFormat::kNibbles) return (panel[(kp / 8) * 64 + col * 4 + kp % 4] >> (4 * ((kp / 4) % 2))) & 0xF;
  return static_cast<int8_t>(panel[(kp / 4) * 64 + col * 4 + kp % 4]);
}

void run(const IntGemvArgs& t) {
  for (int64_t i = 0; i < t.m; ++i) {
    const uint8_t* a = t.a + i * t.lda;
    for (int64_t p = 0; p < t.panels; ++p) {
      const uint8_t* panel = t.w + p * t.panel_bytes;
      for (int64_t c = 0; c < 16; ++c) {
        float f = 0.0f;
        for (int64_t b = 0; b < t.blocks; ++b) {
          int64_t dot = 0;
          for (int64_t kk = 0; kk < t.kb; ++kk)
            dot += int64_t{a[b * t.kb + kk]} * stored(panel, t.format, c, b * t.kbw + kk);
          const int64_t ia = i * t.blocks + b, iw = (p * t.blocks + b) * 16 + c;
          const int64_t d = dot + int64_t{t.w_zero_term[iw]} * t.a_sum[ia] - int64_t{t.a_offset[ia]} * t.w_sum[iw];
          if (t.dots != nullptr) {
            t.dots[((i * t.panels + p) * t.blocks + b) * 16 + c] = static_cast<int32_t>(d);
          } else {
            f = std::fma(t.a_scale[ia] * t.w_scale[iw], static_cast<float>(static_cast<int32_t>(d)), f);
          }
        }
        if (t.dots == nullptr) t.out[i * t.ldo + p * 16 + c] = f;
      }
    }
  }
}

}  // namespace

const IntGemvKernels& int_gemv_kernels_scalar() {
  static const IntGemvKernels k{"scalar", &run};
  return k;
}

}  // namespace quarot::int_gemv_detail
