// What a decode GEMV could reach on this GPU: the time to stream the same weight bytes
// with the simplest read kernels, and an empty kernel's launch-to-completion, timed as
// cuda_gemm_bench times (CUDA events over batches of back-to-back launches, operands
// rotated over 512 MiB so L2 holds none of them). Not part of the product: a probe.
//   nvcc -O3 -std=c++17 -I src -gencode=arch=compute_90a,code=sm_90a tools/device/stream_probe.cu -o stream_probe
//   ./stream_probe  -> one JSON line per (size, kernel)
#include <cuda_runtime.h>

#include "kernels/cuda/int_gemm_internal.cuh"  // ld_stream: the skinny kernels' weight load

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

using quarot::cuda::int_gemm_detail::ld_stream;

#define CHECK(x)                                                                        \
  do {                                                                                  \
    cudaError_t e = (x);                                                                \
    if (e != cudaSuccess) {                                                             \
      std::fprintf(stderr, "%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e));    \
      return 1;                                                                         \
    }                                                                                   \
  } while (0)

// Grid-stride read, UNROLL loads in flight per thread per step.
template <int UNROLL>
__global__ void read_grid_stride(const uint4* __restrict__ p, int64_t n16, unsigned* sink) {
  unsigned acc = 0;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n16; i += stride * UNROLL) {
    uint4 v[UNROLL];
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) v[u] = i + u * stride < n16 ? ld_stream(p + i + u * stride) : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  if (acc == 0x12345678u) sink[0] = acc;  // never true in practice; keeps the loads
}

// One shot: every thread loads UNROLL consecutive 16-byte words once (the skinny
// kernel's shape: the whole matrix requested at the start).
template <int UNROLL>
__global__ void read_one_shot(const uint4* __restrict__ p, int64_t n16, unsigned* sink) {
  const int64_t base = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x);
  const int64_t threads = int64_t(gridDim.x) * blockDim.x;
  uint4 v[UNROLL];
#pragma unroll
  for (int u = 0; u < UNROLL; ++u) {
    const int64_t i = base + u * threads;
    v[u] = i < n16 ? ld_stream(p + i) : make_uint4(0, 0, 0, 0);
  }
  unsigned acc = 0;
#pragma unroll
  for (int u = 0; u < UNROLL; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  if (acc == 0x12345678u) sink[0] = acc;
}

__global__ void empty_kernel() {}

int main() {
  const int64_t pool = int64_t(512) << 20;
  uint8_t* buf = nullptr;
  unsigned* sink = nullptr;
  CHECK(cudaMalloc(&buf, pool));
  CHECK(cudaMalloc(&sink, 64));
  CHECK(cudaMemset(buf, 1, pool));
  uint8_t* dst = nullptr;
  CHECK(cudaMalloc(&dst, int64_t(128) << 20));
  int sms = 0;
  CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  cudaEvent_t e0, e1;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  struct Size {
    const char* name;
    int64_t bytes;
  };
  const Size sizes[] = {{"4096x4096", 4096LL * 4096 / 2},  {"4096x11008", 4096LL * 11008 / 2},
                        {"8192x8192", 8192LL * 8192 / 2},  {"8192x28672", 8192LL * 28672 / 2}};
  const int kBatch = 20, kReps = 9;
  auto time_it = [&](auto launch, int64_t bytes, double& us) -> int {
    const int64_t slot = (bytes + (2 << 20) - 1) / (2 << 20) * (2 << 20);
    const int64_t slots = pool / slot;
    int64_t k = 0;
    for (int w = 0; w < 3; ++w) launch(buf + (k++ % slots) * slot);
    std::vector<double> t;
    for (int r = 0; r < kReps; ++r) {
      CHECK(cudaEventRecord(e0));
      for (int b = 0; b < kBatch; ++b) launch(buf + (k++ % slots) * slot);
      CHECK(cudaEventRecord(e1));
      CHECK(cudaEventSynchronize(e1));
      float ms = 0;
      CHECK(cudaEventElapsedTime(&ms, e0, e1));
      t.push_back(ms * 1000.0 / kBatch);
    }
    std::sort(t.begin(), t.end());
    us = t[t.size() / 2];
    return 0;
  };
  double us = 0;
  if (time_it([&](uint8_t*) { empty_kernel<<<1, 32>>>(); }, 2 << 20, us)) return 1;
  std::printf("{\"kernel\": \"empty\", \"us\": %.2f}\n", us);
  if (time_it([&](uint8_t*) { empty_kernel<<<sms * 8, 256>>>(); }, 2 << 20, us)) return 1;
  std::printf("{\"kernel\": \"empty_full_grid\", \"us\": %.2f}\n", us);
  for (const Size& s : sizes) {
    const int64_t n16 = s.bytes / 16;
    auto report = [&](const char* kernel) {
      std::printf("{\"size\": \"%s\", \"bytes\": %lld, \"kernel\": \"%s\", \"us\": %.2f, \"GBps\": %.0f}\n", s.name,
                  (long long)s.bytes, kernel, us, s.bytes / us / 1e3);
    };
    for (int bps : {4, 8, 16}) {
      if (time_it([&](uint8_t* p) { read_grid_stride<4><<<sms * bps, 256>>>((const uint4*)p, n16, sink); }, s.bytes, us)) return 1;
      char name[64];
      std::snprintf(name, sizeof name, "grid_stride_u4_%dblk_per_sm", bps);
      report(name);
    }
    for (int u : {2, 4, 8}) {
      const int64_t threads = (n16 + u - 1) / u;
      const int blocks = int((threads + 255) / 256);
      int rc = 0;
      if (u == 2) rc = time_it([&](uint8_t* p) { read_one_shot<2><<<blocks, 256>>>((const uint4*)p, n16, sink); }, s.bytes, us);
      if (u == 4) rc = time_it([&](uint8_t* p) { read_one_shot<4><<<blocks, 256>>>((const uint4*)p, n16, sink); }, s.bytes, us);
      if (u == 8) rc = time_it([&](uint8_t* p) { read_one_shot<8><<<blocks, 256>>>((const uint4*)p, n16, sink); }, s.bytes, us);
      if (rc) return 1;
      char name[64];
      std::snprintf(name, sizeof name, "one_shot_u%d", u);
      report(name);
    }
    if (time_it([&](uint8_t* p) { cudaMemcpyAsync(dst, p, s.bytes, cudaMemcpyDeviceToDevice); }, s.bytes, us)) return 1;
    report("memcpy_d2d(read+write)");
    // FP16 weights of the same matrix (4x the bytes): what cuBLAS's GEMV streams.
    if (s.bytes * 4 <= (int64_t(128) << 20)) {
      const int64_t b4 = s.bytes * 4;
      if (time_it([&](uint8_t* p) { read_grid_stride<4><<<sms * 8, 256>>>((const uint4*)p, b4 / 16, sink); }, b4, us)) return 1;
      std::printf("{\"size\": \"%s fp16\", \"bytes\": %lld, \"kernel\": \"grid_stride_u4_8blk_per_sm\", \"us\": %.2f, \"GBps\": %.0f}\n",
                  s.name, (long long)b4, us, b4 / us / 1e3);
    }
  }
  CHECK(cudaGetLastError());
  return 0;
}
