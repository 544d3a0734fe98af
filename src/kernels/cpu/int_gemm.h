#pragma once
// Integer matrix product of quantized activations (act_quant.h) with an integer
// weight (codes, scales, zero points), int32 accumulation and a fused epilogue:
//
//   y[m, n] = sum_b t[m, n, b] * d[m, n, b]  + bias[n]  + residual[m, n]
//   d[m, n, b] = sum_{k in block b} (a.code[m, k] - a.offset[m, ga(k)]) * (w.code[n, k] - w.zero[n, gw(k)])
//   t[m, n, b] = a.scale[m, ga(k)] * w.scale[n, gw(k)]
//
// K is cut into blocks of the finer of the two group sizes (it must divide the
// coarser one). d is exact (int32; int_gemm rejects shapes where it could
// overflow). The float epilogue is part of the contract and is the same on every
// instruction-set path, so outputs are bit-identical across paths and thread
// counts:  f = 0;  for b in order: f = fma(a.scale * w.scale, float(d), f);
//          y = f + bias[n] (when bias);  y = y + residual[m, n] (when residual).
// (float(d) rounds to nearest even; fma rounds once. An explicit fma, because
// compilers contract a * b + c on their own where the target has FMA.)
//
// Implementation: the unsigned activation codes multiply the weight codes stored
// as signed bytes s = code - c (c = 0 for nibbles, 2^(bits-1) otherwise), and the
// zero points are corrected once per block:
//   d = sum a*s + (c - zero) * sum_block(a) - offset * sum_block(code - zero),
// with the weight sums precomputed at packing and the activation sums at quantization.
// Paths: scalar reference (the definition, int64), AVX2 (vpmaddubsw + vpmaddwd),
// AVX-512 VNNI (vpdpbusd), AMX-INT8 (tdpbusd on 16x64 tiles). Decode (M <= 8) runs
// the GEMV kernels of int_gemv_kernels.h, which stream the packed weight once as one
// linear range of panels per thread; prefill decodes a panel to int8 once per row block.
#include <cstdint>

#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/cpu_features.h"

namespace quarot {

// A linear layer's integer weight as stored in a quantized file.
struct IntWeightSource {
  int64_t rows = 0;  // output features N
  int64_t cols = 0;  // input features K
  int bits = 0;      // 2..8
  int64_t group = 0;  // 0 = one group per row, else divides cols
  // Codes in [0, 2^bits - 1], row-major [rows, cols]: two per byte (low nibble first)
  // when bits <= 4, else one per byte. With two per byte and cols odd, a row ends
  // mid-byte and the next row starts in its high nibble (the codes are one
  // continuous nibble stream).
  const uint8_t* packed_codes = nullptr;
  const float* scales = nullptr;  // [rows, cols / group]
  const float* zeros = nullptr;   // [rows, cols / group] integral values in [0, 2^bits - 1], or null: symmetric, zero = 2^(bits-1)
};

// The packed weight. Layout (SIMD paths): output columns in panels of 16; within a
// panel, each weight group is padded with zero codes (s = 0) to a multiple of 8
// positions, and every 4 consecutive positions k..k+3 of the 16 columns form a
// 64-byte "quad" [col][k] (the vpdpbusd / AMX B-tile row layout). int8 storage
// (bits > 4) keeps quads in order; nibble storage (bits <= 4) puts two quads in one
// 64-byte vector: quad 2j in the low nibbles, quad 2j+1 in the high nibbles.
// Per-group metadata is [panel][group][16 columns] (padding columns: scale 0).
// The scalar path keeps row-major codes [rows, cols] and [rows][group] metadata.
struct IntGemmWeight {
  Isa isa = Isa::kScalar;
  int64_t rows = 0;
  int64_t cols = 0;
  int bits = 0;
  int64_t group = 0;         // effective group size (cols when per row)
  int64_t groups = 0;        // cols / group
  int64_t group_padded = 0;  // positions per group in a panel (group rounded up to 8)
  bool nibbles = false;      // two codes per byte
  int code_bias = 0;         // c: stored s = code - c
  int64_t panels = 0;
  int64_t panel_bytes = 0;
  AlignedBytes data;
  AlignedFloats scales;
  AlignedArray<int32_t> zero_terms;  // c - zero
  AlignedArray<int32_t> sums;        // per group: sum of (code - zero)
  // Scalar path only: zero points [rows, groups].
  AlignedArray<int32_t> zeros;
};

// Packs `src` for `isa` (kScalar, kAvx2, kAvx512Vnni or kAmx; kAvx512 uses the AVX2
// integer kernels). Throws quarot::Error on a bad shape, bit width, group, a code
// or zero point out of range, a non-finite scale, or an unsupported isa.
IntGemmWeight pack_int_gemm_weight(const IntWeightSource& src, Isa isa);

// y [a.rows, w.rows] as above. bias [w.rows] and residual [a.rows, w.rows] may be
// null; residual may alias y. Throws quarot::Error when the shapes or group sizes do
// not fit together or int32 could overflow (block * (2^a.bits - 1) * (2^w.bits - 1)
// must stay below 2^31). Threads with OpenMP; results do not depend on the thread count.
void int_gemm(const IntGemmWeight& w, const QuantizedActivations& a, const float* bias, const float* residual,
              float* y);

// One product of int_gemm_many: y = the int_gemm of *w with the shared activations.
struct IntGemmProduct {
  const IntGemmWeight* w = nullptr;
  const float* bias = nullptr;
  const float* residual = nullptr;
  float* y = nullptr;
};
// int_gemm(*p.w, a, p.bias, p.residual, p.y) for each of `count` products, with the
// same results. Decode (a.rows <= 8) runs them in one parallel region (the products'
// panel chunks in one work list), which saves a thread wake-up and join per product
// (q/k/v, gate/up); products must not write each other's inputs.
void int_gemm_many(const IntGemmProduct* products, int count, const QuantizedActivations& a);

// y = silu(g) * u (vec_ops.h silu_mul_avx2's operations; silu_mul's on the scalar path)
// where g and u are what int_gemm writes for `gate` and `up` (no bias or residual). Where
// int_gemm_swiglu_fused is true the gating runs in the products' epilogue and neither
// product is written; elsewhere both go to scratch first. Same checks as int_gemm; the
// two weights must have one shape.
void int_gemm_swiglu(const IntGemmWeight& gate, const IntGemmWeight& up, const QuantizedActivations& a, float* y);
// Whether int_gemm_swiglu fuses the gating for these weights, `rows` activation rows
// quantized in groups of act_group (0: whole rows): prefill on a kernel with a gated
// epilogue (AMX), one K block, weights packed alike.
bool int_gemm_swiglu_fused(const IntGemmWeight& gate, const IntGemmWeight& up, int64_t rows, int64_t act_group);

// The kernel int_gemm runs for `w` and `rows` activation rows, e.g. "amx",
// "avx512vnni gemv", "avx2", "scalar", for benchmarks and logs.
const char* int_gemm_path(const IntGemmWeight& w, int64_t rows);

}  // namespace quarot
