// Decode (and one prefill) attention over the CUDA KV cache: FP32 vs packed int8 /
// int4 codes, at LLaMA-style shapes (32 query heads, 8 KV heads, head_dim 128).
//   cuda_attention_bench OUT.json [--layers L] [--iters N]
// Each timed call reads a different layer (round robin over L layers, 32 by default),
// so the caches together exceed the L2 cache and the bandwidth is HBM's. Time per call
// = CUDA-event time of N back-to-back calls / N (launch gaps included). GB/s counts
// the cache bytes one call must read (codes + scales/zeros, or FP32 rows, K and V,
// positions 0 .. pos0 + n - 1), not q or out.
#include <cuda_runtime.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/error.h"
#include "cuda_bench_util.cuh"
#include "kernels/cuda/cuda_kv_attention.h"

namespace {

using namespace quarot;

struct Result {
  std::string cache;
  int64_t context, n;
  double us, bytes, gbps;
};

KvCacheSpec cache_spec(const std::string& kind, int64_t layers, int64_t capacity) {
  KvCacheSpec s;
  s.n_layers = layers;
  s.n_kv_heads = 8;
  s.head_dim = 128;
  s.capacity = capacity;
  if (kind == "int4") {  // QuaRot's cache: asymmetric, one group per head, clip 0.95
    s.k.bits = s.v.bits = 4;
  } else if (kind == "int8") {
    s.k.bits = s.v.bits = 8;
  }
  return s;
}

Result run(const std::string& kind, int64_t context, int64_t n, int64_t layers, int iters) {
  const int64_t n_heads = 32, hd = 128;
  const KvCacheSpec spec = cache_spec(kind, layers, context);
  auto kv = cuda::make_cuda_kv_storage(spec, nullptr);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  {
    std::vector<float> rows(static_cast<size_t>(context * spec.kv_dim()));
    for (float& x : rows) x = nd(rng);
    float* d = nullptr;
    CUDA_OK(cudaMalloc(&d, rows.size() * 4));
    CUDA_OK(cudaMemcpy(d, rows.data(), rows.size() * 4, cudaMemcpyHostToDevice));
    for (int64_t l = 0; l < layers; ++l) kv->append(l, 0, context, d, d);
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaFree(d));
  }
  std::vector<float> q(static_cast<size_t>(n * n_heads * hd));
  for (float& x : q) x = nd(rng);
  float *dq = nullptr, *dout = nullptr;
  CUDA_OK(cudaMalloc(&dq, q.size() * 4));
  CUDA_OK(cudaMalloc(&dout, q.size() * 4));
  CUDA_OK(cudaMemcpy(dq, q.data(), q.size() * 4, cudaMemcpyHostToDevice));
  const AttentionShape shape{n_heads, 8, hd};
  const float scale = 0.08838834764f;
  const int64_t pos0 = context - n;
  for (int i = 0; i < 5; ++i) cuda::cuda_attention(dq, n, pos0, *kv, i % layers, shape, scale, dout, nullptr);
  cuda::bench::EventSpan span;
  span.start();
  for (int i = 0; i < iters; ++i) cuda::cuda_attention(dq, n, pos0, *kv, i % layers, shape, scale, dout, nullptr);
  const float ms = span.stop_ms();
  CUDA_OK(cudaFree(dq));
  CUDA_OK(cudaFree(dout));
  Result r;
  r.cache = kind;
  r.context = context;
  r.n = n;
  r.us = 1000.0 * ms / iters;
  r.bytes = static_cast<double>(kv->bytes_per_position() / layers) * static_cast<double>(context);
  r.gbps = r.bytes / (r.us * 1e-6) / 1e9;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::printf("usage: cuda_attention_bench OUT.json [--layers L] [--iters N]\n");
    return 2;
  }
  const std::string out = argv[1];
  int64_t layers = 32;
  int iters = 200;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--layers") layers = std::stoll(argv[i + 1]);
    else if (a == "--iters") iters = std::stoi(argv[i + 1]);
  }
  try {
    cudaDeviceProp prop{};
    CUDA_OK(cudaGetDeviceProperties(&prop, 0));
    std::vector<Result> results;
    for (int64_t ctx : {2048, 8192})
      for (int64_t n : {1, 8})
        for (const char* kind : {"fp32", "int8", "int4"}) results.push_back(run(kind, ctx, n, layers, iters));
    // One prefill for scale: 2048 new rows over an empty cache (few layers: it is slow).
    for (const char* kind : {"fp32", "int4"}) results.push_back(run(kind, 2048, 2048, 2, 10));
    std::printf("%-5s %7s %5s %10s %12s %9s\n", "cache", "context", "n", "us/call", "cache MB", "GB/s");
    for (const Result& r : results)
      std::printf("%-5s %7lld %5lld %10.2f %12.2f %9.1f\n", r.cache.c_str(), static_cast<long long>(r.context),
                  static_cast<long long>(r.n), r.us, r.bytes / 1e6, r.gbps);
    write_file_atomic(out, [&](std::ostream& os) {
      os << "{\n  \"device\": \"" << prop.name << "\",\n  \"shape\": {\"n_heads\": 32, \"n_kv_heads\": 8, "
         << "\"head_dim\": 128},\n  \"layers_round_robin\": " << layers << ",\n  \"results\": [\n";
      for (size_t i = 0; i < results.size(); ++i) {
        const Result& r = results[i];
        char line[256];
        std::snprintf(line, sizeof line,
                      "    {\"cache\": \"%s\", \"context\": %lld, \"n\": %lld, \"us_per_call\": %.3f, "
                      "\"cache_bytes\": %.0f, \"GBps\": %.1f}%s\n",
                      r.cache.c_str(), static_cast<long long>(r.context), static_cast<long long>(r.n), r.us, r.bytes,
                      r.gbps, i + 1 < results.size() ? "," : "");
        os << line;
      }
      os << "  ]\n}\n";
    });
  } catch (const Error& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
  return 0;
}
