// AVX2 dequantization of KV codes: 16 packed nibbles (8 bytes) or 8 bytes per step,
// widened to int32, converted, then (code - zero) * scale with the group's
// parameters broadcast once per group (group % 8 == 0).
// Internal linkage except the entry point (ODR: see gemm_avx2.cpp).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/kv_dequant.h"

namespace quarot::kv_detail {
namespace {

inline __m256 dequant8(__m128i bytes8, __m256 scale, __m256 zero) {
  const __m256 c = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes8));
  return _mm256_mul_ps(_mm256_sub_ps(c, zero), scale);
}

inline __m128i load8(const uint8_t* p) {
  uint64_t raw;
  std::memcpy(&raw, p, 8);
  return _mm_cvtsi64_si128(static_cast<long long>(raw));
}

inline __m128i load4(const uint8_t* p) {
  uint32_t raw;
  std::memcpy(&raw, p, 4);
  return _mm_cvtsi32_si128(static_cast<int>(raw));
}

// Nibbles of the low bytes of b, in element order (low nibble first).
inline __m128i unpack_nibbles(__m128i b) {
  const __m128i low4 = _mm_set1_epi8(0x0f);
  return _mm_unpacklo_epi8(_mm_and_si128(b, low4), _mm_and_si128(_mm_srli_epi16(b, 4), low4));
}

}  // namespace

void dequant_rows_avx2(const uint8_t* codes, const float* params, int64_t rows, int64_t head_dim, int64_t group,
                       bool packed, float* out) {
  const int64_t code_bytes = packed ? (head_dim + 1) / 2 : head_dim, groups = head_dim / group;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* c = codes + r * code_bytes;
    const float* p = params + r * 2 * groups;
    float* o = out + r * head_dim;
    // Group by group, so the scale and zero are broadcast once per group.
    for (int64_t g = 0; g < groups; ++g) {
      const __m256 scale = _mm256_set1_ps(p[2 * g]), zero = _mm256_set1_ps(p[2 * g + 1]);
      const int64_t end = (g + 1) * group;
      int64_t d = g * group;
      if (packed) {
        for (; d + 16 <= end; d += 16) {
          const __m128i e = unpack_nibbles(load8(c + d / 2));
          _mm256_storeu_ps(o + d, dequant8(e, scale, zero));
          _mm256_storeu_ps(o + d + 8, dequant8(_mm_srli_si128(e, 8), scale, zero));
        }
        if (d < end) _mm256_storeu_ps(o + d, dequant8(unpack_nibbles(load4(c + d / 2)), scale, zero));
      } else {
        for (; d < end; d += 8) _mm256_storeu_ps(o + d, dequant8(load8(c + d), scale, zero));
      }
    }
  }
}

}  // namespace quarot::kv_detail
