#include "kernels/cuda/cuda_rotate.cuh"

namespace quarot::cuda {
namespace {

__global__ void rotate_kernel(RotationArgs r, const float* x, float* out) {
  extern __shared__ float smem[];
  const int n = r.size();
  float* row = smem;
  float* tmp = smem + n;
  const int64_t base = static_cast<int64_t>(blockIdx.x) * n;
  for (int i = threadIdx.x; i < n; i += blockDim.x) row[i] = x[base + i];
  __syncthreads();
  block_rotate(r, row, tmp);
  for (int i = threadIdx.x; i < n; i += blockDim.x) out[base + i] = row[i];
}

}  // namespace

size_t row_smem_bytes(int64_t n, bool has_m) { return static_cast<size_t>(n) * sizeof(float) * (has_m ? 2 : 1); }

int row_threads(int64_t n) {
  // About two values per thread, whole warps, 32..512 threads.
  int64_t t = (n / 2 + 31) / 32 * 32;
  return static_cast<int>(t < 32 ? 32 : (t > 512 ? 512 : t));
}

cudaError_t allow_smem(const void* kernel, size_t bytes) {
  if (bytes <= 48 * 1024) return cudaSuccess;
  int device = 0, limit = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (e != cudaSuccess) return e;
  if (bytes > static_cast<size_t>(limit)) return cudaErrorInvalidValue;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
}

cudaError_t rotate_rows(const RotationArgs& r, const float* x, int64_t rows, float* out, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  if (rows < 0 || rows >= (int64_t{1} << 31) || r.k < 1 || r.p < 1 || r.inner < 1) return cudaErrorInvalidValue;
  const size_t smem = row_smem_bytes(r.size(), r.m != nullptr);
  const cudaError_t e = allow_smem(reinterpret_cast<const void*>(&rotate_kernel), smem);
  if (e != cudaSuccess) return e;
  rotate_kernel<<<static_cast<unsigned>(rows), row_threads(r.size()), smem, stream>>>(r, x, out);
  return cudaGetLastError();
}

}  // namespace quarot::cuda
