// AVX2 dequantization of KV codes: 16 packed nibbles (8 bytes) or 8 bytes per step,
// widened to int32, converted, then (code - zero) * scale per group of 8 lanes.
// Internal linkage except the entry point (ODR: see gemm_avx2.cpp).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/kv_dequant.h"

namespace quarot::kv_detail {
namespace {

inline __m256 dequant8(__m128i bytes8, const float* param) {
  const __m256 c = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes8));
  return _mm256_mul_ps(_mm256_sub_ps(c, _mm256_set1_ps(param[1])), _mm256_set1_ps(param[0]));
}

}  // namespace

void dequant_rows_avx2(const uint8_t* codes, const float* params, int64_t rows, int64_t head_dim, int64_t group,
                       bool packed, float* out) {
  const int64_t code_bytes = packed ? (head_dim + 1) / 2 : head_dim, groups = head_dim / group;
  const __m128i low4 = _mm_set1_epi8(0x0f);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* c = codes + r * code_bytes;
    const float* p = params + r * 2 * groups;
    float* o = out + r * head_dim;
    if (packed) {
      int64_t d = 0;
      for (; d + 16 <= head_dim; d += 16) {
        uint64_t raw;
        std::memcpy(&raw, c + d / 2, 8);
        const __m128i b = _mm_cvtsi64_si128(static_cast<long long>(raw));
        const __m128i lo = _mm_and_si128(b, low4), hi = _mm_and_si128(_mm_srli_epi16(b, 4), low4);
        const __m128i elems = _mm_unpacklo_epi8(lo, hi);  // element order 0..15
        _mm256_storeu_ps(o + d, dequant8(elems, p + 2 * (d / group)));
        _mm256_storeu_ps(o + d + 8, dequant8(_mm_srli_si128(elems, 8), p + 2 * ((d + 8) / group)));
      }
      if (d < head_dim) {  // head_dim % 16 == 8
        uint32_t raw;
        std::memcpy(&raw, c + d / 2, 4);
        const __m128i b = _mm_cvtsi32_si128(static_cast<int>(raw));
        const __m128i lo = _mm_and_si128(b, low4), hi = _mm_and_si128(_mm_srli_epi16(b, 4), low4);
        _mm256_storeu_ps(o + d, dequant8(_mm_unpacklo_epi8(lo, hi), p + 2 * (d / group)));
      }
    } else {
      for (int64_t d = 0; d < head_dim; d += 8) {
        uint64_t raw;
        std::memcpy(&raw, c + d, 8);
        _mm256_storeu_ps(o + d, dequant8(_mm_cvtsi64_si128(static_cast<long long>(raw)), p + 2 * (d / group)));
      }
    }
  }
}

}  // namespace quarot::kv_detail
