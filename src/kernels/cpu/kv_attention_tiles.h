#pragma once
// Internal: the float work of decode and prefill attention over one tile of dequantized K / V
// rows (kv_attention.cpp), per instruction set. ISA kernels live in files compiled
// with that ISA's flags (kv_attention_tiles_avx2.cpp); no inline code here (ODR).
#include <cstdint>

#include "kernels/cpu/cpu_features.h"

namespace quarot::kv_detail {

struct TileKernels {
  // scores[i * ld + j] = scale * (q[i * hd ..] . k[j * ldk ..]) for i < nq, j < rows.
  // Key (value) rows are ldk (ldv) floats apart: hd for a dequantized tile, the whole
  // cache row (n_kv_heads * hd) when an FP32 cache is read in place.
  void (*scores)(const float* q, int64_t nq, const float* k, int64_t ldk, int64_t rows, int64_t hd, float scale,
                 float* scores, int64_t ld);
  // o[i * hd + d] = (accumulate ? o[i * hd + d] : 0) + sum_j p[i * ld + j] * v[j * ldv + d]
  // for i < nq, j < rows.
  void (*weighted_sum)(const float* p, int64_t nq, int64_t ld, const float* v, int64_t ldv, int64_t rows, int64_t hd,
                       float* o, bool accumulate);
  // Softmax numerators in place, given the row's running max mx (>= every s[j]):
  // s[j] = fast_exp2(max(-150, s[j] * log2(e) - mx * log2(e))) (fast_math.h; the clamp
  // keeps it defined for any input) for j < n; returns their sum. Paths agree to
  // float rounding (the polynomial's FMA contraction and the sum's order differ).
  float (*exp_sum)(float* s, int64_t n, float mx);
};

const TileKernels& tile_kernels_scalar();
// Needs hd % 8 == 0.
const TileKernels& tile_kernels_avx2();

// The fastest kernels `isa` allows for this head dimension.
const TileKernels& tile_kernels_for(Isa isa, int64_t hd);

}  // namespace quarot::kv_detail
