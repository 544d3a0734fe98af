#pragma once
// Internal: decode attention's float work done directly on a quantized KV store's
// codes (kv_store_q.h), for kv_attention.cpp: no dequantized FP32 copy of a tile is
// written and read back. With value = s * (c - z) per group, the scale comes out of
// the sums: for one group per head a key row costs one multiply by s after the
// dot product, and a value row's s folds into its softmax weight. (c - z) itself is
// exact in float (small integers), so the only change from "dequantize, then the
// float kernels" (kv_attention_tiles.h) is where the products by s are rounded and
// the summation order: the paths agree to float rounding.
// ISA kernels live in files compiled with that ISA's flags (kv_code_tiles_avx2.cpp);
// no inline code here (ODR).
#include <cstdint>

#include "kernels/cpu/cpu_features.h"

namespace quarot::kv_detail {

// `rows` consecutive positions of one KV head: codes and {scale, zero} pairs as
// QuantKvLayerStore::codes() / params() point at them.
struct CodeRows {
  const uint8_t* codes = nullptr;
  const float* params = nullptr;
  int64_t rows = 0;
  int64_t head_dim = 0;
  int64_t group = 0;  // values per {scale, zero}; divides head_dim
  bool packed = true;  // two 4-bit codes per byte (element 2i low nibble), else one per byte
};

// `work`: scratch of at least work_floats(nq, rows, head_dim) floats, not aliasing
// the other arguments (the kernels allocate nothing).
struct CodeTileKernels {
  // scores[i * ld + j] = scale * sum_d q[i * hd + d] * s_j(d) * (c_j[d] - z_j(d)) for
  // i < nq, j < k.rows (hd = k.head_dim).
  void (*scores)(const float* q, int64_t nq, const CodeRows& k, float scale, float* scores, int64_t ld,
                 float* work);
  // o[i * hd + d] = sum_j p[i * ld + j] * s_j(d) * (c_j[d] - z_j(d)) for i < nq,
  // j < v.rows (every o written; v.rows == 0 gives zeros).
  void (*weighted_sum)(const float* p, int64_t nq, int64_t ld, const CodeRows& v, float* o, float* work);
};

int64_t work_floats(int64_t nq, int64_t rows, int64_t head_dim);

// The reference: plain loops, group by group (s * sum (q * (c - z))).
const CodeTileKernels& code_tile_kernels_scalar();
// Needs head_dim % 16 == 0 and group % 16 == 0.
const CodeTileKernels& code_tile_kernels_avx2();

// The fastest kernels `isa` allows for this layout, or null where only the
// dequantize-then-FP32 route (kv_dequant.h + kv_attention_tiles.h) is vectorized:
// on an ISA path, layouts the AVX2 kernels do not take keep that route.
const CodeTileKernels* code_tile_kernels_for(Isa isa, int64_t head_dim, int64_t group);

}  // namespace quarot::kv_detail
