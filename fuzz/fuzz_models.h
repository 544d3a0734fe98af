#pragma once
// Tiny valid inputs shared by the fuzz targets and make_fuzz_seeds: a one-layer
// Llama of hidden size 8 (a few KB in any format), its HF checkpoint form, and a
// byte-level BPE tokenizer.json covering all 256 bytes (so it encodes any text).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "model/weights.h"
#include "tokenizer/byte_level.h"

namespace quarot::fuzz {

inline LlamaConfig micro_config() {
  LlamaConfig c;
  c.name = "micro";
  c.vocab_size = 16;
  c.hidden = 8;
  c.intermediate = 16;
  c.n_layers = 1;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.head_dim = 4;
  c.max_context = 32;
  c.tied_embeddings = true;
  c.bos_id = 1;
  c.eos_id = 2;
  return c;
}

// The tensors of `w` under HF names ("model.layers.0.self_attn.q_proj.weight", ...).
inline std::vector<SafetensorsEntry> hf_entries(const ModelWeights& w) {
  std::vector<SafetensorsEntry> entries;
  auto add = [&](const std::string& n, const Tensor& t) {
    if (!t.empty()) entries.push_back(safetensors_entry_f32(n, t));
  };
  add("model.embed_tokens.weight", w.tok_embeddings);
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const LayerWeights& l = w.layers[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "input_layernorm.weight", l.attn_norm);
    add(p + "self_attn.q_proj.weight", l.wq);
    add(p + "self_attn.k_proj.weight", l.wk);
    add(p + "self_attn.v_proj.weight", l.wv);
    add(p + "self_attn.o_proj.weight", l.wo);
    add(p + "post_attention_layernorm.weight", l.ffn_norm);
    add(p + "mlp.gate_proj.weight", l.w_gate);
    add(p + "mlp.up_proj.weight", l.w_up);
    add(p + "mlp.down_proj.weight", l.w_down);
  }
  add("model.norm.weight", w.output_norm);
  add("lm_head.weight", w.lm_head);
  return entries;
}

inline nlohmann::json hf_config_json(const LlamaConfig& c) {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"hidden_size", c.hidden},
          {"intermediate_size", c.intermediate},
          {"num_hidden_layers", c.n_layers},
          {"num_attention_heads", c.n_heads},
          {"num_key_value_heads", c.n_kv_heads},
          {"rms_norm_eps", c.rms_eps},
          {"rope_theta", c.rope_theta},
          {"max_position_embeddings", c.max_context},
          {"tie_word_embeddings", c.tied_embeddings},
          {"vocab_size", c.vocab_size},
          {"bos_token_id", c.bos_id},
          {"eos_token_id", c.eos_id}};
}

// Byte-level BPE: the 256 byte characters, then "Ġt", "he", "Ġthe" merged from them,
// with the GPT-2 pre-tokenizer and decoder and one added special token.
inline nlohmann::json byte_level_tokenizer_json() {
  nlohmann::json vocab = nlohmann::json::object();
  int id = 0;
  for (int b = 0; b < 256; ++b) vocab[byte_level::byte_to_char(static_cast<uint8_t>(b))] = id++;
  const std::string sp = byte_level::byte_to_char(' ');
  for (const std::string& t : {sp + "t", std::string("he"), sp + "the"}) vocab[t] = id++;
  vocab["<|endoftext|>"] = id;
  return {{"version", "1.0"},
          {"added_tokens", {{{"id", id}, {"content", "<|endoftext|>"}, {"single_word", false}, {"lstrip", false},
                             {"rstrip", false}, {"normalized", false}, {"special", true}}}},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                             {"use_regex", true}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true},
                       {"use_regex", true}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab},
                     {"merges", {sp + " t", "h e", sp + "t he"}}}}};
}

inline nlohmann::json tokenizer_config_json() {
  return {{"bos_token", "<|endoftext|>"}, {"eos_token", "<|endoftext|>"}, {"add_bos_token", false},
          {"chat_template", "{% for m in messages %}{{ m['content'] }}{% endfor %}"}};
}

}  // namespace quarot::fuzz
