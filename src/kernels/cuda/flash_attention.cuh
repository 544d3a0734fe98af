#pragma once
// Prefill attention in FP16 on the tensor cores (mma.sync m16n8k16, FP32 accumulation),
// flash-attention style: a block owns 64 query rows of one head; their Q stays in
// registers, K/V tiles of 64 keys pass through shared memory (cp.async, double
// buffered), and the softmax is computed online (running max and sum per row), so
// the [seq, seq] score matrix is never stored.
//
//   o[b, t, h, :] = sum_j p_j v[b, j, h / G, :],  p = softmax_j(scale * q[b, t, h, :] . k[b, j, h / G, :])
//   over j <= t (causal) or all j < seq; G = heads_q / heads_kv (grouped-query attention).
//
// Rounding, which the tests' bounds follow: scores and the running sums in FP32, the
// unnormalized probabilities exp(s - m) (<= 1) rounded to FP16 before they multiply V
// (the sum that normalizes them uses the unrounded FP32 values), the output rounded
// once to FP16.
//
// Layout: token t of sequence b is row b * seq + t of each of q, k, v, o; a row holds
// the heads one after another (head h at h * head_dim), and *_stride is the distance
// in elements between rows (so q, k and v can be column slices of one packed QKV
// matrix). Shapes (cudaErrorInvalidValue otherwise, nothing launched): head_dim 64 or
// 128, heads_q a multiple of heads_kv, batch and seq >= 1, every stride a multiple of
// 8 and at least its row's width, every pointer 16-byte aligned, finite scale > 0.
// Prefill only: queries and keys are the same seq tokens.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace quarot::cuda {

struct FlashAttentionArgs {
  const __half* q = nullptr;
  const __half* k = nullptr;
  const __half* v = nullptr;
  __half* o = nullptr;
  int64_t q_stride = 0, k_stride = 0, v_stride = 0, o_stride = 0;
  int batch = 0, seq = 0, heads_q = 0, heads_kv = 0, head_dim = 0;
  float scale = 0.0f;  // usually 1 / sqrt(head_dim)
  bool causal = true;
};

cudaError_t flash_attention(const FlashAttentionArgs& args, cudaStream_t stream);

}  // namespace quarot::cuda
