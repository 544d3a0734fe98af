#pragma once
// SwiGLU, the k x k mixing factor and the Hadamard + per-token quantization of the
// down projection's input, in one pass over the gate/up matrix: the codes and scales
// of
//   swiglu_rows(gu, rows, inter, k, mix, y)                             (swiglu.cuh)
//   hadamard_quant_rows(y, rows, inter, p = inter / k, bits, clip, ...)  (hadamard_quant.cuh)
// bit for bit (the same float operations, including the FP16 rounding of y), without
// writing y (rows x inter FP16) and reading it back.
//
// Why: in a LLaMA2-70B-shaped layer the two passes take 2.6 + 1.9 ms of a 47.5 ms prefill
// at batch 16 on an H100, over a 1.9 GB intermediate that exists only to be quantized.
//
// How: one thread block per row at a time (p / 8 threads). Thread t holds, for each of
// the k blocks, 8 values whose index bits [3g, 3g + 3) vary (phase g; the other bits come
// from t), so the mixing, which combines the same index of the k blocks, stays in
// registers, and the butterflies run in the CPU's order (bits 0, 1, ..., log2 p - 1)
// with three bits per phase and one shared-memory transpose between phases. Codes are
// stored one byte each from the last phase (a warp's bytes are contiguous).
//
// Accepted (cudaErrorInvalidValue otherwise; the caller then runs the two passes):
// 1 <= k <= 8, p = inter / k in {512, 4096}, bits 4 or 8, layout Int8EvenOdd (or
// Standard with bits 8: one byte per code either way), clip > 0 finite, mix (host
// memory, row-major k x k, finite) when k > 1, gu 16-byte aligned, rows >= 0.
// Outputs as hadamard_quant_rows: q rows of inter bytes, scales[row] (FP32) and, when
// scales_h is not null, FP16; a row holding NaN or infinity gets a NaN scale and q = 0.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/int_gemm.cuh"

namespace quarot::cuda {

cudaError_t swiglu_hadamard_quant_rows(const __half* gu, int64_t rows, int64_t inter, int k, const float* mix,
                                       int bits, float clip_ratio, IntGemmActLayout layout, uint8_t* q,
                                       float* scales, __half* scales_h, cudaStream_t stream);

// Whether swiglu_hadamard_quant_rows takes this shape (so callers choose without a
// failed call).
bool swiglu_hadamard_quant_supported(int64_t inter, int k, int bits, IntGemmActLayout layout);

}  // namespace quarot::cuda
