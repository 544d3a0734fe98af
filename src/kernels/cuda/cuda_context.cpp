#include "kernels/cuda/cuda_context.h"

#include <cstddef>
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
  // A workspace of our own (NVIDIA's recommendation for Hopper is 32 MiB): cuBLAS
  // then allocates nothing while a step is being recorded.
  constexpr size_t kCublasWorkspace = size_t{32} << 20;
  check(cudaMalloc(&cublas_workspace, kCublasWorkspace), "allocating the cuBLAS workspace");
  check(cublasSetWorkspace(cublas, cublas_workspace, kCublasWorkspace), "giving cuBLAS its workspace");
  check(cudaMalloc(&device_inputs, sizeof(StepInputs)), "allocating the step inputs");
  check(cudaMemset(device_inputs, 0, sizeof(StepInputs)), "clearing the step inputs");
  check(cudaMallocHost(&staged_inputs, sizeof(StepInputs)), "allocating pinned memory");
  *staged_inputs = StepInputs{};
  check(cudaEventCreateWithFlags(&inputs_copied, cudaEventDisableTiming), "creating an event");
  step.pos = reinterpret_cast<const int*>(reinterpret_cast<const char*>(device_inputs) + offsetof(StepInputs, pos));
  // The memset above ran on the legacy stream, which the non-blocking one does not wait for.
  check(cudaDeviceSynchronize(), "initializing the device");
}

CudaContext::~CudaContext() {
  if (stream != nullptr) cudaStreamSynchronize(stream);
  if (cublas != nullptr) cublasDestroy(cublas);
  if (cublas_workspace != nullptr) cudaFree(cublas_workspace);
  if (device_inputs != nullptr) cudaFree(device_inputs);
  if (staged_inputs != nullptr) cudaFreeHost(staged_inputs);
  if (inputs_copied != nullptr) cudaEventDestroy(inputs_copied);
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

void CudaContext::stage_step_inputs(int64_t pos0, const int32_t* tokens, int64_t n) {
  QUAROT_CHECK(n >= 1 && n <= kMaxStepTokens && pos0 >= 0 && pos0 < (int64_t{1} << 31),
               "cuda backend: a recorded step of {} tokens at position {}", n, pos0);
  check(cudaEventSynchronize(inputs_copied), "waiting for the previous step's inputs");
  staged_inputs->pos = static_cast<int>(pos0);
  for (int64_t i = 0; i < n; ++i) staged_inputs->tokens[i] = tokens[i];
  const size_t bytes = offsetof(StepInputs, tokens) + static_cast<size_t>(n) * sizeof(int32_t);
  check(cudaMemcpyAsync(device_inputs, staged_inputs, bytes, cudaMemcpyHostToDevice, stream), "copying step inputs");
  check(cudaEventRecord(inputs_copied, stream), "recording an event");
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
  bump_device_memory_epoch();
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
