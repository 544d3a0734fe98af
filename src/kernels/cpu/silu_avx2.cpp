// AVX2 + FMA SwiGLU gating (vec_ops.h silu_mul_avx2): silu_simd.h's algorithm on 8 lanes.
// Compiled without floating-point contraction, as silu_simd.h asks. Internal linkage except
// the entry point; no std:: templates (ODR, see act_quant_avx2.cpp).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/silu_simd.h"
#include "kernels/cpu/vec_ops.h"

namespace quarot {
namespace {

__m256 silu_mul8(__m256 g, __m256 u) { return silu_detail::silu_mul<silu_detail::Avx2>(g, u); }

}  // namespace

void silu_mul_avx2(const float* gate, const float* up, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, silu_mul8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  if (i < n) {
    float g[8] = {}, u[8] = {}, o[8];
    std::memcpy(g, gate + i, (n - i) * sizeof(float));
    std::memcpy(u, up + i, (n - i) * sizeof(float));
    _mm256_storeu_ps(o, silu_mul8(_mm256_loadu_ps(g), _mm256_loadu_ps(u)));
    std::memcpy(out + i, o, (n - i) * sizeof(float));
  }
}

}  // namespace quarot
