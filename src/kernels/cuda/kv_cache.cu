#include "kernels/cuda/kv_cache.cuh"

#include <cmath>

namespace quarot::cuda {
namespace {

constexpr int kWarps = 8;

// One warp per (row, head, K or V); lane l holds values [l V, l V + V), V = d / 32.
template <int D>
__global__ void __launch_bounds__(kWarps * 32) kv_store_kernel(__half* qkv, int64_t rows, int64_t stride,
                                                               int64_t k_col, int64_t v_col, int seq, int pos0,
                                                               KvCacheView c, float clip, bool writeback) {
  constexpr int V = D / 32;
  const int lane = threadIdx.x & 31;
  const int64_t item = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (item >= rows * c.heads * 2) return;
  const bool is_v = item & 1;
  const int64_t rh = item >> 1;
  const int64_t row = rh / c.heads;
  const int head = static_cast<int>(rh % c.heads);
  const int64_t b = row / seq;
  const int pos = pos0 + static_cast<int>(row % seq);
  __half* src = qkv + row * stride + (is_v ? v_col : k_col) + static_cast<int64_t>(head) * D + lane * V;
  const int64_t entry = (b * c.heads + head) * c.max_ctx + pos;

  __half hv[V];
  if constexpr (V == 4) {
    *reinterpret_cast<uint2*>(hv) = *reinterpret_cast<const uint2*>(src);
  } else {
    *reinterpret_cast<uint32_t*>(hv) = *reinterpret_cast<const uint32_t*>(src);
  }
  if (!c.int4) {
    __half* dst = static_cast<__half*>(is_v ? c.v : c.k) + entry * D + lane * V;
    if constexpr (V == 4) {
      *reinterpret_cast<uint2*>(dst) = *reinterpret_cast<const uint2*>(hv);
    } else {
      *reinterpret_cast<uint32_t*>(dst) = *reinterpret_cast<const uint32_t*>(hv);
    }
    return;
  }
  float x[V], mx = 0.0f, mn = 0.0f;
#pragma unroll
  for (int e = 0; e < V; ++e) {
    x[e] = __half2float(hv[e]);
    mx = fmaxf(mx, x[e]);
    mn = fminf(mn, x[e]);
  }
#pragma unroll
  for (int m = 16; m > 0; m /= 2) {
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, m));
    mn = fminf(mn, __shfl_xor_sync(0xffffffffu, mn, m));
  }
  const float hi = clip * mx, lo = clip * mn;
  float s = __half2float(__float2half_rn((hi - lo) / 15.0f));
  if (!(s > 0.0f)) s = 1.0f;
  const float z = rintf(-lo / s);
  uint32_t codes = 0;
  float deq[V];
#pragma unroll
  for (int e = 0; e < V; ++e) {
    const float q = fminf(fmaxf(rintf(x[e] / s) + z, 0.0f), 15.0f);
    codes |= static_cast<uint32_t>(q) << (4 * e);
    deq[e] = (q - z) * s;
  }
  uint8_t* dst = static_cast<uint8_t*>(is_v ? c.v : c.k) + entry * (D / 2) + lane * (V / 2);
  if constexpr (V == 4) {
    *reinterpret_cast<uint16_t*>(dst) = static_cast<uint16_t>(codes);
  } else {
    *dst = static_cast<uint8_t>(codes);
  }
  if (lane == 0) (is_v ? c.v_sz : c.k_sz)[entry] = __floats2half2_rn(s, z);
  if (writeback) {
#pragma unroll
    for (int e = 0; e < V; ++e) src[e] = __float2half_rn(deq[e]);
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

cudaError_t kv_cache_store(__half* qkv, int64_t rows, int64_t stride, int64_t k_col, int64_t v_col, int seq,
                           int pos0, const KvCacheView& c, float clip, bool writeback, cudaStream_t stream) {
  const int d = c.head_dim;
  const bool ok = qkv != nullptr && c.k != nullptr && c.v != nullptr && (d == 64 || d == 128) && c.heads >= 1 &&
                  c.batch >= 1 && seq >= 1 && pos0 >= 0 && static_cast<int64_t>(pos0) + seq <= c.max_ctx &&
                  rows >= 0 && rows <= static_cast<int64_t>(c.batch) * seq && k_col >= 0 && v_col >= 0 &&
                  k_col % 8 == 0 && v_col % 8 == 0 && stride % 8 == 0 &&
                  k_col + static_cast<int64_t>(c.heads) * d <= stride &&
                  v_col + static_cast<int64_t>(c.heads) * d <= stride && clip > 0.0f && clip <= 1.0f &&
                  aligned16(qkv) && aligned16(c.k) && aligned16(c.v) &&
                  (!c.int4 || (c.k_sz != nullptr && c.v_sz != nullptr));
  if (!ok) return cudaErrorInvalidValue;
  const int64_t items = rows * c.heads * 2;
  if (items == 0) return cudaSuccess;
  const int64_t blocks = (items + kWarps - 1) / kWarps;
  if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
  if (d == 128)
    kv_store_kernel<128><<<static_cast<unsigned>(blocks), kWarps * 32, 0, stream>>>(qkv, rows, stride, k_col, v_col,
                                                                                   seq, pos0, c, clip, writeback);
  else
    kv_store_kernel<64><<<static_cast<unsigned>(blocks), kWarps * 32, 0, stream>>>(qkv, rows, stride, k_col, v_col,
                                                                                  seq, pos0, c, clip, writeback);
  return cudaGetLastError();
}

}  // namespace quarot::cuda
