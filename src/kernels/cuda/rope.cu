#include "kernels/cuda/rope.cuh"

#include <cmath>

namespace quarot::cuda {
namespace {

constexpr int kWarps = 8;

// One warp per (row, head): lane l holds values [l * V, l * V + V), V = d / 32, so the
// rotate-half partner of lane l is lane l ^ 16 and Hadamard stages beyond V run
// across lanes (partner lane l ^ (h / V)).
template <int D>
__global__ void __launch_bounds__(kWarps * 32) rope_kernel(__half* qkv, int64_t rows, int64_t stride, int seq,
                                                           int pos0, int heads, float log2_theta, bool hadamard) {
  constexpr int V = D / 32;
  const int lane = threadIdx.x & 31;
  const int64_t item = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (item >= rows * heads) return;
  const int64_t row = item / heads;
  const int head = static_cast<int>(item % heads);
  __half* p = qkv + row * stride + static_cast<int64_t>(head) * D + lane * V;
  const float pos = static_cast<float>(pos0 + static_cast<int>(row % seq));

  float v[V];
  if constexpr (V == 4) {
    const uint2 raw = *reinterpret_cast<const uint2*>(p);
    const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&raw.x));
    const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&raw.y));
    v[0] = a.x, v[1] = a.y, v[2] = b.x, v[3] = b.y;
  } else {
    const float2 a = __half22float2(*reinterpret_cast<const __half2*>(p));
    v[0] = a.x, v[1] = a.y;
  }
  const bool upper = lane >= 16;
  float r[V];
#pragma unroll
  for (int e = 0; e < V; ++e) {
    const float partner = __shfl_xor_sync(0xffffffffu, v[e], 16);
    const int i = (lane & 15) * V + e;  // frequency index, < d / 2
    const float inv_freq = exp2f(-log2_theta * (2.0f * i / D));
    float s, c;
    sincosf(pos * inv_freq, &s, &c);
    r[e] = upper ? v[e] * c + partner * s : v[e] * c - partner * s;
  }
  if (hadamard) {
#pragma unroll
    for (int h = 1; h < V; h *= 2)
#pragma unroll
      for (int e = 0; e < V; ++e)
        if ((e & h) == 0) {
          const float a = r[e], b = r[e + h];
          r[e] = a + b;
          r[e + h] = a - b;
        }
#pragma unroll
    for (int m = 1; m < 32; m *= 2)
#pragma unroll
      for (int e = 0; e < V; ++e) {
        const float other = __shfl_xor_sync(0xffffffffu, r[e], m);
        r[e] = (lane & m) ? other - r[e] : r[e] + other;
      }
    const float norm = rsqrtf(static_cast<float>(D));
#pragma unroll
    for (int e = 0; e < V; ++e) r[e] *= norm;
  }
  if constexpr (V == 4) {
    const __half2 a = __floats2half2_rn(r[0], r[1]), b = __floats2half2_rn(r[2], r[3]);
    uint2 raw;
    raw.x = *reinterpret_cast<const uint32_t*>(&a);
    raw.y = *reinterpret_cast<const uint32_t*>(&b);
    *reinterpret_cast<uint2*>(p) = raw;
  } else {
    *reinterpret_cast<__half2*>(p) = __floats2half2_rn(r[0], r[1]);
  }
}

}  // namespace

cudaError_t rope_qk(__half* qkv, int64_t rows, int64_t stride, int seq, int pos0, int heads_q, int heads_kv,
                    int head_dim, float theta, bool hadamard, cudaStream_t stream) {
  const int heads = heads_q + heads_kv;
  if (qkv == nullptr || rows < 0 || seq < 1 || pos0 < 0 || heads_q < 1 || heads_kv < 0 ||
      (head_dim != 64 && head_dim != 128) || stride < static_cast<int64_t>(heads) * head_dim || stride % 4 != 0 ||
      !(theta > 1.0f) || !std::isfinite(theta) || reinterpret_cast<uintptr_t>(qkv) % 8 != 0)
    return cudaErrorInvalidValue;
  const int64_t items = rows * heads;
  if (items == 0) return cudaSuccess;
  const int64_t blocks = (items + kWarps - 1) / kWarps;
  if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
  const float log2_theta = std::log2(theta);
  if (head_dim == 128)
    rope_kernel<128><<<static_cast<unsigned>(blocks), kWarps * 32, 0, stream>>>(qkv, rows, stride, seq, pos0, heads,
                                                                               log2_theta, hadamard);
  else
    rope_kernel<64><<<static_cast<unsigned>(blocks), kWarps * 32, 0, stream>>>(qkv, rows, stride, seq, pos0, heads,
                                                                              log2_theta, hadamard);
  return cudaGetLastError();
}

}  // namespace quarot::cuda
