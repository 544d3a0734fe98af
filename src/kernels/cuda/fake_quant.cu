#include <cuda_runtime.h>

#include "kernels/cuda/fake_quant.cuh"

namespace quarot::cuda {
namespace {

// One block per row: a max-abs reduction in shared memory, then every thread
// rounds its elements with the row's scale (rintf = round half to even).
__global__ void fake_quant_rows_sym_kernel(float* x, int64_t cols, int bits, float clip_ratio) {
  extern __shared__ float red[];
  float* row = x + static_cast<int64_t>(blockIdx.x) * cols;
  float m = 0.0f;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) m = fmaxf(m, fabsf(row[i]));
  red[threadIdx.x] = m;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + s]);
    __syncthreads();
  }
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  const float scale = clip_ratio * red[0] / qmax;
  if (scale == 0.0f) return;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
    const float q = fminf(fmaxf(rintf(row[i] / scale), -qmax - 1.0f), qmax);
    row[i] = q * scale;
  }
}

}  // namespace

int fake_quant_rows_sym(float* x, int64_t rows, int64_t cols, int bits, float clip_ratio) {
  if (rows <= 0 || cols <= 0) return cudaSuccess;
  constexpr int kThreads = 256;
  fake_quant_rows_sym_kernel<<<static_cast<unsigned>(rows), kThreads, kThreads * sizeof(float)>>>(x, cols, bits,
                                                                                                    clip_ratio);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace quarot::cuda
