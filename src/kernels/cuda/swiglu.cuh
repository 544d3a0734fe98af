#pragma once
// SwiGLU of a packed gate/up matrix, optionally followed by the k x k factor of a
// Kronecker rotation (M (x) I_B over the row, B = inter / k): the part of an online
// rotation of an intermediate size like 28672 = 7 x 4096 that is not a power-of-two
// Hadamard. The H_B (x) ... part is left to hadamard_quant_rows (p = B); the two commute.
//   h[r, i]        = silu(g) * u,  g = gu[r, i], u = gu[r, inter + i],  silu(g) = g / (1 + e^-g)
//   y[r, a B + j]  = sum_c mix[a k + c] * h[r, c B + j]        (k = 1: y = h)
// in FP32 (__expf and __fdividef: swiglu_math.cuh), one round to FP16. gu is [rows, 2 * inter] (gate columns first), y [rows, inter].
// Shapes (cudaErrorInvalidValue otherwise): 1 <= k <= 8, inter % (8 k) == 0, rows >= 0,
// gu and y 16-byte aligned, mix (host memory, row-major) holding k * k finite values when
// k > 1 (may be null for k = 1).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace quarot::cuda {

cudaError_t swiglu_rows(const __half* gu, int64_t rows, int64_t inter, int k, const float* mix, __half* y,
                        cudaStream_t stream);

}  // namespace quarot::cuda
