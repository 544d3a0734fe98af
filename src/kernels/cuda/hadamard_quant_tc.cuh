#pragma once
// The tensor-core implementation of hadamard_quant_rows (HadamardQuantVariant::TensorCore),
// internal to hadamard_quant.cu's dispatch.
//
// H_p = H_R (x) H_C for p = R C, so a block of p values viewed as an R x C matrix X
// (value C i + j at row i, column j) rotates as Z = H_R X H_C (C = 64, R = p / 64 for
// p >= 1024; R = 16, C = p / 16 for p = 256, 512): two products with +-1
// matrices on the FP16 tensor cores (mma.m16n8k16, FP32 sums). X is exact in FP16; the
// intermediate P = H_R X is not, so it enters the second product as hi + lo FP16 parts
// (hi = fp16(P * 2^e), lo = fp16(P * 2^e - hi), 2^e per 16-row stripe keeping hi in
// FP16's normal range), which carries about 22 bits of P. Against the CPU's butterflies
// (the other variants, bit for bit) the sums are the same numbers in another order:
// codes equal except where y / s lies within ~1e-6 of a rounding tie, scales within a
// few ulp (tools/reference/hadamard_tc_precision.py models it; docs/cuda.md).
//
// Takes FP16 rows, p in {256, 512, ..., 8192}, cols a multiple of p and of 256 with
// ceil(cols / 1024) <= 16, or (p <= 4096) even and <= 28 (256 .. 28672); 4- or 8-bit codes
// in either layout (k order packed, or IntGemmActLayout::Int8EvenOdd); no RmsFold.
// hadamard_quant_tc_takes says whether a call fits; the dispatch runs the exact variants
// otherwise.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace quarot::cuda::detail {

bool hadamard_quant_tc_takes(int64_t cols, int64_t p, int bits, bool fp32_input, bool even_odd, bool rms_fold);

// Preconditions: hadamard_quant_tc_takes(...) and hadamard_quant_rows's argument checks.
cudaError_t hadamard_quant_tc(const __half* x, int64_t rows, int cols, int p, int bits, float clip, bool even_odd,
                              uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream);

}  // namespace quarot::cuda::detail
