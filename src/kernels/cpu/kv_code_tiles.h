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

// Integer products for decode (kv_attention.h, KvProducts::kInt8), the same two
// functions on 4-bit codes with one {scale, zero} per row (group == head_dim, packed;
// zero points are integers, as the stores keep them, of magnitude <= 2^20), at most
// kCodeTileMaxRows rows:
//   scores: each query vector as 16-bit codes, q16_d = clamp(nearbyint(q_d * (Qmax / m)),
//     -Qmax, Qmax) with m = max_d |q_d| and Qmax = kCodeTileQueryMax (all codes 0 when
//     m == 0), Q = sum_d q16_d; per row j the exact int32 D_j = sum_d q16_d c_jd, then
//       scores[i * ld + j] = fma(-z_j, float(Q), float(D_j)) * (s_j * (scale * (m / Qmax))).
//   weighted_sum: per query, w_j = p[i * ld + j] * s_j as 16-bit codes
//     u_j = min(Wmax, nearbyint(w_j * (Wmax / W))) with W = max_j w_j and Wmax =
//     kCodeTileWeightMax (o = 0 when W == 0), A_d = sum_j u_j c_jd exact in int32,
//     corr = float(sum_j u_j z_j) (exact in double),
//     o[i * hd + d] = (float(A_d) - corr) * (W / Wmax).
// 16 bits, not 8: with 8-bit codes every weight below 1/510 of the tile's largest
// rounds to zero, and that version moved the WikiText-2 perplexity of decoded windows by
// +0.94% / -0.73% (W4A4KV4 / W4A8KV4) from the simulated path, against +0.08% / +0.16% at
// 16 bits (docs/kernels.md), whose roundings are 1/65278 of a query's and 1/65534 of a
// tile's largest value, far below the int4 cache's step (1/15 of its range). The kernels still multiply bytes and words on the int8
// units (vpdpbusd on the codes' two bytes, vpdpwssd). Inputs must be finite (the caller
// checks the queries; the stores refuse non-finite rows, and finite scores give finite
// weights). The AVX-512 kernels equal the scalar reference bit for bit (integer sums
// are exact; the float steps are the expressions above in the same order).
inline constexpr int32_t kCodeTileQueryMax = 32639;  // 127 * 256 + 127: high and low bytes both int8
inline constexpr int32_t kCodeTileWeightMax = 32767;
inline constexpr int64_t kCodeTileMaxRows = 4096;    // Wmax * 15 * rows < 2^31
const CodeTileKernels& code_tile_kernels_int8_scalar();
// AVX-512 VNNI + VBMI (vpermb / vpermt2b arrange query codes and value rows); head_dim % 64 == 0.
const CodeTileKernels& code_tile_kernels_int8_avx512vbmi();
// The VNNI kernels where `isa` and the CPU have them and the layout fits (packed 4-bit
// codes, group == head_dim, head_dim % 64 == 0), else null (the float kernels run).
const CodeTileKernels* code_tile_kernels_int8_for(Isa isa, int64_t head_dim, int64_t group, bool packed);

}  // namespace quarot::kv_detail
