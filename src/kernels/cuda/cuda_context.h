#pragma once
// What every part of the CUDA backend shares: the device, its one stream, the cuBLAS
// handle, the flag kernels raise for a non-finite activation, and error checks that
// turn CUDA / cuBLAS status codes into quarot::Error. Host code (compiled by the C++
// compiler against the CUDA runtime headers).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "kernels/cuda/cuda_step.h"

namespace quarot::cuda {

// Throws quarot::Error("cuda backend: <what>: <CUDA's message>") unless e == cudaSuccess.
void check(cudaError_t e, const char* what);
void check(cublasStatus_t s, const char* what);

struct CudaContext {
  int device = 0;
  cudaDeviceProp props{};
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  int* error_flag = nullptr;       // device int, set to 1 by the activation quantizer
  int* error_flag_host = nullptr;  // pinned copy, read after a synchronization
  std::mutex mutex;                // scratch buffers and descriptor caches
  void* cublas_workspace = nullptr;  // given to cuBLAS so it never allocates (graph capture)

  // Recorded steps (cuda_step.h): the position and token ids a step reads on the
  // device, written before each run from the pinned staging copy.
  static constexpr int kMaxStepTokens = 64;
  struct StepInputs {
    int pos = 0;
    int32_t tokens[kMaxStepTokens] = {};
  };
  StepPositions step;                      // step.pos points at device_inputs->pos
  StepInputs* device_inputs = nullptr;     // device
  StepInputs* staged_inputs = nullptr;     // pinned host
  cudaEvent_t inputs_copied = nullptr;     // the staging copy may be overwritten once this completed

  explicit CudaContext(int device);  // throws quarot::Error
  ~CudaContext();
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  // Waits for the stream; throws if a kernel failed or raised the error flag (then
  // clears it).
  void synchronize();
  // Queues the copy of a step's position and token ids (n <= kMaxStepTokens) to
  // device_inputs; waits only for the previous such copy.
  void stage_step_inputs(int64_t pos0, const int32_t* tokens, int64_t n);
};

// Plain device memory for parameters (weights, tables): cudaMalloc / cudaFree.
class DeviceMemory {
 public:
  DeviceMemory() = default;
  DeviceMemory(size_t bytes, const char* what);  // throws quarot::Error (out of memory)
  ~DeviceMemory();
  DeviceMemory(DeviceMemory&& o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr, o.bytes_ = 0; }
  DeviceMemory& operator=(DeviceMemory&& o) noexcept;
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  void* get() const { return p_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(p_);
  }
  size_t bytes() const { return bytes_; }
  // Synchronous copy of host data (parameters are uploaded once, at packing).
  void upload(const void* host, size_t bytes);

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

// A grow-only stream-ordered scratch buffer (for per-call intermediates): a bigger
// request frees the old memory in stream order, so ops already queued keep theirs,
// and bumps device_memory_epoch() (recorded steps holding the old address are stale).
class Scratch {
 public:
  void* get(CudaContext& ctx, size_t bytes, const char* what);
  ~Scratch();

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
  cudaStream_t stream_ = nullptr;
};

}  // namespace quarot::cuda
