#pragma once
// The full-precision weights of a Llama-family model, in HF/PyTorch layout:
// every linear weight is [out_features, in_features] and y = x W^T (+ b).
// Q/K projections use HF's "rotate_half" RoPE layout; GGUF readers undo
// llama.cpp's interleaving permutation so one RoPE convention holds everywhere.
// This is what io/ produces, what transform/ rewrites and what quant/ consumes.
#include <set>
#include <string>
#include <vector>

#include "common/tensor.h"
#include "model/config.h"

namespace quarot {

struct LayerWeights {
  Tensor attn_norm;            // [hidden]
  Tensor wq, wk, wv, wo;       // [q_dim, hidden], [kv_dim, hidden], [kv_dim, hidden], [hidden, q_dim]
  Tensor bq, bk, bv;           // [q_dim], [kv_dim], [kv_dim]; empty unless qkv_bias
  Tensor ffn_norm;             // [hidden]
  Tensor w_gate, w_up, w_down; // [ffn, hidden], [ffn, hidden], [hidden, ffn]
};

struct ModelWeights {
  LlamaConfig config;
  Tensor tok_embeddings;       // [vocab, hidden]
  std::vector<LayerWeights> layers;
  Tensor output_norm;          // [hidden]
  Tensor lm_head;              // [vocab, hidden]; empty when tied to tok_embeddings

  const Tensor& output_matrix() const { return lm_head.empty() ? tok_embeddings : lm_head; }
  int64_t parameter_count() const;
  // Throws Error naming the tensor if any weight has the wrong shape or holds NaN/Inf.
  // Tensors named in `supplied_elsewhere` ("tok_embeddings", "lm_head",
  // "layers.<i>.<field>", as model/linear_slots.h names them) may be empty: their
  // values come in another form (an encoded weight).
  void validate(const std::string& source, const std::set<std::string>& supplied_elsewhere = {}) const;
};

// A randomly initialised model of the given shape (for tests and benchmarks):
// weights ~ N(0, 0.02), norms ~ 1 + N(0, 0.1), a few large "outlier" channels so
// quantization without rotation visibly suffers, as in real LLMs.
ModelWeights make_synthetic_model(const LlamaConfig& config, uint64_t seed);
LlamaConfig tiny_test_config();  // hidden 64, 2 layers, 4 heads / 2 kv heads, ffn 160, vocab 256

}  // namespace quarot
