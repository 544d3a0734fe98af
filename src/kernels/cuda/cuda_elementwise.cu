#include <cuda_fp16.h>

#include "kernels/cuda/cuda_elementwise.cuh"
#include "kernels/cuda/cuda_row_ops.cuh"

namespace quarot::cuda {
namespace {

constexpr int kThreads = 256;

// Grid-stride loops cover any n with a bounded grid.
unsigned capped_blocks(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(b < 65535 * 8 ? b : 65535 * 8);
}

__global__ void embed_f32_kernel(const float* table, int64_t cols, const int32_t* tokens, float* out) {
  const float* src = table + static_cast<int64_t>(tokens[blockIdx.x]) * cols;
  float* dst = out + static_cast<int64_t>(blockIdx.x) * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dst[c] = src[c];
}

__global__ void embed_f16_kernel(const __half* table, int64_t cols, const int32_t* tokens, float* out) {
  const __half* src = table + static_cast<int64_t>(tokens[blockIdx.x]) * cols;
  float* dst = out + static_cast<int64_t>(blockIdx.x) * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dst[c] = __half2float(src[c]);
}

__global__ void embed_int_kernel(const uint8_t* codes, int64_t row_bytes, const float* scales, const float* zeros,
                                 int bits, int64_t cols, int64_t group, const int32_t* tokens, float* out) {
  const int64_t r = tokens[blockIdx.x];
  const uint8_t* p = codes + r * row_bytes;
  const int64_t groups = cols / group;
  float* dst = out + static_cast<int64_t>(blockIdx.x) * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    const int64_t g = c / group;
    const int code = bits <= 4 ? (p[c / 2] >> ((c & 1) * 4)) & 0x0f : p[c];
    const float zero = zeros != nullptr ? zeros[r * groups + g] : static_cast<float>(1 << (bits - 1));
    // weight_encoding.cpp's dequantize_rows: scale * (float(code) - float(zero)).
    dst[c] = __fmul_rn(scales[r * groups + g], __fsub_rn(static_cast<float>(code), zero));
  }
}

__global__ void rmsnorm_kernel(const float* x, const float* w, int64_t dim, float eps, float* out) {
  __shared__ float scratch[32];
  const float* row = x + static_cast<int64_t>(blockIdx.x) * dim;
  float* dst = out + static_cast<int64_t>(blockIdx.x) * dim;
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) s = __fadd_rn(s, __fmul_rn(row[i], row[i]));
  s = block_reduce(s, SumOp{}, scratch);
  const float inv = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(__fdiv_rn(s, static_cast<float>(dim)), eps)));
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const float v = __fmul_rn(row[i], inv);
    dst[i] = w != nullptr ? __fmul_rn(v, w[i]) : v;
  }
}

// One thread per (row, head, i < head_dim / 2): the pair (i, i + half).
__global__ void rope_kernel(float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t pos0,
                            const float* inv_freq, const int* dev_pos) {
  if (dev_pos != nullptr) pos0 = *dev_pos;
  const int64_t half = head_dim / 2;
  const int64_t total = n * n_heads * half;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = idx % half;
    const int64_t th = idx / half;  // row * n_heads + head
    const int64_t t = th / n_heads;
    const float angle = __fmul_rn(static_cast<float>(pos0 + t), inv_freq[i]);
    const float c = cosf(angle), s = sinf(angle);
    float* v = x + th * head_dim;
    const float a = v[i], b = v[i + half];
    v[i] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    v[i + half] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
  }
}

__global__ void swiglu_kernel(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    out[i] = __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), up[i]);
  }
}

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] = __fadd_rn(x[i], y[i]);
}

__global__ void add_bias_kernel(float* y, const float* bias, int64_t rows, int64_t cols) {
  const int64_t total = rows * cols;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    y[i] = __fadd_rn(y[i], bias[i % cols]);
}

bool rows_ok(int64_t n) { return n >= 0 && n < (int64_t{1} << 31); }

}  // namespace

cudaError_t embed_f32(const float* table, int64_t cols, const int32_t* tokens, int64_t n, float* out,
                      cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (!rows_ok(n)) return cudaErrorInvalidValue;
  embed_f32_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(table, cols, tokens, out);
  return cudaGetLastError();
}

cudaError_t embed_f16(const uint16_t* table, int64_t cols, const int32_t* tokens, int64_t n, float* out,
                      cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (!rows_ok(n)) return cudaErrorInvalidValue;
  embed_f16_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(reinterpret_cast<const __half*>(table), cols,
                                                                      tokens, out);
  return cudaGetLastError();
}

cudaError_t embed_int(const uint8_t* codes, int64_t row_bytes, const float* scales, const float* zeros, int bits,
                      int64_t cols, int64_t group, const int32_t* tokens, int64_t n, float* out,
                      cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (!rows_ok(n) || group <= 0 || cols % group != 0) return cudaErrorInvalidValue;
  embed_int_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(codes, row_bytes, scales, zeros, bits, cols,
                                                                      group, tokens, out);
  return cudaGetLastError();
}

cudaError_t rmsnorm_rows(const float* x, const float* w, int64_t n, int64_t dim, float eps, float* out,
                         cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (!rows_ok(n) || dim <= 0) return cudaErrorInvalidValue;
  rmsnorm_kernel<<<static_cast<unsigned>(n), kThreads, 0, stream>>>(x, w, dim, eps, out);
  return cudaGetLastError();
}

cudaError_t rope_rows(float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t pos0, const float* inv_freq,
                      cudaStream_t stream, const int* dev_pos) {
  const int64_t total = n * n_heads * (head_dim / 2);
  if (total == 0) return cudaSuccess;
  rope_kernel<<<capped_blocks(total), kThreads, 0, stream>>>(x, n, n_heads, head_dim, pos0, inv_freq, dev_pos);
  return cudaGetLastError();
}

cudaError_t swiglu(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  swiglu_kernel<<<capped_blocks(n), kThreads, 0, stream>>>(gate, up, n, out);
  return cudaGetLastError();
}

cudaError_t add_inplace(float* x, const float* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  add_kernel<<<capped_blocks(n), kThreads, 0, stream>>>(x, y, n);
  return cudaGetLastError();
}

cudaError_t add_bias_rows(float* y, const float* bias, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows * cols == 0) return cudaSuccess;
  add_bias_kernel<<<capped_blocks(rows * cols), kThreads, 0, stream>>>(y, bias, rows, cols);
  return cudaGetLastError();
}

}  // namespace quarot::cuda
