#pragma once
// Hyper-parameters of a Llama-family decoder (Llama 2/3, SmolLM, TinyLlama,
// Mistral without sliding window, Qwen2). Filled by io/ from GGUF metadata or
// config.json; validate() rejects what the engine cannot run, with a clear message.
#include <cstdint>
#include <string>

namespace quarot {

struct RopeScaling {
  enum class Type { kNone, kLlama3, kLinear };
  Type type = Type::kNone;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int64_t original_max_position = 8192;
};

struct LlamaConfig {
  std::string arch = "llama";  // "llama" or "qwen2" (q/k/v bias)
  std::string name;            // model name for display
  int64_t vocab_size = 0;
  int64_t hidden = 0;
  int64_t intermediate = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_context = 2048;
  float rms_eps = 1e-5f;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  bool tied_embeddings = false;
  bool qkv_bias = false;
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  bool add_bos = false;  // whether the tokenizer prepends BOS when encoding a document

  int64_t q_dim() const { return n_heads * head_dim; }
  int64_t kv_dim() const { return n_kv_heads * head_dim; }
  // Throws Error("<source>: ...") on inconsistent or unsupported values.
  void validate(const std::string& source) const;
};

}  // namespace quarot
