#pragma once
// The harness of the self-contained CUDA check programs (test_cuda_*.cu; the GPU
// machine has no GoogleTest), one copy for all of them:
//   check(ok, what)   counts a check; a failed one prints "FAIL: <what>".
//   finish()          prints "<checks> checks, <failures> failures" and returns the
//                     exit status: 0 only when every check held.
//   CUDA_OK(call)     a CUDA runtime error stops the program with status 2, printing
//                     "CUDA error <message> at <file>:<line>" (a broken device or
//                     harness, not a failed check).
//   open_device()     prints "device: <name> (sm_XY)", or "no CUDA device" and false.
//   DevBuf<T>         an owning device array of n elements (at least one allocated,
//                     so empty arrays have a valid pointer); poison(byte) fills every
//                     byte so an element a kernel never writes cannot pass.
// The runners' logs carry these lines and they go by the exit statuses
// (scripts/cuda_test.sh, tools/device/cuda_run.sh): keep both. Every program is one translation unit, so the counters are
// plain inline variables.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace quarot::cuda::check_harness {

inline int g_failures = 0;
inline int g_checks = 0;

inline void check(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failures;
    std::printf("FAIL: %s\n", what.c_str());
  }
}

inline int finish() {
  std::printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}

#define CUDA_OK(call)                                                                      \
  do {                                                                                     \
    const cudaError_t e_ = (call);                                                         \
    if (e_ != cudaSuccess) {                                                               \
      std::printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::exit(2);                                                                        \
    }                                                                                      \
  } while (0)

inline bool open_device() {
  int dev = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess) {
    std::printf("no CUDA device\n");
    return false;
  }
  std::printf("device: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
  return true;
}

template <typename T>
struct DevBuf {
  T* p = nullptr;
  size_t n = 0;
  explicit DevBuf(size_t count) : n(count) { CUDA_OK(cudaMalloc(&p, std::max<size_t>(count, 1) * sizeof(T))); }
  ~DevBuf() { cudaFree(p); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  void upload(const T* h) { CUDA_OK(cudaMemcpy(p, h, n * sizeof(T), cudaMemcpyHostToDevice)); }
  void upload(const std::vector<T>& h) { upload(h.data()); }
  std::vector<T> download() const {
    std::vector<T> h(n);
    CUDA_OK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
  void poison(uint8_t byte) { CUDA_OK(cudaMemset(p, byte, n * sizeof(T))); }
};

// n elements of device memory the program does not own (e.g. a storage's arrays).
template <typename T>
std::vector<T> download(const T* p, size_t n) {
  std::vector<T> h(n);
  if (n > 0) CUDA_OK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

inline uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

}  // namespace quarot::cuda::check_harness
