#include "kernels/cuda/cuda_context.h"

#include <cstdint>

#include "common/error.h"

namespace quarot::cuda {

void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  cudaGetLastError();  // clear a sticky launch error so the next call reports its own
  fail("cuda backend: {}: {}", what, cudaGetErrorString(e));
}

void check(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  fail("cuda backend: {}: cuBLAS status {}", what, static_cast<int>(s));
}

CudaContext::CudaContext(int dev) : device(dev) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    cudaGetLastError();
    fail("cuda backend: no usable CUDA device ({})", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
  }
  QUAROT_CHECK(dev >= 0 && dev < count, "cuda backend: device {} does not exist ({} device{})", dev, count,
               count == 1 ? "" : "s");
  check(cudaGetDeviceProperties(&props, dev), "reading the device properties");
  QUAROT_CHECK(props.major == 9, "cuda backend: {} is sm_{}{}; this build's kernels are for sm_90 (Hopper)",
               props.name, props.major, props.minor);
  check(cudaSetDevice(dev), "selecting the device");
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "creating a stream");
  // Keep freed stream-ordered memory in the pool: the model allocates its
  // intermediates on every forward.
  cudaMemPool_t pool = nullptr;
  if (cudaDeviceGetDefaultMemPool(&pool, dev) == cudaSuccess) {
    uint64_t threshold = UINT64_MAX;
    cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold);
  }
  check(cudaMalloc(&error_flag, sizeof(int)), "allocating the error flag");
  check(cudaMemset(error_flag, 0, sizeof(int)), "clearing the error flag");
  check(cudaMallocHost(&error_flag_host, sizeof(int)), "allocating pinned memory");
  *error_flag_host = 0;
  check(cublasCreate(&cublas), "creating the cuBLAS handle");
  check(cublasSetStream(cublas, stream), "binding cuBLAS to the stream");
  // The memset above ran on the legacy stream, which the non-blocking one does not wait for.
  check(cudaDeviceSynchronize(), "initializing the device");
}

CudaContext::~CudaContext() {
  if (stream != nullptr) cudaStreamSynchronize(stream);
  if (cublas != nullptr) cublasDestroy(cublas);
  if (error_flag != nullptr) cudaFree(error_flag);
  if (error_flag_host != nullptr) cudaFreeHost(error_flag_host);
  if (stream != nullptr) cudaStreamDestroy(stream);
}

void CudaContext::synchronize() {
  check(cudaMemcpyAsync(error_flag_host, error_flag, sizeof(int), cudaMemcpyDeviceToHost, stream),
        "reading the error flag");
  check(cudaStreamSynchronize(stream), "a queued operation failed");
  if (*error_flag_host != 0) {
    *error_flag_host = 0;
    check(cudaMemsetAsync(error_flag, 0, sizeof(int), stream), "clearing the error flag");
    fail("cuda backend: a quantized linear layer got a non-finite activation (NaN or infinity)");
  }
}

DeviceMemory::DeviceMemory(size_t bytes, const char* what) : bytes_(bytes) {
  const cudaError_t e = cudaMalloc(&p_, bytes > 0 ? bytes : 1);
  if (e != cudaSuccess) {
    p_ = nullptr;
    cudaGetLastError();
    fail("cuda backend: cannot allocate {:.1f} MiB of device memory for {} ({})", bytes / 1048576.0, what,
         cudaGetErrorString(e));
  }
}

DeviceMemory::~DeviceMemory() {
  if (p_ != nullptr) cudaFree(p_);  // synchronizes the device: no queued kernel still reads it
}

DeviceMemory& DeviceMemory::operator=(DeviceMemory&& o) noexcept {
  if (this != &o) {
    if (p_ != nullptr) cudaFree(p_);
    p_ = o.p_;
    bytes_ = o.bytes_;
    o.p_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

void DeviceMemory::upload(const void* host, size_t bytes) {
  check(cudaMemcpy(p_, host, bytes, cudaMemcpyHostToDevice), "uploading parameters");
  // From pageable memory cudaMemcpy may return before the DMA lands, and the
  // backend's stream does not wait for the legacy stream: wait here.
  check(cudaStreamSynchronize(cudaStreamLegacy), "uploading parameters");
}

void* Scratch::get(CudaContext& ctx, size_t bytes, const char* what) {
  if (bytes <= bytes_ && p_ != nullptr) return p_;
  if (p_ != nullptr) cudaFreeAsync(p_, stream_);
  p_ = nullptr;
  bytes_ = 0;
  const size_t want = bytes + bytes / 4 + 256;  // headroom, fewer regrowths as n varies
  const cudaError_t e = cudaMallocAsync(&p_, want, ctx.stream);
  if (e != cudaSuccess) {
    p_ = nullptr;
    cudaGetLastError();
    fail("cuda backend: cannot allocate {:.1f} MiB of device memory for {} ({})", want / 1048576.0, what,
         cudaGetErrorString(e));
  }
  bytes_ = want;
  stream_ = ctx.stream;
  return p_;
}

Scratch::~Scratch() {
  if (p_ != nullptr) cudaFreeAsync(p_, stream_);
}

}  // namespace quarot::cuda
