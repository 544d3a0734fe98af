#pragma once
// Causal grouped-query attention of n new query rows over a quantized KV cache
// (kv_store_q.h) holding positions 0 .. pos0 + n - 1 (the new rows already appended):
// the same result as causal_attention (attention.h) on the dequantized cache.
//   - Few rows (decode, n < 16): each KV head's codes are read once and used by all
//     the query heads and rows that share the KV head, straight from the codes
//     (kv_code_tiles.h: s * (c - z) with the scale taken out of the sums; layouts
//     the ISA kernels do not take are dequantized on the fly into a small L1 tile
//     instead). Runs of 128 positions are independent work items (split softmax,
//     merged in a fixed order), so results do not depend on the thread count; small
//     calls run on the calling thread. Agrees with causal_attention on the
//     dequantized values to float rounding (the tests bound it at 1e-5 relative).
//   - Prefill (n >= 16): dequantizes the visible cache into FP32 once (O(cache)
//     against O(n * cache) attention work; K into transposed 64-position tiles), then
//     blocks of 16 new rows per KV head run a streaming softmax over those tiles with
//     register-blocked products (kv_prefill_tiles.h), never touching keys past the
//     block's last row. Agrees with causal_attention
//     on the dequantized values to float rounding (fast_exp2, another summation
//     order; the tests bound it at 1e-5 relative), the same bits for any thread count.
#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/kv_store_q.h"

namespace quarot {

// q: [n, n_heads * head_dim]; out: [n, n_heads * head_dim]. k and v must match the
// shape's n_kv_heads and head_dim and hold at least pos0 + n positions; otherwise
// quarot::Error.
void causal_attention_quant_kv(const float* q, int64_t n, int64_t pos0, const QuantKvLayerStore& k,
                               const QuantKvLayerStore& v, const AttentionShape& shape, float scale, float* out);

// One side of the cache: a quantized store, or FP32 rows (position j's row at
// fp + j * n_kv_heads * head_dim, as causal_attention takes), for recipes that
// quantize only K or only V. Exactly one of the two is set.
struct KvSource {
  const QuantKvLayerStore* quant = nullptr;
  const float* fp = nullptr;
};
// causal_attention_quant_kv with either side FP32. Both FP32 (the FP32 model's cache):
// decode (n < 16) reads the rows in place through the tile kernels (tiles of 128
// positions, GQA-shared, split softmax), about 5x faster than causal_attention's
// direct loop on SmolLM2 at context 512; prefill is causal_attention.
// How attention over a quantized side multiplies:
//   kFloat: FP32 products on the dequantized values (the reference arithmetic above);
//   kInt8:  int8 x int8 products with int32 sums where the CPU has AVX-512 VNNI.
//           Prefill (n >= 16; kv_prefill_int8.h: cache rows, query vectors and softmax
//           weights as 8-bit codes with per-row scales) where head_dim % 16 == 0 and
//           both sides are quantized to 4 bits or fewer. The cache codes carry over
//           exactly (one group per head); the query and weight roundings move outputs
//           by a few percent of a head vector at worst, 0.07-0.14 of what the int4
//           cache itself changes (tests/kernels/test_kv_quant_attention.cpp).
//           Decode (n < 16; kv_code_tiles.h's int8 kernels, also needing AVX-512 VBMI)
//           for each side whose rows are packed 4-bit codes with one group per head and
//           head_dim % 64 == 0: int8 queries against the codes, uint8 softmax weights
//           per 128-position tile. Anything else, and queries holding a NaN or an
//           infinity, multiply as kFloat.
enum class KvProducts { kFloat, kInt8 };
void causal_attention_kv(const float* q, int64_t n, int64_t pos0, const KvSource& k, const KvSource& v,
                         const AttentionShape& shape, float scale, float* out,
                         KvProducts products = KvProducts::kFloat);

}  // namespace quarot
