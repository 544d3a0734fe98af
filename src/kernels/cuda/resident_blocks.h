#pragma once
// How many blocks of a kernel fit on one SM, and how many SMs there are, for the
// persistent-grid launchers (hadamard_quant*.cu, swiglu_hadamard_quant.cu). Asking the
// runtime costs microseconds, so each kernel instantiation keeps a ResidentBlocks that
// remembers the answer for the last device and block shape; it also raises the kernel's
// opt-in dynamic shared memory limit when a shape needs more than 48 KiB. Host code.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <mutex>

namespace quarot::cuda {

struct ResidentBlocks {
  int per_sm = 0, sms = 0;
};

class ResidentBlocksCache {
 public:
  // Fills `out` for `kernel` at `threads` per block and `smem` bytes of dynamic shared
  // memory on the current device. per_sm may come back 0 (the shape does not fit).
  template <typename Kernel>
  cudaError_t get(Kernel kernel, int threads, size_t smem, ResidentBlocks& out) {
    int dev = 0;
    cudaError_t err = cudaGetDevice(&dev);
    if (err != cudaSuccess) return err;
    std::lock_guard<std::mutex> lock(mu_);
    if (dev_ != dev || threads_ != threads || smem_ != smem) {
      if (dev_ != dev || smem_set_ < smem) {
        err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
        if (err != cudaSuccess) return err;
        smem_set_ = dev_ != dev ? smem : std::max(smem_set_, smem);
      }
      ResidentBlocks r;
      err = cudaDeviceGetAttribute(&r.sms, cudaDevAttrMultiProcessorCount, dev);
      if (err == cudaSuccess) err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&r.per_sm, kernel, threads, smem);
      if (err != cudaSuccess) return err;
      dev_ = dev, threads_ = threads, smem_ = smem, value_ = r;
    }
    out = value_;
    return cudaSuccess;
  }

 private:
  std::mutex mu_;
  int dev_ = -1, threads_ = 0;
  size_t smem_ = 0, smem_set_ = 0;
  ResidentBlocks value_;
};

}  // namespace quarot::cuda
