#pragma once
// llama.cpp's HF->GGUF converter reorders the rows of Q and K projections of
// llama-architecture models so its "interleaved" RoPE (rotating pairs (2i, 2i+1))
// computes what HF's rotate_half RoPE (pairs (i, i + head_dim/2)) computes.
// Within each head of head_dim rows, with half = head_dim / 2:
//   gguf_row(h, 2*i + p) = hf_row(h, p*half + i)    for i < half, p in {0, 1}
// (numpy: w.reshape(n_head, 2, half, ...).swapaxes(1, 2).reshape(w.shape)).
// quarot keeps HF layout, so the loader applies the inverse to GGUF tensors.
#include <cstdint>

#include "common/tensor.h"

namespace quarot {

// HF -> GGUF order (what the converter did). Rows = shape[0]; works for biases too.
Tensor permute_qk_to_gguf(const Tensor& w, int64_t n_heads);
// GGUF -> HF order. Throws Error if shape[0] is not n_heads * an even head_dim.
Tensor unpermute_qk_from_gguf(const Tensor& w, int64_t n_heads);

}  // namespace quarot
