#pragma once
// What the CUDA benchmarks (cuda_*_bench.cu) share, one copy for all of them:
//   CUDA_OK / CUBLAS_OK  an error stops the program with status 2, printing
//                        "CUDA error <message> at <file>:<line>" (or the cuBLAS status)
//                        on stderr: a benchmark has nothing sensible to time after one.
//   Buf                  owning, movable device memory (at least 16 bytes allocated);
//                        g_allocated sums the bytes of the live ones.
//   rand_bytes / rand_half / const_float
//                        device fills: bytes from a hash of the index and the seed
//                        (int4 / int8 codes over their whole range), FP16 values
//                        uniform in [-scale, scale) (never NaN or inf), one float.
//   EventSpan            CUDA-event time of the work a stream runs between start()
//                        and stop_ms() (launch gaps included).
//   median, parse_ints ("1,16,64"), write_text_atomic (a temporary file renamed
//                        into place).
// The GEMM and layer benchmarks link the CUDA runtime (and cuBLAS) alone, so this
// header uses nothing of quarot's other libraries. Every benchmark is one translation
// unit, so the fill kernels are defined here (in a named namespace: nvcc's kernel stubs
// cannot tell two unnamed namespaces apart when the including file has its own).
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#define CUDA_OK(call)                                                                               \
  do {                                                                                              \
    const cudaError_t e_ = (call);                                                                  \
    if (e_ != cudaSuccess) {                                                                        \
      std::fprintf(stderr, "CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::exit(2);                                                                                 \
    }                                                                                               \
  } while (0)
#define CUBLAS_OK(call)                                                                              \
  do {                                                                                               \
    const cublasStatus_t s_ = (call);                                                                \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                               \
      std::fprintf(stderr, "cuBLAS status %d at %s:%d\n", static_cast<int>(s_), __FILE__, __LINE__); \
      std::exit(2);                                                                                  \
    }                                                                                                \
  } while (0)

namespace quarot::cuda::bench {

inline size_t g_allocated = 0;

struct Buf {
  void* p = nullptr;
  size_t bytes = 0;
  Buf() = default;
  explicit Buf(size_t b) : bytes(b) {
    CUDA_OK(cudaMalloc(&p, std::max<size_t>(b, 16)));
    g_allocated += bytes;
  }
  ~Buf() {
    if (p != nullptr) cudaFree(p), g_allocated -= bytes;
  }
  Buf(const Buf&) = delete;
  Buf(Buf&& o) noexcept { *this = std::move(o); }
  Buf& operator=(Buf&& o) noexcept {
    std::swap(p, o.p);
    std::swap(bytes, o.bytes);
    return *this;
  }
  template <typename T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

namespace detail {

__device__ __forceinline__ uint32_t index_hash(size_t i, uint32_t seed) {
  uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
  h ^= h >> 15;
  h *= 2246822519u;
  h ^= h >> 13;
  return h;
}
__global__ void fill_bytes(uint8_t* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x)
    p[i] = static_cast<uint8_t>(index_hash(i, seed));
}
__global__ void fill_half(__half* p, size_t n, uint32_t seed, float scale) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x)
    p[i] = __float2half_rn(scale * ((index_hash(i, seed) & 0xFFFF) / 32768.0f - 1.0f));
}
__global__ void fill_float(float* p, size_t n, float v) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) p[i] = v;
}

}  // namespace detail

inline void rand_bytes(Buf& b, uint32_t seed) {
  detail::fill_bytes<<<2048, 256>>>(b.as<uint8_t>(), b.bytes, seed);
  CUDA_OK(cudaGetLastError());
}
inline void rand_half(Buf& b, uint32_t seed, float scale) {
  detail::fill_half<<<2048, 256>>>(b.as<__half>(), b.bytes / 2, seed, scale);
  CUDA_OK(cudaGetLastError());
}
inline void const_float(Buf& b, float v) {
  detail::fill_float<<<256, 256>>>(b.as<float>(), b.bytes / 4, v);
  CUDA_OK(cudaGetLastError());
}

class EventSpan {
 public:
  EventSpan() {
    CUDA_OK(cudaEventCreate(&e0_));
    CUDA_OK(cudaEventCreate(&e1_));
  }
  ~EventSpan() {
    cudaEventDestroy(e0_);
    cudaEventDestroy(e1_);
  }
  EventSpan(const EventSpan&) = delete;
  EventSpan& operator=(const EventSpan&) = delete;
  void start(cudaStream_t s = nullptr) { CUDA_OK(cudaEventRecord(e0_, s)); }
  // Waits for the span's work; its time in milliseconds.
  float stop_ms(cudaStream_t s = nullptr) {
    CUDA_OK(cudaEventRecord(e1_, s));
    CUDA_OK(cudaEventSynchronize(e1_));
    float ms = 0;
    CUDA_OK(cudaEventElapsedTime(&ms, e0_, e1_));
    return ms;
  }

 private:
  cudaEvent_t e0_{}, e1_{};
};

// The upper median (v[size / 2] sorted); v must not be empty.
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

inline std::vector<int> parse_ints(const char* s) {
  std::vector<int> v;
  for (const char* p = s; *p;) {
    v.push_back(std::atoi(p));
    while (*p && *p != ',') ++p;
    if (*p == ',') ++p;
  }
  return v;
}

// Writes text to path.tmp, then renames it onto path; false (path untouched) on error.
inline bool write_text_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return false;
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !written) return false;
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace quarot::cuda::bench
