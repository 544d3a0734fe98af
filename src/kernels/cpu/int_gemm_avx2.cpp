// AVX2 integer GEMM tile: up to 4 activation rows x one 16-column panel, two ymm
// int32 accumulators per row. vpmaddubsw multiplies u8 activation codes by s8
// weights into int16 pair sums, vpmaddwd widens them to int32; ProductMode
// (int_gemm_kernels.h) says which variant is exact for the bit widths at hand.
// Internal linkage except the table; no std:: templates (see act_quant_avx2.cpp).
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/int_gemm_kernels.h"

namespace quarot::int_gemm_detail {
namespace {

constexpr int kRows = 4;

__m256i broadcast4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// The epilogue of one block for one row: f += (sa * sw) * float(d), d corrected.
void block_epilogue(__m256i acc_lo, __m256i acc_hi, const IntTileArgs& t, int64_t i, int64_t b, float* out) {
  const int64_t ia = i * t.blocks + b;
  const __m256i a_sum = _mm256_set1_epi32(t.a_sum[ia]);
  const __m256i a_off = _mm256_set1_epi32(t.a_offset[ia]);
  const __m256 a_scale = _mm256_set1_ps(t.a_scale[ia]);
  const __m256i acc[2] = {acc_lo, acc_hi};
  for (int h = 0; h < 2; ++h) {
    const int64_t iw = b * 16 + h * 8;
    const __m256i zt = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.w_zero_term + iw));
    const __m256i ws = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.w_sum + iw));
    // Wrapping int32 arithmetic: the true d fits in int32 (int_gemm checks), so the
    // wrapped intermediate terms still give it exactly.
    const __m256i d = _mm256_add_epi32(acc[h], _mm256_sub_epi32(_mm256_mullo_epi32(zt, a_sum), _mm256_mullo_epi32(a_off, ws)));
    const __m256 scale = _mm256_mul_ps(a_scale, _mm256_loadu_ps(t.w_scale + iw));
    float* f = out + i * 16 + h * 8;
    _mm256_storeu_ps(f, _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(d), _mm256_loadu_ps(f)));
  }
}

// The weights of positions k..k+3 (w0) and k+4..k+7 (w1), columns 0-7 and 8-15.
template <WeightFormat F>
inline void load_step(const uint8_t* wb, int64_t k, __m256i* w0, __m256i* w1) {
  if constexpr (F == WeightFormat::kNibbles) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const uint8_t* p = wb + (k / 8) * 64;
    for (int h = 0; h < 2; ++h) {
      const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 32 * h));
      w0[h] = _mm256_and_si256(v, low4);
      w1[h] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
    }
  } else {
    const uint8_t* p = wb + (k / 4) * 64;
    for (int h = 0; h < 2; ++h) {
      w0[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 32 * h));
      w1[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 64 + 32 * h));
    }
  }
}

// One kDeep chunk of the 4-row tile on int8 weights (prefill's prepared panels):
// s[i][h] += sum over the chunk's 8-position steps of the kFast int16 pair sums, the
// exact operations of the generic loop below. Written out because GCC keeps two of the
// eight int16 sums on the stack when it allocates the registers itself (all 16 ymm
// are live: 8 sums, 4 weight vectors, 2 broadcasts, 2 products), and the store/load
// of a sum on every step is a loop-carried chain through memory that cost about a
// third of the tile's time.
inline void deep_chunk_4x16(const uint8_t* a0, int64_t lda, const uint8_t* w, int64_t steps, __m256i s[4][2]) {
  __m256i s00 = s[0][0], s01 = s[0][1], s10 = s[1][0], s11 = s[1][1];
  __m256i s20 = s[2][0], s21 = s[2][1], s30 = s[3][0], s31 = s[3][1];
  const uint8_t* a1 = a0 + lda;
  const uint8_t* a2 = a1 + lda;
  const uint8_t* a3 = a2 + lda;
  int64_t k = 0;
  const int64_t k_end = 8 * steps;
  // AT&T operand order: vpmaddubsw signed_weights, unsigned_activations, destination.
#define QUAROT_DEEP_ROW(A, S0, S1)                         \
  "vpbroadcastd (%[" A "],%[k]), %%ymm12\n\t"              \
  "vpbroadcastd 4(%[" A "],%[k]), %%ymm13\n\t"             \
  "vpmaddubsw %%ymm8, %%ymm12, %%ymm14\n\t"                \
  "vpmaddubsw %%ymm10, %%ymm13, %%ymm15\n\t"               \
  "vpaddw %%ymm15, %%ymm14, %%ymm14\n\t"                   \
  "vpaddw %%ymm14, %[" S0 "], %[" S0 "]\n\t"               \
  "vpmaddubsw %%ymm9, %%ymm12, %%ymm14\n\t"                \
  "vpmaddubsw %%ymm11, %%ymm13, %%ymm15\n\t"               \
  "vpaddw %%ymm15, %%ymm14, %%ymm14\n\t"                   \
  "vpaddw %%ymm14, %[" S1 "], %[" S1 "]\n\t"
  __asm__(
      "1:\n\t"
      "vmovdqa (%[w]), %%ymm8\n\t"     // positions k..k+3, columns 0-7
      "vmovdqa 32(%[w]), %%ymm9\n\t"   // positions k..k+3, columns 8-15
      "vmovdqa 64(%[w]), %%ymm10\n\t"  // positions k+4..k+7, columns 0-7
      "vmovdqa 96(%[w]), %%ymm11\n\t"  // positions k+4..k+7, columns 8-15
      QUAROT_DEEP_ROW("a0", "s00", "s01") QUAROT_DEEP_ROW("a1", "s10", "s11")
      QUAROT_DEEP_ROW("a2", "s20", "s21") QUAROT_DEEP_ROW("a3", "s30", "s31")
      "add $128, %[w]\n\t"
      "add $8, %[k]\n\t"
      "cmp %[k_end], %[k]\n\t"
      "jl 1b\n\t"
      : [s00] "+x"(s00), [s01] "+x"(s01), [s10] "+x"(s10), [s11] "+x"(s11), [s20] "+x"(s20), [s21] "+x"(s21),
        [s30] "+x"(s30), [s31] "+x"(s31), [w] "+r"(w), [k] "+r"(k)
      : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3), [k_end] "r"(k_end)
      : "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
#undef QUAROT_DEEP_ROW
  s[0][0] = s00;
  s[0][1] = s01;
  s[1][0] = s10;
  s[1][1] = s11;
  s[2][0] = s20;
  s[2][1] = s21;
  s[3][0] = s30;
  s[3][1] = s31;
}

// kDeep: the kFast int16 pair sums of up to deep_steps steps are added in int16,
// then widened once (int_gemm_kernels.h gives the bound that keeps this exact).
template <int M, WeightFormat F>
void tile_rows_deep(const IntTileArgs& t) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (int i = 0; i < M; ++i) {
    _mm256_storeu_ps(t.out + i * 16, _mm256_setzero_ps());
    _mm256_storeu_ps(t.out + i * 16 + 8, _mm256_setzero_ps());
  }
  const int64_t w_block_bytes = t.kbw * (F == WeightFormat::kNibbles ? 8 : 16);
  const int64_t chunk = 8 * t.deep_steps;
  // The int32 sums live in memory (L1): they change once per chunk, and leaving the
  // 16 ymm registers to the int16 sums, weights and broadcasts avoids spills in the
  // inner loop.
  alignas(32) int32_t acc[M * 16];
  for (int64_t b = 0; b < t.blocks; ++b) {
    for (int i = 0; i < M * 16; ++i) acc[i] = 0;
    const uint8_t* ab = t.a + b * t.kb;
    const uint8_t* wb = t.w + b * w_block_bytes;
    for (int64_t k0 = 0; k0 < t.kbw; k0 += chunk) {
      const int64_t k1 = k0 + chunk < t.kbw ? k0 + chunk : t.kbw;
      __m256i s16[M][2];
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) s16[i][0] = s16[i][1] = _mm256_setzero_si256();
      if constexpr (M == 4 && F == WeightFormat::kInt8) {
        if (k1 > k0) deep_chunk_4x16(ab + k0, t.lda, wb + (k0 / 4) * 64, (k1 - k0) / 8, s16);
      } else
      for (int64_t k = k0; k < k1; k += 8) {
        __m256i w0[2], w1[2];
        load_step<F>(wb, k, w0, w1);
#pragma GCC unroll 4
        for (int i = 0; i < M; ++i) {
          const uint8_t* ar = ab + i * t.lda + k;
          const __m256i x0 = broadcast4(ar);
          const __m256i x1 = broadcast4(ar + 4);
          for (int h = 0; h < 2; ++h) {
            s16[i][h] = _mm256_add_epi16(
                s16[i][h], _mm256_add_epi16(_mm256_maddubs_epi16(x0, w0[h]), _mm256_maddubs_epi16(x1, w1[h])));
          }
        }
      }
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) {
        for (int h = 0; h < 2; ++h) {
          __m256i* a32 = reinterpret_cast<__m256i*>(acc + i * 16 + h * 8);
          _mm256_store_si256(a32, _mm256_add_epi32(_mm256_load_si256(a32), _mm256_madd_epi16(s16[i][h], ones)));
        }
      }
    }
    for (int i = 0; i < M; ++i) {
      block_epilogue(_mm256_load_si256(reinterpret_cast<const __m256i*>(acc + i * 16)),
                     _mm256_load_si256(reinterpret_cast<const __m256i*>(acc + i * 16 + 8)), t, i, b, t.out);
    }
  }
}

template <int M, WeightFormat F, ProductMode P>
void tile_rows(const IntTileArgs& t) {
  if constexpr (P == ProductMode::kDeep) return tile_rows_deep<M, F>(t);
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i sixteen = _mm256_set1_epi16(16);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int i = 0; i < M; ++i) {
    _mm256_storeu_ps(t.out + i * 16, _mm256_setzero_ps());
    _mm256_storeu_ps(t.out + i * 16 + 8, _mm256_setzero_ps());
  }
  const int64_t w_block_bytes = t.kbw * (F == WeightFormat::kNibbles ? 8 : 16);
  for (int64_t b = 0; b < t.blocks; ++b) {
    __m256i acc[M][2];
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
    const uint8_t* ab = t.a + b * t.kb;
    const uint8_t* wb = t.w + b * w_block_bytes;
    for (int64_t k = 0; k < t.kbw; k += 8) {
      __m256i w0[2], w1[2];  // positions k..k+3 and k+4..k+7; columns 0-7 and 8-15
      if constexpr (F == WeightFormat::kNibbles) {
        const uint8_t* p = wb + (k / 8) * 64;
        for (int h = 0; h < 2; ++h) {
          const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 32 * h));
          w0[h] = _mm256_and_si256(v, low4);
          w1[h] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
        }
      } else {
        const uint8_t* p = wb + (k / 4) * 64;
        for (int h = 0; h < 2; ++h) {
          w0[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 32 * h));
          w1[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + 64 + 32 * h));
        }
      }
#pragma GCC unroll 4
      for (int i = 0; i < M; ++i) {
        const uint8_t* ar = ab + i * t.lda + k;
        const __m256i x0 = broadcast4(ar);
        const __m256i x1 = broadcast4(ar + 4);
        if constexpr (P == ProductMode::kSplit) {
          const __m256i lo0 = _mm256_and_si256(x0, low4), hi0 = _mm256_and_si256(_mm256_srli_epi16(x0, 4), low4);
          const __m256i lo1 = _mm256_and_si256(x1, low4), hi1 = _mm256_and_si256(_mm256_srli_epi16(x1, 4), low4);
          for (int h = 0; h < 2; ++h) {
            const __m256i plo = _mm256_add_epi16(_mm256_maddubs_epi16(lo0, w0[h]), _mm256_maddubs_epi16(lo1, w1[h]));
            const __m256i phi = _mm256_add_epi16(_mm256_maddubs_epi16(hi0, w0[h]), _mm256_maddubs_epi16(hi1, w1[h]));
            acc[i][h] = _mm256_add_epi32(
                acc[i][h], _mm256_add_epi32(_mm256_madd_epi16(plo, ones), _mm256_madd_epi16(phi, sixteen)));
          }
        } else if constexpr (P == ProductMode::kFast) {
          for (int h = 0; h < 2; ++h) {
            const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(x0, w0[h]), _mm256_maddubs_epi16(x1, w1[h]));
            acc[i][h] = _mm256_add_epi32(acc[i][h], _mm256_madd_epi16(p, ones));
          }
        } else {
          for (int h = 0; h < 2; ++h) {
            acc[i][h] = _mm256_add_epi32(acc[i][h], _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(x0, w0[h]), ones),
                                                                     _mm256_madd_epi16(_mm256_maddubs_epi16(x1, w1[h]), ones)));
          }
        }
      }
    }
    for (int i = 0; i < M; ++i) block_epilogue(acc[i][0], acc[i][1], t, i, b, t.out);
  }
}

template <WeightFormat F, ProductMode P>
void tile_format(const IntTileArgs& t) {
  switch (t.m) {
    case 4: return tile_rows<4, F, P>(t);
    case 3: return tile_rows<3, F, P>(t);
    case 2: return tile_rows<2, F, P>(t);
    default: return tile_rows<1, F, P>(t);
  }
}

void tile(const IntTileArgs& t) {
  if (t.format == WeightFormat::kNibbles) {
    if (t.mode == ProductMode::kDeep) return tile_format<WeightFormat::kNibbles, ProductMode::kDeep>(t);
    return tile_format<WeightFormat::kNibbles, ProductMode::kFast>(t);
  }
  switch (t.mode) {
    case ProductMode::kDeep: return tile_format<WeightFormat::kInt8, ProductMode::kDeep>(t);
    case ProductMode::kFast: return tile_format<WeightFormat::kInt8, ProductMode::kFast>(t);
    case ProductMode::kPlain: return tile_format<WeightFormat::kInt8, ProductMode::kPlain>(t);
    case ProductMode::kSplit: return tile_format<WeightFormat::kInt8, ProductMode::kSplit>(t);
  }
}

int64_t prepared_kbw(int64_t kbw) { return kbw; }

// Nibbles to int8 quads at the same positions: one 64-byte vector of nibbles
// becomes two 64-byte quads.
void prepare_panel(const uint8_t* packed, WeightFormat format, int64_t blocks, int64_t kbw, uint8_t* out) {
  const int64_t positions = blocks * kbw;
  if (format == WeightFormat::kInt8) {
    std::memcpy(out, packed, positions * 16);
    return;
  }
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int64_t s = 0; s < positions / 8; ++s) {
    for (int h = 0; h < 2; ++h) {
      const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(packed + s * 64 + 32 * h));
      _mm256_store_si256(reinterpret_cast<__m256i*>(out + s * 128 + 32 * h), _mm256_and_si256(v, low4));
      _mm256_store_si256(reinterpret_cast<__m256i*>(out + s * 128 + 64 + 32 * h),
                         _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
    }
  }
}

}  // namespace

const IntGemmKernels& int_gemm_kernels_avx2() {
  static const IntGemmKernels kernels{kRows, 1, &prepared_kbw, &prepare_panel, &tile};
  return kernels;
}

}  // namespace quarot::int_gemm_detail
