#pragma once
// The CUDA backend's glue kernels (backend.h's embed, rmsnorm, rope, swiglu, add,
// plus the bias add after cuBLAS products). Device pointers, asynchronous on
// `stream`; each returns the launch's error code. The formulas are the CPU
// backend's (kernels/cpu/vec_ops.h, rope.h), evaluated in IEEE float without
// contraction; they agree with it to float rounding (reductions sum in a different
// order, and CUDA's expf / sinf / cosf are within 2 ulp rather than glibc's 1).
#include <cuda_runtime.h>

#include <cstdint>

namespace quarot::cuda {

// out[t, :] = table row tokens[t] (tokens: device int32, each in range).
cudaError_t embed_f32(const float* table, int64_t cols, const int32_t* tokens, int64_t n, float* out,
                      cudaStream_t stream);
cudaError_t embed_f16(const uint16_t* table, int64_t cols, const int32_t* tokens, int64_t n, float* out,
                      cudaStream_t stream);
// Integer grid (weight_encoding.h kIntGrid): out = scale[r, g] * (float(code) - float(zero)),
// codes packed per row (row_bytes bytes), zeros null when symmetric (zero = 2^(bits-1)).
cudaError_t embed_int(const uint8_t* codes, int64_t row_bytes, const float* scales, const float* zeros, int bits,
                      int64_t cols, int64_t group, const int32_t* tokens, int64_t n, float* out,
                      cudaStream_t stream);

// out[t, i] = x[t, i] * (1 / sqrt(sum_i x^2 / dim + eps)) * w[i]; w may be null; out may alias x.
cudaError_t rmsnorm_rows(const float* x, const float* w, int64_t n, int64_t dim, float eps, float* out,
                         cudaStream_t stream);
// HF rotate_half RoPE in place, row t at position pos0 + t; with dev_pos non-null
// the kernel reads pos0 from *dev_pos (device int) instead (recorded steps).
cudaError_t rope_rows(float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t pos0, const float* inv_freq,
                      cudaStream_t stream, const int* dev_pos = nullptr);
// out[i] = gate[i] / (1 + exp(-gate[i])) * up[i].
cudaError_t swiglu(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream);
// x[i] += y[i].
cudaError_t add_inplace(float* x, const float* y, int64_t n, cudaStream_t stream);
// y[m, j] += bias[j] for a [rows, cols] matrix.
cudaError_t add_bias_rows(float* y, const float* bias, int64_t rows, int64_t cols, cudaStream_t stream);

}  // namespace quarot::cuda
