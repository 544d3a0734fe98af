#pragma once
// Per-token activation quantization for the CUDA backend's linear layers, fused with
// the online rotation (cuda_row_ops.cuh; bit-identical to the CPU's). One thread
// block per row. Device pointers, asynchronous on `stream`; rows of `cols` values.
//
// quantize_rows_int: the CPU integer path's formula (kernels/cpu/act_quant.h,
// symmetric, whole row) bit for bit:
//   qmax = 2^(bits-1) - 1, s = clip * max|y| / qmax,
//   q = clamp(rint(y / s), -qmax - 1, qmax)            (IEEE division, half to even)
// an all-zero row (or s == 0) gives s = 0 and q = 0. Output in int_gemm.cuh's
// operand layout: rows of `padded_cols` values (a multiple of 128 >= cols, the
// padding q = 0, which adds nothing to a product), int4 two per byte, low nibble
// first (storage_bits 4, needs bits <= 4) or one int8 per value (storage_bits 8), and
// with layout Int8EvenOdd (storage_bits 8 only) each 32 values as their 16 even then
// their 16 odd ones (int_gemm.cuh's IntGemmActLayout, what its WgmmaRs path reads).
// A row with a non-finite value cannot be encoded: its scale becomes NaN, its q 0,
// and *error_flag is set to 1 (the backend reports it as an Error at its next
// synchronization).
//
// fake_quant_rows_f16: the simulated arithmetic (kernels/cpu/fake_quant.h's
// fake_quant_rows: symmetric or asymmetric, groups of `group` values, 0 = whole
// row, NaN propagating) on the rotated row, the result rounded to FP16 for cuBLAS.
// bits 0 = no quantization (rotation and conversion only).
//
// Rows longer than shared memory allows give cudaErrorInvalidValue.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/cuda_row_ops.cuh"
#include "kernels/cuda/int_gemm.cuh"

namespace quarot::cuda {

cudaError_t quantize_rows_int(const RotationArgs& r, const float* x, int64_t rows, int64_t cols,
                              int64_t padded_cols, int bits, int storage_bits, IntGemmActLayout layout,
                              float clip_ratio, uint8_t* q, float* scales, int* error_flag, cudaStream_t stream);

cudaError_t fake_quant_rows_f16(const RotationArgs& r, const float* x, int64_t rows, int64_t cols, int bits,
                                float clip_ratio, int64_t group, bool symmetric, __half* out, cudaStream_t stream);

}  // namespace quarot::cuda
