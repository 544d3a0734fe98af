#pragma once
// RMSNorm of FP16 rows on the GPU, in the two forms a decoder layer needs.
//   rmsnorm_rows:        y[r, :] = fp16(x[r, :] * inv_rms(r) * gamma[:])   (the FP16 layer)
//   rows_scale_inv_rms:  scales[r] *= inv_rms(r)                         (the quantized layer)
// inv_rms(r) = 1 / sqrt(mean_j float(x[r, j])^2 + eps), sums in FP32.
// The second form is RMSNorm folded into a per-token symmetric quantizer: QuaRot folds
// gamma into the next weights, and quantizing x / rms(x) gives the codes of x with the
// scale divided by rms(x) (up to the rounding of the two float products), so the
// normalized rows are never written. A NaN scale stays NaN.
// Shapes (cudaErrorInvalidValue otherwise): rows >= 0, cols % 8 == 0, 8 <= cols <= 65536,
// x, y and gamma 16-byte aligned, eps >= 0.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace quarot::cuda {

cudaError_t rmsnorm_rows(const __half* x, const __half* gamma, int64_t rows, int64_t cols, float eps, __half* y,
                         cudaStream_t stream);
cudaError_t rows_scale_inv_rms(const __half* x, int64_t rows, int64_t cols, float eps, float* scales,
                               cudaStream_t stream);

}  // namespace quarot::cuda
