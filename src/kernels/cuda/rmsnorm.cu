#include "kernels/cuda/rmsnorm.cuh"

#include <cmath>

namespace quarot::cuda {
namespace {

constexpr int kThreads = 256;

// 1 / rms of row `row`, the same value in every thread of the block.
__device__ float block_inv_rms(const __half* xr, int cols, float eps) {
  __shared__ float part[kThreads / 32];
  float ss = 0.0f;
  for (int c = threadIdx.x * 8; c < cols; c += kThreads * 8) {
    const uint4 raw = *reinterpret_cast<const uint4*>(xr + c);
    const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = __half22float2(h[i]);
      ss = fmaf(f.x, f.x, ss);
      ss = fmaf(f.y, f.y, ss);
    }
  }
#pragma unroll
  for (int m = 16; m > 0; m /= 2) ss += __shfl_xor_sync(0xffffffffu, ss, m);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x / 32] = ss;
  __syncthreads();
  float total = 0.0f;
#pragma unroll
  for (int w = 0; w < kThreads / 32; ++w) total += part[w];
  return rsqrtf(total / static_cast<float>(cols) + eps);
}

__global__ void __launch_bounds__(kThreads) rmsnorm_kernel(const __half* x, const __half* gamma, int cols, float eps,
                                                           __half* y) {
  const int64_t row = blockIdx.x;
  const __half* xr = x + row * cols;
  const float inv = block_inv_rms(xr, cols, eps);
  for (int c = threadIdx.x * 8; c < cols; c += kThreads * 8) {
    const uint4 raw = *reinterpret_cast<const uint4*>(xr + c);
    const uint4 graw = *reinterpret_cast<const uint4*>(gamma + c);
    const __half2* h = reinterpret_cast<const __half2*>(&raw);
    const __half2* gh = reinterpret_cast<const __half2*>(&graw);
    uint4 out;
    __half2* oh = reinterpret_cast<__half2*>(&out);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = __half22float2(h[i]), gf = __half22float2(gh[i]);
      oh[i] = __floats2half2_rn(f.x * inv * gf.x, f.y * inv * gf.y);
    }
    *reinterpret_cast<uint4*>(y + row * cols + c) = out;
  }
}

__global__ void __launch_bounds__(kThreads) scale_kernel(const __half* x, int cols, float eps, float* scales) {
  const int64_t row = blockIdx.x;
  const float inv = block_inv_rms(x + row * cols, cols, eps);
  if (threadIdx.x == 0) scales[row] *= inv;
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }
bool shape_ok(int64_t rows, int64_t cols, float eps) {
  return rows >= 0 && rows <= 0x7fffffff && cols >= 8 && cols <= 65536 && cols % 8 == 0 && eps >= 0.0f &&
         std::isfinite(eps);
}

}  // namespace

cudaError_t rmsnorm_rows(const __half* x, const __half* gamma, int64_t rows, int64_t cols, float eps, __half* y,
                         cudaStream_t stream) {
  if (!shape_ok(rows, cols, eps) || x == nullptr || gamma == nullptr || y == nullptr || !aligned16(x) ||
      !aligned16(gamma) || !aligned16(y))
    return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  rmsnorm_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, gamma, static_cast<int>(cols), eps, y);
  return cudaGetLastError();
}

cudaError_t rows_scale_inv_rms(const __half* x, int64_t rows, int64_t cols, float eps, float* scales,
                               cudaStream_t stream) {
  if (!shape_ok(rows, cols, eps) || x == nullptr || scales == nullptr || !aligned16(x)) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  scale_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, static_cast<int>(cols), eps, scales);
  return cudaGetLastError();
}

}  // namespace quarot::cuda
