#pragma once
// Minimal split-K decode attention for the layer benchmark: one new query token per
// sequence against a KV cache in kv_cache.cuh's layout (FP16 or int4 with a (scale,
// zero) per entry), all G = heads_q / heads_kv query heads of a KV head in one block.
// Not tuned; CUDA cores, FP32 throughout. The benchmark checks it against a host
// reference before timing it.
//   partial: block (split, kv head, sequence) scores its chunk of positions (one
//            thread per position), takes the chunk's softmax max and sum, and adds
//            p * V (8 threads per 8-dim group, reduced in shared memory);
//   combine: per (sequence, head), o = sum_s 2^(m_s - m) o_s / sum_s 2^(m_s - m) l_s.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/kv_cache.cuh"

namespace quarot::bench {

constexpr int kDecodeChunk = 128;  // positions per split = threads per block

template <bool INT4, int D, int G>
__global__ void __launch_bounds__(kDecodeChunk) decode_attention_partial(const __half* q, int64_t q_stride,
                                                                         cuda::KvCacheView c, int ctx,
                                                                         float scale_log2, float* part_o,
                                                                         float* part_ml) {
  constexpr int DG = D / 8;                 // 8-dim groups
  constexpr int PL = kDecodeChunk / DG;     // position lanes in the V phase
  __shared__ float qs[G][D];
  __shared__ float qsum[G];
  __shared__ float sc[kDecodeChunk][G];
  __shared__ float red[PL][G][D];
  __shared__ float ml[G][2];
  const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
  const int split = blockIdx.x, hk = blockIdx.y, b = blockIdx.z;
  const int splits = gridDim.x, heads_q = gridDim.y * G;
  const int64_t base_entry = (static_cast<int64_t>(b) * c.heads + hk) * c.max_ctx;
  const int p0 = split * kDecodeChunk;

  for (int i = t; i < G * D; i += kDecodeChunk)
    qs[i / D][i % D] = __half2float(q[b * q_stride + static_cast<int64_t>(hk * G + i / D) * D + i % D]) * scale_log2;
  __syncthreads();
  if (INT4 && t < G) {
    float s = 0.0f;
    for (int d = 0; d < D; ++d) s += qs[t][d];
    qsum[t] = s;
  }
  __syncthreads();

  // Scores, one position per thread.
  const int pos = p0 + t;
  float acc[G];
#pragma unroll
  for (int i = 0; i < G; ++i) acc[i] = 0.0f;
  if (pos < ctx) {
    if constexpr (INT4) {
      const uint4* kr = reinterpret_cast<const uint4*>(static_cast<const uint8_t*>(c.k) + (base_entry + pos) * (D / 2));
      const float2 sz = __half22float2(c.k_sz[base_entry + pos]);
#pragma unroll
      for (int ch = 0; ch < D / 32; ++ch) {
        const uint4 w = kr[ch];
        const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int wi = 0; wi < 4; ++wi)
#pragma unroll
          for (int e = 0; e < 8; ++e) {
            const float n = static_cast<float>((words[wi] >> (4 * e)) & 0xF);
            const int d = ch * 32 + wi * 8 + e;
#pragma unroll
            for (int i = 0; i < G; ++i) acc[i] = fmaf(qs[i][d], n, acc[i]);
          }
      }
#pragma unroll
      for (int i = 0; i < G; ++i) acc[i] = sz.x * (acc[i] - sz.y * qsum[i]);
    } else {
      const uint4* kr = reinterpret_cast<const uint4*>(static_cast<const __half*>(c.k) + (base_entry + pos) * D);
#pragma unroll 4
      for (int ch = 0; ch < D / 8; ++ch) {
        const uint4 w = kr[ch];
        const __half2* h2 = reinterpret_cast<const __half2*>(&w);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 f = __half22float2(h2[e]);
#pragma unroll
          for (int i = 0; i < G; ++i) acc[i] = fmaf(qs[i][ch * 8 + 2 * e + 1], f.y, fmaf(qs[i][ch * 8 + 2 * e], f.x, acc[i]));
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < G; ++i) sc[t][i] = pos < ctx ? acc[i] : -INFINITY;
  __syncthreads();

  // Softmax of the chunk per head (warp w: heads w, w + 4, ...).
  for (int i = warp; i < G; i += kDecodeChunk / 32) {
    float m = -INFINITY;
    for (int j = lane; j < kDecodeChunk; j += 32) m = fmaxf(m, sc[j][i]);
#pragma unroll
    for (int o = 16; o > 0; o /= 2) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    float l = 0.0f;
    for (int j = lane; j < kDecodeChunk; j += 32) {
      const float p = exp2f(sc[j][i] - m);  // -inf (past ctx) -> 0; m is finite: the chunk has a position
      sc[j][i] = p;
      l += p;
    }
#pragma unroll
    for (int o = 16; o > 0; o /= 2) l += __shfl_xor_sync(0xffffffffu, l, o);
    if (lane == 0) ml[i][0] = m, ml[i][1] = l;
  }
  __syncthreads();

  // P V: thread (pl, dg) adds positions pl, pl + PL, ... for dims [8 dg, 8 dg + 8).
  const int pl = t / DG, dg = t % DG;
  float o[G][8];
#pragma unroll
  for (int i = 0; i < G; ++i)
#pragma unroll
    for (int e = 0; e < 8; ++e) o[i][e] = 0.0f;
  const int n_pos = min(kDecodeChunk, ctx - p0);
  for (int j = pl; j < n_pos; j += PL) {
    float v[8];
    float w[G];
    if constexpr (INT4) {
      const uint32_t word =
          *reinterpret_cast<const uint32_t*>(static_cast<const uint8_t*>(c.v) + (base_entry + p0 + j) * (D / 2) + dg * 4);
      const float2 sz = __half22float2(c.v_sz[base_entry + p0 + j]);
#pragma unroll
      for (int e = 0; e < 8; ++e) v[e] = static_cast<float>((word >> (4 * e)) & 0xF) - sz.y;
#pragma unroll
      for (int i = 0; i < G; ++i) w[i] = sc[j][i] * sz.x;
    } else {
      const uint4 raw =
          *reinterpret_cast<const uint4*>(static_cast<const __half*>(c.v) + (base_entry + p0 + j) * D + dg * 8);
      const __half2* h2 = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 f = __half22float2(h2[e]);
        v[2 * e] = f.x, v[2 * e + 1] = f.y;
      }
#pragma unroll
      for (int i = 0; i < G; ++i) w[i] = sc[j][i];
    }
#pragma unroll
    for (int i = 0; i < G; ++i)
#pragma unroll
      for (int e = 0; e < 8; ++e) o[i][e] = fmaf(w[i], v[e], o[i][e]);
  }
#pragma unroll
  for (int i = 0; i < G; ++i)
#pragma unroll
    for (int e = 0; e < 8; ++e) red[pl][i][dg * 8 + e] = o[i][e];
  __syncthreads();
  for (int idx = t; idx < G * D; idx += kDecodeChunk) {
    const int i = idx / D, d = idx % D;
    float s = 0.0f;
#pragma unroll
    for (int r = 0; r < PL; ++r) s += red[r][i][d];
    const int64_t ph = (static_cast<int64_t>(b) * heads_q + hk * G + i) * splits + split;
    part_o[ph * D + d] = s;
    if (d == 0) part_ml[2 * ph] = ml[i][0], part_ml[2 * ph + 1] = ml[i][1];
  }
}

template <int D>
__global__ void decode_attention_combine(const float* part_o, const float* part_ml, int splits, __half* out,
                                         int64_t out_stride, int heads_q) {
  const int bh = blockIdx.x, d = threadIdx.x;
  const int b = bh / heads_q, h = bh % heads_q;
  const int64_t ph0 = static_cast<int64_t>(bh) * splits;
  float m = -INFINITY;
  for (int s = 0; s < splits; ++s) m = fmaxf(m, part_ml[2 * (ph0 + s)]);
  float num = 0.0f, den = 0.0f;
  for (int s = 0; s < splits; ++s) {
    const float w = exp2f(part_ml[2 * (ph0 + s)] - m);
    num = fmaf(w, part_o[(ph0 + s) * D + d], num);
    den = fmaf(w, part_ml[2 * (ph0 + s) + 1], den);
  }
  out[b * out_stride + static_cast<int64_t>(h) * D + d] = __float2half_rn(num / den);
}

// q: the new tokens' (rotated) Q heads, row b at q + b * q_stride; the cache holds ctx
// positions per sequence (the new one included); out row b at out + b * out_stride.
// part_o / part_ml: workspace of batch * heads_q * splits * (D + 2) floats.
inline cudaError_t decode_attention(const __half* q, int64_t q_stride, const cuda::KvCacheView& c, int heads_q,
                                    int ctx, float scale, float* part_o, float* part_ml, __half* out,
                                    int64_t out_stride, cudaStream_t stream) {
  constexpr int D = 128, G = 8;
  if (c.head_dim != D || heads_q != c.heads * G || ctx < 1 || ctx > c.max_ctx) return cudaErrorInvalidValue;
  const int splits = (ctx + kDecodeChunk - 1) / kDecodeChunk;
  const dim3 grid(splits, c.heads, c.batch);
  const float scale_log2 = scale * 1.4426950408889634f;
  if (c.int4)
    decode_attention_partial<true, D, G><<<grid, kDecodeChunk, 0, stream>>>(q, q_stride, c, ctx, scale_log2, part_o,
                                                                           part_ml);
  else
    decode_attention_partial<false, D, G><<<grid, kDecodeChunk, 0, stream>>>(q, q_stride, c, ctx, scale_log2, part_o,
                                                                            part_ml);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  decode_attention_combine<D><<<c.batch * heads_q, D, 0, stream>>>(part_o, part_ml, splits, out, out_stride, heads_q);
  return cudaGetLastError();
}

inline size_t decode_attention_workspace_floats(int batch, int heads_q, int ctx) {
  const size_t splits = (ctx + kDecodeChunk - 1) / kDecodeChunk;
  return static_cast<size_t>(batch) * heads_q * splits * (128 + 2);
}

}  // namespace quarot::bench
