#pragma once
// FP32-activation product with a weight kept in its stored encoding (weight-only
// quantization, e.g. an F16 or int8 lm_head, or W4A16 linears):
//   y[n, rows] = x[n, cols] * W^T (+ bias[rows]),  W given by a WeightEncoding of kind
//   kF16 or kIntGrid (bits 2..8, symmetric or asymmetric, per-row or group scales).
// W is read in place: no FP32 copy of the whole matrix is kept, so decode streams the
// stored bytes (2 per F16 weight, 1 or 1/2 per int weight) instead of 4.
//
// Exactness contract: F16 weights enter exactly (F16 -> FP32 is exact). Int weights:
// the scalar and AVX2 kernels and every prefill path use WeightEncoding::dequantize_rows'
// value float(scale) * float(code - zero) (one rounding), so they differ from an FP32
// gemm on dequantize() only by the order of the FP32 sums; the AVX-512 GEMV (decode)
// sums the exact integers (code - zero) times x within each scale group and multiplies
// the group's sum by its scale, so it differs by one rounding per weight more or less
// (float rounding, bounded like the summation order's).
//
// Shapes: n <= 8 (decode) runs a GEMV that reads each W row once for all n activation
// rows; n > 8 (prefill) converts panels of 16 W rows to FP32 in a thread-local tile
// and multiplies them against all n rows with the FP32 gemm's register tiles.
// Threads: OpenMP, static schedule over output rows / row blocks. Every output element
// is one thread's sum in a fixed order, so results do not depend on the thread count.
//
// isa: kScalar is the reference; kAvx2 uses F16C / integer unpacking + FMA. AVX-512
// paths (kAvx512, kAvx512Vnni, kAmx) run a 16-wide GEMV for decode (groups whose size
// is not a multiple of 16 fall back to the AVX2 one) and the AVX2 prefill panels.
// Throws quarot::Error on: kind kF32 (use pack_gemm_weight + gemm, which is faster for
// FP32), an int bit width outside 2..8, a non-positive shape, n < 0, null x / y (n > 0),
// or an instruction set this CPU cannot run. The encoding must have passed validate().
#include <cstdint>

#include "kernels/cpu/cpu_features.h"
#include "kernels/weight_encoding.h"

namespace quarot {

void weight_only_gemm(const WeightEncoding& w, const float* x, int64_t n, const float* bias, float* y, Isa isa);

// Activation rows up to which weight_only_gemm runs the GEMV (decode) path.
inline constexpr int64_t kWeightOnlyGemvMaxRows = 8;

}  // namespace quarot
