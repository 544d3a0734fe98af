#pragma once
// Test helper: a GgufBuilder holding a whole Llama-family model in llama.cpp's
// naming and layout (Q/K rows permuted for the llama architecture, as
// convert_hf_to_gguf.py does), so tests can write tiny models as GGUF files.
#include <string>

#include "gguf_builder.h"
#include "io/gguf_qk_permute.h"
#include "model/weights.h"

namespace quarot::testing {

enum class GgufWeightType { kF32, kF16, kQ8_0 };

inline GgufBuilder gguf_from_model(const ModelWeights& w, GgufWeightType type = GgufWeightType::kF32,
                                   const std::string& file_arch = "") {
  const LlamaConfig& c = w.config;
  const std::string arch = file_arch.empty() ? c.arch : file_arch;
  GgufBuilder b;
  b.add_string("general.architecture", arch)
      .add_string("general.name", c.name)
      .add_u32(arch + ".context_length", static_cast<uint32_t>(c.max_context))
      .add_u32(arch + ".embedding_length", static_cast<uint32_t>(c.hidden))
      .add_u32(arch + ".block_count", static_cast<uint32_t>(c.n_layers))
      .add_u32(arch + ".feed_forward_length", static_cast<uint32_t>(c.intermediate))
      .add_u32(arch + ".attention.head_count", static_cast<uint32_t>(c.n_heads))
      .add_u32(arch + ".attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads))
      .add_u32(arch + ".attention.key_length", static_cast<uint32_t>(c.head_dim))
      .add_f32(arch + ".attention.layer_norm_rms_epsilon", c.rms_eps)
      .add_f32(arch + ".rope.freq_base", c.rope_theta)
      .add_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(c.bos_id))
      .add_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(c.eos_id))
      .add_bool("tokenizer.ggml.add_bos_token", c.add_bos);
  auto add = [&](const std::string& name, const Tensor& t) {
    // Q8_0 needs rows of 32; small vectors (norms, biases) stay F32 as llama.cpp does.
    if (type == GgufWeightType::kQ8_0 && t.ndim() == 2 && t.cols() % 32 == 0) {
      b.add_tensor_q8_0(name, t.shape, t.data);
    } else if (type == GgufWeightType::kF16 && t.ndim() == 2) {
      b.add_tensor_f16(name, t.shape, t.data);
    } else {
      b.add_tensor_f32(name, t.shape, t.data);
    }
  };
  const bool permute = c.arch == "llama";
  add("token_embd.weight", w.tok_embeddings);
  // Layers come from w.layers, block_count from the config: tests may make them disagree.
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const LayerWeights& l = w.layers[i];
    const std::string p = "blk." + std::to_string(i) + ".";
    add(p + "attn_norm.weight", l.attn_norm);
    add(p + "attn_q.weight", permute ? permute_qk_to_gguf(l.wq, c.n_heads) : l.wq);
    add(p + "attn_k.weight", permute ? permute_qk_to_gguf(l.wk, c.n_kv_heads) : l.wk);
    add(p + "attn_v.weight", l.wv);
    add(p + "attn_output.weight", l.wo);
    if (c.qkv_bias) {
      add(p + "attn_q.bias", l.bq);
      add(p + "attn_k.bias", l.bk);
      add(p + "attn_v.bias", l.bv);
    }
    add(p + "ffn_norm.weight", l.ffn_norm);
    add(p + "ffn_gate.weight", l.w_gate);
    add(p + "ffn_up.weight", l.w_up);
    add(p + "ffn_down.weight", l.w_down);
  }
  add("output_norm.weight", w.output_norm);
  if (!w.lm_head.empty()) add("output.weight", w.lm_head);
  return b;
}

}  // namespace quarot::testing
