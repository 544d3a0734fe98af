#include "model/loader.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>

#include "common/error.h"
#include "common/json_number.h"
#include "io/gguf.h"
#include "io/gguf_qk_permute.h"
#include "io/hf_checkpoint.h"
#include "model/model_registry.h"

namespace quarot {

namespace fs = std::filesystem;

namespace {

bool has_gguf_magic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && std::string(magic, 4) == "GGUF";
}

// Canonical engine architecture for an architecture name, or "" if unsupported.
std::string engine_arch(const std::string& arch) {
  if (arch == "llama" || arch == "mistral") return "llama";
  if (arch == "qwen2") return "qwen2";
  return "";
}

// Llama 3.x GGUF files carry RoPE scaling as a per-frequency divisor tensor
// (rope_freqs) instead of metadata. Recover the llama3 parameters from it: the
// largest divisor is the factor; the wavelength thresholds use Meta's published
// low/high frequency factors (1, 4) and original context (8192), and the whole
// tensor is checked against them so other schemes are rejected, not misread.
RopeScaling llama3_scaling_from_freqs(const GgufFile& g, const Tensor& freqs, const LlamaConfig& c) {
  RopeScaling s;
  s.type = RopeScaling::Type::kLlama3;
  s.low_freq_factor = 1.0f;
  s.high_freq_factor = 4.0f;
  s.original_max_position = g.get_int_or(c.arch + ".rope.scaling.original_context_length", 8192);
  float factor = 1.0f;
  for (float f : freqs.data) factor = std::max(factor, f);
  s.factor = factor;
  if (freqs.numel() != c.head_dim / 2)
    fail("{}: rope_freqs has {} entries, expected head_dim / 2 = {}", g.path(), freqs.numel(), c.head_dim / 2);
  const double low_wavelen = s.original_max_position / s.low_freq_factor;
  const double high_wavelen = s.original_max_position / s.high_freq_factor;
  for (int64_t i = 0; i < freqs.numel(); ++i) {
    const double freq = std::pow(static_cast<double>(c.rope_theta), -2.0 * i / c.head_dim);
    const double wavelen = 2 * std::numbers::pi / freq;
    double expected;
    if (wavelen < high_wavelen) {
      expected = 1.0;
    } else if (wavelen > low_wavelen) {
      expected = factor;
    } else {
      const double smooth = (s.original_max_position / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      expected = 1.0 / ((1 - smooth) / factor + smooth);
    }
    if (std::fabs(freqs.data[i] - expected) > 1e-3 * expected)
      fail("{}: rope_freqs entry {} is {}, which does not match llama3 RoPE scaling (expected {})", g.path(), i,
           freqs.data[i], expected);
  }
  return s;
}

}  // namespace

LlamaConfig config_from_gguf(const GgufFile& g) {
  LlamaConfig c;
  const std::string file_arch = g.get_string("general.architecture");
  c.arch = engine_arch(file_arch);
  if (c.arch.empty()) fail("{}: unsupported architecture '{}' (supported: llama, mistral, qwen2)", g.path(), file_arch);
  const std::string a = file_arch + ".";
  c.name = g.get_string_or("general.name", fs::path(g.path()).stem().string());
  c.hidden = g.get_int(a + "embedding_length");
  c.n_layers = g.get_int(a + "block_count");
  c.intermediate = g.get_int(a + "feed_forward_length");
  c.n_heads = g.get_int(a + "attention.head_count");
  c.n_kv_heads = g.get_int_or(a + "attention.head_count_kv", c.n_heads);
  if (c.n_heads <= 0) fail("{}: {}attention.head_count must be positive, got {}", g.path(), a, c.n_heads);
  c.head_dim = g.get_int_or(a + "attention.key_length", c.hidden / c.n_heads);
  const int64_t value_dim = g.get_int_or(a + "attention.value_length", c.head_dim);
  if (value_dim != c.head_dim)
    fail("{}: attention key length {} differs from value length {} (unsupported)", g.path(), c.head_dim, value_dim);
  c.rms_eps = static_cast<float>(g.get_float_or(a + "attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_theta = static_cast<float>(g.get_float_or(a + "rope.freq_base", 10000.0));
  c.max_context = g.get_int_or(a + "context_length", 2048);
  c.qkv_bias = c.arch == "qwen2";

  const std::string scaling = g.get_string_or(a + "rope.scaling.type", "none");
  if (scaling == "linear") {
    c.rope_scaling.type = RopeScaling::Type::kLinear;
    c.rope_scaling.factor = static_cast<float>(g.get_float(a + "rope.scaling.factor"));
    c.rope_scaling.original_max_position = g.get_int_or(a + "rope.scaling.original_context_length", c.max_context);
  } else if (scaling != "none") {
    fail("{}: unsupported RoPE scaling type '{}' (supported: none, linear, llama3)", g.path(), scaling);
  }
  if (g.find("rope_freqs.weight") != nullptr)
    c.rope_scaling = llama3_scaling_from_freqs(g, g.read("rope_freqs.weight"), c);

  if (const TensorInfo* emb = g.find("token_embd.weight"); emb != nullptr && emb->shape.size() == 2) {
    c.vocab_size = emb->shape[0];
  } else if (g.has("tokenizer.ggml.tokens")) {
    c.vocab_size = static_cast<int64_t>(g.get_string_array("tokenizer.ggml.tokens").size());
  }
  c.tied_embeddings = g.find("output.weight") == nullptr;
  c.bos_id = static_cast<int32_t>(g.get_int_or("tokenizer.ggml.bos_token_id", -1));
  c.eos_id = static_cast<int32_t>(g.get_int_or("tokenizer.ggml.eos_token_id", -1));
  // llama.cpp's default: SentencePiece vocabularies add BOS, byte-level BPE ones do not.
  c.add_bos = g.get_bool_or("tokenizer.ggml.add_bos_token", g.get_string_or("tokenizer.ggml.model", "") == "llama");
  return c;
}

namespace {

int64_t json_int(const nlohmann::json& j, const std::string& key, const std::string& source) {
  return json_number_field<int64_t>(j, key.c_str(), source);
}
int64_t json_int_or(const nlohmann::json& j, const std::string& key, const std::string& source, int64_t def) {
  return j.contains(key) && !j[key].is_null() ? json_int(j, key, source) : def;
}
double json_float_or(const nlohmann::json& j, const std::string& key, const std::string& source, double def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  return json_number<double>(j[key], fmt::format("{}: {}", source, key));
}
bool json_bool_or(const nlohmann::json& j, const std::string& key, const std::string& source, bool def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_boolean()) fail("{}: {} is not true/false", source, key);
  return j[key].get<bool>();
}
// bos/eos ids may be an integer, a list (first is used) or null.
int32_t json_token_id(const nlohmann::json& j, const std::string& key, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return -1;
  const nlohmann::json& v = j[key].is_array() && !j[key].empty() ? j[key][0] : j[key];
  return json_number<int32_t>(v, fmt::format("{}: token id {}", source, key));
}

}  // namespace

LlamaConfig config_from_hf(const nlohmann::json& j, const std::string& source, const TensorSource* tensors) {
  if (!j.is_object()) fail("{}: not a JSON object", source);
  std::string hf_arch;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string()) {
    hf_arch = j["architectures"][0].get<std::string>();
  } else if (j.contains("model_type") && j["model_type"].is_string()) {
    hf_arch = j["model_type"].get<std::string>();
  } else {
    fail("{}: no \"architectures\" or \"model_type\"", source);
  }
  LlamaConfig c;
  if (hf_arch == "LlamaForCausalLM" || hf_arch == "llama") c.arch = "llama";
  else if (hf_arch == "MistralForCausalLM" || hf_arch == "mistral") c.arch = "llama";
  else if (hf_arch == "Qwen2ForCausalLM" || hf_arch == "qwen2") c.arch = "qwen2";
  else fail("{}: unsupported architecture '{}' (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)",
            source, hf_arch);
  c.name = hf_arch;
  for (const char* k : {"_name_or_path", "_model_name_or_path"})
    if (j.contains(k) && j[k].is_string() && !j[k].get<std::string>().empty()) c.name = j[k].get<std::string>();
  c.hidden = json_int(j, "hidden_size", source);
  c.intermediate = json_int(j, "intermediate_size", source);
  c.n_layers = json_int(j, "num_hidden_layers", source);
  c.n_heads = json_int(j, "num_attention_heads", source);
  if (c.n_heads <= 0) fail("{}: num_attention_heads must be positive", source);
  c.n_kv_heads = json_int_or(j, "num_key_value_heads", source, c.n_heads);
  c.head_dim = json_int_or(j, "head_dim", source, c.hidden / c.n_heads);
  c.rms_eps = static_cast<float>(json_float_or(j, "rms_norm_eps", source, 1e-6));
  // transformers >= 5 nests RoPE settings in "rope_parameters"; older files keep
  // rope_theta and rope_scaling at the top level.
  const bool nested_rope = j.contains("rope_parameters") && j["rope_parameters"].is_object();
  const nlohmann::json& rope = nested_rope ? j["rope_parameters"] : j;
  c.rope_theta = static_cast<float>(json_float_or(rope, "rope_theta", source, 10000.0));
  c.max_context = json_int_or(j, "max_position_embeddings", source, 2048);
  c.qkv_bias = c.arch == "qwen2";
  c.bos_id = json_token_id(j, "bos_token_id", source);
  c.eos_id = json_token_id(j, "eos_token_id", source);

  // Sliding-window attention would need a different mask; refuse rather than differ.
  const bool uses_window = hf_arch.starts_with("Qwen2") || hf_arch == "qwen2"
                               ? json_bool_or(j, "use_sliding_window", source, false)
                               : true;
  if (uses_window && j.contains("sliding_window") && !j["sliding_window"].is_null()) {
    const int64_t window = json_int(j, "sliding_window", source);
    if (window < c.max_context)
      fail("{}: sliding-window attention (window {} < max_position_embeddings {}) is not supported", source, window,
           c.max_context);
  }

  const nlohmann::json* scaling = nested_rope ? &j["rope_parameters"]
                                  : (j.contains("rope_scaling") && !j["rope_scaling"].is_null() ? &j["rope_scaling"]
                                                                                               : nullptr);
  if (scaling != nullptr) {
    const nlohmann::json& rs = *scaling;
    if (!rs.is_object()) fail("{}: rope_scaling is not an object", source);
    std::string type;
    for (const char* k : {"rope_type", "type"})
      if (type.empty() && rs.contains(k) && rs[k].is_string()) type = rs[k].get<std::string>();
    const std::string what = source + " rope_scaling";
    if (type == "llama3") {
      c.rope_scaling.type = RopeScaling::Type::kLlama3;
      c.rope_scaling.factor = static_cast<float>(json_float_or(rs, "factor", what, 8.0));
      c.rope_scaling.low_freq_factor = static_cast<float>(json_float_or(rs, "low_freq_factor", what, 1.0));
      c.rope_scaling.high_freq_factor = static_cast<float>(json_float_or(rs, "high_freq_factor", what, 4.0));
      c.rope_scaling.original_max_position = json_int_or(rs, "original_max_position_embeddings", what, 8192);
    } else if (type == "linear") {
      c.rope_scaling.type = RopeScaling::Type::kLinear;
      c.rope_scaling.factor = static_cast<float>(json_float_or(rs, "factor", what, 1.0));
    } else if (type != "default" && !type.empty()) {
      fail("{}: unsupported rope_scaling type '{}' (supported: llama3, linear)", source, type);
    }
  }

  const TensorInfo* emb = tensors != nullptr ? tensors->find("model.embed_tokens.weight") : nullptr;
  c.vocab_size = emb != nullptr && emb->shape.size() == 2 ? emb->shape[0] : json_int(j, "vocab_size", source);
  c.tied_embeddings = json_bool_or(j, "tie_word_embeddings", source, false) ||
                      (tensors != nullptr && tensors->find("lm_head.weight") == nullptr);
  return c;
}

namespace {

ModelWeights load_gguf(const std::string& path) {
  GgufFile g(path);
  ModelWeights w;
  w.config = config_from_gguf(g);
  const LlamaConfig& c = w.config;
  c.validate(path);
  // llama.cpp permutes Q/K only for the llama family; Qwen2 keeps HF order.
  const bool permuted = c.arch == "llama";
  w.tok_embeddings = g.read("token_embd.weight");
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights& l = w.layers[static_cast<size_t>(i)];
    l.attn_norm = g.read(p + "attn_norm.weight");
    l.wq = g.read(p + "attn_q.weight");
    l.wk = g.read(p + "attn_k.weight");
    l.wv = g.read(p + "attn_v.weight");
    l.wo = g.read(p + "attn_output.weight");
    if (c.qkv_bias) {
      l.bq = g.read(p + "attn_q.bias");
      l.bk = g.read(p + "attn_k.bias");
      l.bv = g.read(p + "attn_v.bias");
    }
    if (permuted) {
      try {
        l.wq = unpermute_qk_from_gguf(l.wq, c.n_heads);
        l.wk = unpermute_qk_from_gguf(l.wk, c.n_kv_heads);
      } catch (const Error& e) {
        fail("{}: layer {}: {}", path, i, e.what());
      }
    }
    l.ffn_norm = g.read(p + "ffn_norm.weight");
    l.w_gate = g.read(p + "ffn_gate.weight");
    l.w_up = g.read(p + "ffn_up.weight");
    l.w_down = g.read(p + "ffn_down.weight");
  }
  w.output_norm = g.read("output_norm.weight");
  if (!c.tied_embeddings) w.lm_head = g.read("output.weight");
  return w;
}

ModelWeights load_hf(const std::string& dir) {
  HfCheckpoint ck(dir);
  ModelWeights w;
  w.config = config_from_hf(ck.config(), dir + "/config.json", &ck);
  const LlamaConfig& c = w.config;
  c.validate(dir);
  w.tok_embeddings = ck.read("model.embed_tokens.weight");
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    LayerWeights& l = w.layers[static_cast<size_t>(i)];
    l.attn_norm = ck.read(p + "input_layernorm.weight");
    l.wq = ck.read(p + "self_attn.q_proj.weight");
    l.wk = ck.read(p + "self_attn.k_proj.weight");
    l.wv = ck.read(p + "self_attn.v_proj.weight");
    l.wo = ck.read(p + "self_attn.o_proj.weight");
    if (c.qkv_bias) {
      l.bq = ck.read(p + "self_attn.q_proj.bias");
      l.bk = ck.read(p + "self_attn.k_proj.bias");
      l.bv = ck.read(p + "self_attn.v_proj.bias");
    }
    l.ffn_norm = ck.read(p + "post_attention_layernorm.weight");
    l.w_gate = ck.read(p + "mlp.gate_proj.weight");
    l.w_up = ck.read(p + "mlp.up_proj.weight");
    l.w_down = ck.read(p + "mlp.down_proj.weight");
  }
  w.output_norm = ck.read("model.norm.weight");
  if (!c.tied_embeddings) w.lm_head = ck.read("lm_head.weight");
  return w;
}

}  // namespace

ModelWeights load_model_weights(const std::string& name_or_path) {
  const std::string path = resolve_model_path(name_or_path);
  ModelWeights w;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    w = load_hf(path);
  } else if (has_gguf_magic(path)) {
    w = load_gguf(path);
  } else {
    fail("{}: not a GGUF file or a Hugging Face checkpoint directory", path);
  }
  w.validate(path);
  return w;
}

ModelSummary inspect_model(const std::string& name_or_path) {
  ModelSummary s;
  s.path = resolve_model_path(name_or_path);
  std::error_code ec;
  auto count_tensors = [&](const TensorSource& src) {
    for (const TensorInfo& t : src.tensors()) {
      ++s.tensors_by_dtype[dtype_name(t.dtype)];
      ++s.tensor_count;
      s.parameter_count += Tensor::numel_of(t.shape);
    }
  };
  if (fs::is_directory(s.path, ec)) {
    HfCheckpoint ck(s.path);
    s.format = "safetensors (" + std::to_string(ck.shards().size()) + (ck.shards().size() == 1 ? " file)" : " files)");
    s.config = config_from_hf(ck.config(), s.path + "/config.json", &ck);
    const nlohmann::json& cfg = ck.config();
    if (cfg.contains("architectures") && cfg["architectures"].is_array() && !cfg["architectures"].empty() &&
        cfg["architectures"][0].is_string())
      s.architecture = cfg["architectures"][0].get<std::string>();
    else if (cfg.contains("model_type") && cfg["model_type"].is_string())
      s.architecture = cfg["model_type"].get<std::string>();
    for (const auto& shard : ck.shards()) s.file_bytes += fs::file_size(shard->path(), ec);
    count_tensors(ck);
  } else if (has_gguf_magic(s.path)) {
    GgufFile g(s.path);
    s.format = "GGUF v" + std::to_string(g.version());
    s.architecture = g.get_string("general.architecture");
    s.config = config_from_gguf(g);
    s.file_bytes = fs::file_size(s.path, ec);
    count_tensors(g);
  } else {
    fail("{}: not a GGUF file or a Hugging Face checkpoint directory", s.path);
  }
  s.fp32_bytes = static_cast<uint64_t>(s.parameter_count) * sizeof(float);
  return s;
}

}  // namespace quarot
