// Model loading from GGUF files and HF checkpoint directories, against models
// fabricated in the test (exact FP32 round trips) and the real default model.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <numbers>
#include <stdexcept>

#include "common/error.h"
#include "io/gguf.h"
#include "io/hf_checkpoint.h"
#include "io/gguf_model_builder.h"
#include "io/safetensors.h"
#include "model/loader.h"
#include "model/model_registry.h"
#include "test_support.h"

namespace quarot {
namespace {

using ::testing::HasSubstr;

void expect_same_weights(const ModelWeights& got, const ModelWeights& want) {
  auto same = [](const Tensor& a, const Tensor& b, const std::string& what) {
    EXPECT_EQ(a.shape, b.shape) << what;
    EXPECT_TRUE(a.data == b.data) << what;
  };
  same(got.tok_embeddings, want.tok_embeddings, "embeddings");
  same(got.output_norm, want.output_norm, "output_norm");
  same(got.lm_head, want.lm_head, "lm_head");
  ASSERT_EQ(got.layers.size(), want.layers.size());
  for (size_t i = 0; i < got.layers.size(); ++i) {
    const auto& g = got.layers[i];
    const auto& w = want.layers[i];
    same(g.attn_norm, w.attn_norm, "attn_norm");
    same(g.wq, w.wq, "wq");
    same(g.wk, w.wk, "wk");
    same(g.wv, w.wv, "wv");
    same(g.wo, w.wo, "wo");
    same(g.bq, w.bq, "bq");
    same(g.bk, w.bk, "bk");
    same(g.bv, w.bv, "bv");
    same(g.ffn_norm, w.ffn_norm, "ffn_norm");
    same(g.w_gate, w.w_gate, "w_gate");
    same(g.w_up, w.w_up, "w_up");
    same(g.w_down, w.w_down, "w_down");
  }
}

std::string write_gguf(const testing::GgufBuilder& b, const std::string& name = "model.gguf") {
  const std::string path = test::temp_dir() + "/" + name;
  b.write(path);
  return path;
}

TEST(LoaderGguf, LlamaRoundTripUndoesQkPermutation) {
  LlamaConfig c = tiny_test_config();
  c.add_bos = true;
  const ModelWeights want = make_synthetic_model(c, 7);
  const std::string path = write_gguf(testing::gguf_from_model(want));
  // The file really holds permuted rows (otherwise this test would prove nothing).
  EXPECT_NE(GgufFile(path).read("blk.0.attn_q.weight").data, want.layers[0].wq.data);
  const ModelWeights got = load_model_weights(path);
  EXPECT_EQ(got.config.arch, "llama");
  EXPECT_EQ(got.config.hidden, c.hidden);
  EXPECT_EQ(got.config.n_layers, c.n_layers);
  EXPECT_EQ(got.config.n_heads, c.n_heads);
  EXPECT_EQ(got.config.n_kv_heads, c.n_kv_heads);
  EXPECT_EQ(got.config.head_dim, c.head_dim);
  EXPECT_EQ(got.config.intermediate, c.intermediate);
  EXPECT_EQ(got.config.vocab_size, c.vocab_size);
  EXPECT_EQ(got.config.max_context, c.max_context);
  EXPECT_EQ(got.config.rms_eps, c.rms_eps);
  EXPECT_EQ(got.config.rope_theta, c.rope_theta);
  EXPECT_EQ(got.config.bos_id, c.bos_id);
  EXPECT_EQ(got.config.eos_id, c.eos_id);
  EXPECT_TRUE(got.config.add_bos);
  EXPECT_TRUE(got.config.tied_embeddings);
  EXPECT_EQ(got.config.rope_scaling.type, RopeScaling::Type::kNone);
  expect_same_weights(got, want);
}

TEST(LoaderGguf, MistralIsLlamaAndUntiedHeadLoads) {
  LlamaConfig c = tiny_test_config();
  c.tied_embeddings = false;
  const ModelWeights want = make_synthetic_model(c, 8);
  const ModelWeights got = load_model_weights(write_gguf(testing::gguf_from_model(want, testing::GgufWeightType::kF32, "mistral")));
  EXPECT_EQ(got.config.arch, "llama");
  EXPECT_FALSE(got.config.tied_embeddings);
  expect_same_weights(got, want);
}

TEST(LoaderGguf, Qwen2KeepsRowOrderAndLoadsBiases) {
  LlamaConfig c = tiny_test_config();
  c.arch = "qwen2";
  c.qkv_bias = true;
  const ModelWeights want = make_synthetic_model(c, 9);
  const std::string path = write_gguf(testing::gguf_from_model(want));
  EXPECT_EQ(GgufFile(path).read("blk.1.attn_k.weight").data, want.layers[1].wk.data);
  const ModelWeights got = load_model_weights(path);
  EXPECT_EQ(got.config.arch, "qwen2");
  EXPECT_TRUE(got.config.qkv_bias);
  expect_same_weights(got, want);
}

TEST(LoaderGguf, QuantizedTensorsDequantizeCloseToOriginal) {
  const ModelWeights want = make_synthetic_model(tiny_test_config(), 10);
  const ModelWeights got =
      load_model_weights(write_gguf(testing::gguf_from_model(want, testing::GgufWeightType::kQ8_0)));
  // Q8_0: error at most half a step of max|row block| / 127; Q rows must land in HF order.
  for (size_t i = 0; i < want.layers.size(); ++i) {
    const Tensor& g = got.layers[i].wq;
    const Tensor& w = want.layers[i].wq;
    ASSERT_EQ(g.shape, w.shape);
    float amax = 0;
    for (float v : w.data) amax = std::max(amax, std::fabs(v));
    for (int64_t k = 0; k < w.numel(); ++k) ASSERT_NEAR(g.data[k], w.data[k], amax / 127 * 0.51f) << k;
  }
}

TEST(LoaderGguf, Llama3RopeFreqsBecomeLlama3Scaling) {
  LlamaConfig c = tiny_test_config();
  c.rope_theta = 500000.0f;
  c.max_context = 131072;
  c.head_dim = 128;
  c.n_heads = 1;
  c.n_kv_heads = 1;
  const ModelWeights w = make_synthetic_model(c, 11);
  // The divisors llama.cpp's converter writes for factor 8, low 1, high 4, original 8192.
  auto freqs_for = [&](double factor) {
    std::vector<float> f;
    for (int64_t i = 0; i < c.head_dim / 2; ++i) {
      const double wavelen = 2 * std::numbers::pi * std::pow(c.rope_theta, 2.0 * i / c.head_dim);
      if (wavelen < 8192.0 / 4) f.push_back(1.0f);
      else if (wavelen > 8192.0) f.push_back(static_cast<float>(factor));
      else {
        const double smooth = (8192.0 / wavelen - 1) / (4 - 1);
        f.push_back(static_cast<float>(1 / ((1 - smooth) / factor + smooth)));
      }
    }
    return f;
  };
  auto b = testing::gguf_from_model(w);
  b.add_tensor_f32("rope_freqs.weight", {c.head_dim / 2}, freqs_for(8.0));
  const ModelWeights got = load_model_weights(write_gguf(b));
  EXPECT_EQ(got.config.rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_FLOAT_EQ(got.config.rope_scaling.factor, 8.0f);
  EXPECT_EQ(got.config.rope_scaling.original_max_position, 8192);

  auto bad = testing::gguf_from_model(w);
  auto f = freqs_for(8.0);
  f[10] *= 1.5f;
  bad.add_tensor_f32("rope_freqs.weight", {c.head_dim / 2}, f);
  EXPECT_THROW(load_model_weights(write_gguf(bad, "bad.gguf")), Error);
}

void expect_load_error(const std::string& path, const std::string& word) {
  try {
    load_model_weights(path);
    ADD_FAILURE() << "loaded " << path;
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path));
    EXPECT_THAT(e.what(), HasSubstr(word));
  }
}

TEST(LoaderGguf, RejectsUnsupportedOrIncompleteModels) {
  const ModelWeights w = make_synthetic_model(tiny_test_config(), 12);
  expect_load_error(write_gguf(testing::gguf_from_model(w, testing::GgufWeightType::kF32, "gpt2"), "gpt2.gguf"),
                    "unsupported architecture 'gpt2'");
  ModelWeights missing = w;
  missing.layers.pop_back();  // file then lacks blk.1.*
  expect_load_error(write_gguf(testing::gguf_from_model(missing), "missing.gguf"), "blk.1.attn_norm.weight");
  ModelWeights nan = w;
  nan.layers[1].w_up.data[5] = std::nanf("");
  expect_load_error(write_gguf(testing::gguf_from_model(nan), "nan.gguf"), "non-finite");
  const std::string text = test::temp_dir() + "/readme.txt";
  std::ofstream(text) << "hello";
  expect_load_error(text, "not a GGUF file");
}

// Writes `w` as an HF checkpoint directory (optionally sharded in two files).
std::string write_hf(const ModelWeights& w, const std::string& config_json, bool sharded) {
  const std::string dir = test::temp_dir();
  std::ofstream(dir + "/config.json") << config_json;
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
    add(p + "self_attn.q_proj.bias", l.bq);
    add(p + "self_attn.k_proj.bias", l.bk);
    add(p + "self_attn.v_proj.bias", l.bv);
    add(p + "post_attention_layernorm.weight", l.ffn_norm);
    add(p + "mlp.gate_proj.weight", l.w_gate);
    add(p + "mlp.up_proj.weight", l.w_up);
    add(p + "mlp.down_proj.weight", l.w_down);
  }
  add("model.norm.weight", w.output_norm);
  add("lm_head.weight", w.lm_head);
  if (!sharded) {
    write_safetensors(dir + "/model.safetensors", entries, {{"format", "pt"}});
    return dir;
  }
  const size_t half = entries.size() / 2;
  const std::string f1 = "model-00001-of-00002.safetensors", f2 = "model-00002-of-00002.safetensors";
  write_safetensors(dir + "/" + f1, {entries.begin(), entries.begin() + half}, {});
  write_safetensors(dir + "/" + f2, {entries.begin() + half, entries.end()}, {});
  nlohmann::json index;
  for (size_t i = 0; i < entries.size(); ++i) index["weight_map"][entries[i].name] = i < half ? f1 : f2;
  std::ofstream(dir + "/model.safetensors.index.json") << index.dump();
  return dir;
}

nlohmann::json hf_config(const LlamaConfig& c, const std::string& arch) {
  return {{"architectures", {arch}},
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
          {"eos_token_id", {c.eos_id, 99}}};
}

TEST(LoaderHf, SingleFileAndShardedRoundTrip) {
  LlamaConfig c = tiny_test_config();
  c.tied_embeddings = false;
  const ModelWeights want = make_synthetic_model(c, 13);
  for (bool sharded : {false, true}) {
    nlohmann::json cfg = hf_config(c, "LlamaForCausalLM");
    cfg["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 32.0}, {"low_freq_factor", 1.0},
                           {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
    const ModelWeights got = load_model_weights(write_hf(want, cfg.dump(), sharded));
    EXPECT_EQ(got.config.head_dim, c.hidden / c.n_heads);
    EXPECT_EQ(got.config.eos_id, c.eos_id);
    EXPECT_EQ(got.config.bos_id, c.bos_id);
    EXPECT_FALSE(got.config.tied_embeddings);
    EXPECT_EQ(got.config.rope_scaling.type, RopeScaling::Type::kLlama3);
    EXPECT_EQ(got.config.rope_scaling.factor, 32.0f);
    expect_same_weights(got, want);
  }
}

TEST(LoaderHf, Qwen2WithBiases) {
  LlamaConfig c = tiny_test_config();
  c.arch = "qwen2";
  c.qkv_bias = true;
  const ModelWeights want = make_synthetic_model(c, 14);
  nlohmann::json cfg = hf_config(c, "Qwen2ForCausalLM");
  cfg["sliding_window"] = 32;  // ignored: use_sliding_window is false by default
  const ModelWeights got = load_model_weights(write_hf(want, cfg.dump(), false));
  EXPECT_EQ(got.config.arch, "qwen2");
  expect_same_weights(got, want);
}

TEST(LoaderHf, RejectsUnsupportedConfigs) {
  const LlamaConfig c = tiny_test_config();
  const ModelWeights w = make_synthetic_model(c, 15);
  expect_load_error(write_hf(w, hf_config(c, "GPTNeoXForCausalLM").dump(), false),
                    "unsupported architecture 'GPTNeoXForCausalLM'");
  nlohmann::json mistral = hf_config(c, "MistralForCausalLM");
  mistral["sliding_window"] = 64;
  expect_load_error(write_hf(w, mistral.dump(), false), "sliding-window");
  mistral["sliding_window"] = nullptr;
  EXPECT_NO_THROW(load_model_weights(write_hf(w, mistral.dump(), false)));
  nlohmann::json no_hidden = hf_config(c, "LlamaForCausalLM");
  no_hidden.erase("hidden_size");
  expect_load_error(write_hf(w, no_hidden.dump(), false), "hidden_size");
  nlohmann::json yarn = hf_config(c, "LlamaForCausalLM");
  yarn["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
  expect_load_error(write_hf(w, yarn.dump(), false), "yarn");
}

TEST(ModelRegistry, ResolvesPathsAndNames) {
  const std::string dir = test::temp_dir();
  EXPECT_EQ(resolve_model_path(dir), dir);
  try {
    resolve_model_path("no-such-model");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("no-such-model"));
    EXPECT_THAT(e.what(), HasSubstr("smollm2-135m"));
  }
  const char* old = std::getenv("QUAROT_CACHE");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("QUAROT_CACHE", dir.c_str(), 1);
  try {
    resolve_model_path("smollm2-135m");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("scripts/fetch_model.sh smollm2-135m"));
    EXPECT_THAT(e.what(), HasSubstr(dir + "/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"));
  }
  if (old != nullptr) ::setenv("QUAROT_CACHE", saved.c_str(), 1);
  else ::unsetenv("QUAROT_CACHE");
  EXPECT_EQ(known_model_names(), (std::vector<std::string>{"smollm2-135m"}));
}

TEST(InspectModel, CountsTensorsAndParameters) {
  const ModelWeights w = make_synthetic_model(tiny_test_config(), 16);
  const std::string path = write_gguf(testing::gguf_from_model(w, testing::GgufWeightType::kQ8_0));
  const ModelSummary s = inspect_model(path);
  EXPECT_EQ(s.format, "GGUF v3");
  EXPECT_EQ(s.architecture, "llama");
  EXPECT_EQ(s.parameter_count, w.parameter_count());
  EXPECT_EQ(s.fp32_bytes, static_cast<uint64_t>(w.parameter_count()) * 4);
  // 1 embedding + 7 matrices per layer are Q8_0; norms (2 per layer + output) are F32.
  EXPECT_EQ(s.tensors_by_dtype.at("Q8_0"), 1 + 7 * 2);
  EXPECT_EQ(s.tensors_by_dtype.at("F32"), 2 * 2 + 1);
  EXPECT_EQ(s.tensor_count, 20);
  EXPECT_EQ(s.config.hidden, 64);
  EXPECT_GT(s.file_bytes, 0u);
}

TEST(LoaderRealModel, DefaultModelLoadsWithExpectedConfig) {
  const std::string path = test::default_model_path();
  if (path.empty()) GTEST_SKIP() << "default model not fetched (scripts/fetch_model.sh)";
  const ModelSummary s = inspect_model(path);
  EXPECT_EQ(s.tensors_by_dtype.count("Q4_1"), 1u);
  const ModelWeights w = load_model_weights(path);
  const LlamaConfig& c = w.config;
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.hidden, 576);
  EXPECT_EQ(c.n_layers, 30);
  EXPECT_EQ(c.n_heads, 9);
  EXPECT_EQ(c.n_kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.intermediate, 1536);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_TRUE(w.lm_head.empty());
  EXPECT_EQ(s.parameter_count, w.parameter_count());
  EXPECT_NEAR(c.rope_theta, 100000.0f, 1e-3);

}

// Strong check of the Q/K un-permutation and of Q4_1/F32 dequantization: values of
// transformers' own GGUF import of this file at seeded random positions, committed in
// tests/reference/gguf_weights.json (tools/reference/make_fixtures.sh). Both sides
// compute d * q + m in FP32 from the same FP16 block constants; measured: all 640
// values bit-identical. The bound allows one FP32 rounding (2^-23 relative, for an
// FMA on another ISA), where a Q/K row in the wrong head or a wrong block constant is
// off by the size of the weights themselves.
TEST(LoaderRealModel, GgufWeightsMatchTransformersImport) {
  const std::string path = test::default_model_path();
  if (path.empty()) GTEST_SKIP() << "default model not fetched (scripts/fetch_model.sh)";
  const ModelWeights w = load_model_weights(path);
  const auto ref = nlohmann::json::parse(test::read_text(test::reference_fixture("gguf_weights.json")));
  auto ours = [&](const std::string& name) -> const Tensor& {
    if (name == "model.embed_tokens.weight") return w.tok_embeddings;
    if (name == "model.norm.weight") return w.output_norm;
    const std::string prefix = "model.layers.";
    const size_t dot = name.find('.', prefix.size());
    const LayerWeights& l = w.layers.at(std::stoul(name.substr(prefix.size(), dot - prefix.size())));
    const std::string leaf = name.substr(dot + 1);
    if (leaf == "self_attn.q_proj.weight") return l.wq;
    if (leaf == "self_attn.k_proj.weight") return l.wk;
    if (leaf == "self_attn.v_proj.weight") return l.wv;
    if (leaf == "self_attn.o_proj.weight") return l.wo;
    if (leaf == "mlp.gate_proj.weight") return l.w_gate;
    if (leaf == "mlp.up_proj.weight") return l.w_up;
    if (leaf == "mlp.down_proj.weight") return l.w_down;
    if (leaf == "input_layernorm.weight") return l.attn_norm;
    if (leaf == "post_attention_layernorm.weight") return l.ffn_norm;
    throw std::runtime_error("unmapped tensor " + name);
  };
  int values = 0;
  double worst = 0.0;
  for (const auto& t : ref["tensors"]) {
    const std::string name = t["name"].get<std::string>();
    const Tensor& got = ours(name);
    ASSERT_EQ(got.shape, t["shape"].get<std::vector<int64_t>>()) << name;
    const auto want = t["values"].get<std::vector<float>>();
    const auto index = t["index"].get<std::vector<std::vector<int64_t>>>();
    for (size_t i = 0; i < want.size(); ++i) {
      const float g = index[i].size() == 1 ? got.data[index[i][0]] : got.at(index[i][0], index[i][1]);
      const double diff = std::fabs(static_cast<double>(g) - want[i]);
      worst = std::max(worst, diff / std::max(1e-30, static_cast<double>(std::fabs(want[i]))));
      EXPECT_LE(diff, std::ldexp(std::fabs(want[i]), -23)) << name << " at " << nlohmann::json(index[i]).dump();
      ++values;
    }
  }
  std::printf("compared %d GGUF weight values with transformers' import: max relative difference %.3g\n", values, worst);
  EXPECT_EQ(values, 7 * 16 + 22 * 24);  // 7 norms, 22 matrices
  // transformers' reading of the GGUF metadata.
  const auto& hc = ref["config"];
  EXPECT_EQ(w.config.hidden, hc["hidden_size"].get<int64_t>());
  EXPECT_EQ(w.config.n_layers, hc["num_hidden_layers"].get<int64_t>());
  EXPECT_EQ(w.config.n_heads, hc["num_attention_heads"].get<int64_t>());
  EXPECT_EQ(w.config.n_kv_heads, hc["num_key_value_heads"].get<int64_t>());
  EXPECT_EQ(w.config.intermediate, hc["intermediate_size"].get<int64_t>());
  EXPECT_EQ(w.config.vocab_size, hc["vocab_size"].get<int64_t>());
  EXPECT_EQ(w.config.rope_theta, hc["rope_theta"].get<float>());
  EXPECT_EQ(w.config.rms_eps, hc["rms_norm_eps"].get<float>());
  EXPECT_EQ(w.config.tied_embeddings, hc["tie_word_embeddings"].get<bool>());
}

TEST(LoaderHf, ReadsTransformers5RopeParameters) {
  const LlamaConfig c = tiny_test_config();
  nlohmann::json cfg = hf_config(c, "LlamaForCausalLM");
  cfg.erase("rope_theta");
  cfg["rope_parameters"] = {{"rope_theta", 500000.0}, {"rope_type", "default"}};
  EXPECT_EQ(config_from_hf(cfg, "cfg", nullptr).rope_theta, 500000.0f);
  EXPECT_EQ(config_from_hf(cfg, "cfg", nullptr).rope_scaling.type, RopeScaling::Type::kNone);
  cfg["rope_parameters"] = {{"rope_theta", 500000.0}, {"rope_type", "llama3"}, {"factor", 8.0},
                            {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                            {"original_max_position_embeddings", 8192}};
  const LlamaConfig got = config_from_hf(cfg, "cfg", nullptr);
  EXPECT_EQ(got.rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_EQ(got.rope_scaling.factor, 8.0f);
  EXPECT_EQ(got.rope_scaling.original_max_position, 8192);
}

}  // namespace
}  // namespace quarot
