#pragma once
// Causal multi-head attention (grouped-query) of n new query rows against a KV
// cache holding positions 0 .. pos0 + n - 1:
//   out[t, h] = softmax_j<=pos0+t(scale * q[t, h] . k[j, h / group]) . v[j, h / group]
// Prefill-sized blocks run as two GEMMs per (KV head, block of queries) through the
// packed-GEMM kernels, computing only the key range the block can see; a few rows
// (decode) take a direct loop, which reads each cached row once per query head; the
// CPU backend decodes an FP32 cache through causal_attention_kv (kv_attention.h)
// instead, which shares each row between the query heads of its KV head.
#include <cstdint>

#include "kernels/backend.h"  // AttentionShape

namespace quarot {

// q: [n, n_heads * head_dim]; k, v: the cache, position j's row at k + j * n_kv_heads * head_dim;
// out: [n, n_heads * head_dim]. Threads with OpenMP; results do not depend on the thread count.
void causal_attention(const float* q, int64_t n, int64_t pos0, const float* k, const float* v,
                      const AttentionShape& shape, float scale, float* out);

}  // namespace quarot
