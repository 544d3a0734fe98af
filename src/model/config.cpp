#include "model/config.h"

#include "common/error.h"

namespace quarot {

void LlamaConfig::validate(const std::string& source) const {
  if (arch != "llama" && arch != "qwen2")
    fail("{}: unsupported architecture '{}' (supported: llama, mistral, qwen2)", source, arch);
  auto positive = [&](int64_t v, const char* what) {
    if (v <= 0) fail("{}: {} must be positive, got {}", source, what, v);
  };
  positive(vocab_size, "vocab_size");
  positive(hidden, "hidden_size");
  positive(intermediate, "intermediate_size");
  positive(n_layers, "num_hidden_layers");
  positive(n_heads, "num_attention_heads");
  positive(n_kv_heads, "num_key_value_heads");
  positive(head_dim, "head_dim");
  positive(max_context, "max_position_embeddings");
  if (n_heads % n_kv_heads != 0)
    fail("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", source, n_heads, n_kv_heads);
  if (head_dim % 2 != 0) fail("{}: head_dim {} must be even for RoPE", source, head_dim);
  if (!(rms_eps > 0.0f)) fail("{}: rms_norm_eps must be positive", source);
  if (!(rope_theta > 0.0f)) fail("{}: rope_theta must be positive", source);
  if (hidden > (1 << 20) || intermediate > (1 << 22) || n_layers > 4096 || vocab_size > (1 << 24))
    fail("{}: implausible model dimensions (hidden {}, ffn {}, layers {}, vocab {})", source, hidden,
         intermediate, n_layers, vocab_size);
}

}  // namespace quarot
