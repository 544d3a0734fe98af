// Writes the seed corpora committed under fuzz/corpus/<target>/: small valid inputs
// of every reader, so the fuzzers start from files that parse.
//   make_fuzz_seeds <corpus_root>        (scripts/run_fuzz.sh --reseed runs it)
#include <bzlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "fuzz_input_file.h"
#include "fuzz_models.h"
#include "io/gguf_builder.h"
#include "io/gguf_model_builder.h"
#include "io/safetensors.h"
#include "quant/quantized_model.h"
#include "quant/rtn.h"
#include "tokenizer/byte_level.h"

namespace {

std::string root;

void put(const std::string& target, const std::string& name, const std::string& bytes) {
  std::filesystem::create_directories(root + "/" + target);
  std::ofstream(root + "/" + target + "/" + name, std::ios::binary) << bytes;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void put_builder(const std::string& target, const std::string& name, const quarot::testing::GgufBuilder& b) {
  const auto bytes = b.bytes();
  put(target, name, std::string(bytes.begin(), bytes.end()));
}

std::string bz2(const std::string& text) {
  std::vector<char> out(text.size() * 2 + 600);
  unsigned int len = static_cast<unsigned int>(out.size());
  if (BZ2_bzBuffToBuffCompress(out.data(), &len, const_cast<char*>(text.data()), static_cast<unsigned int>(text.size()),
                               9, 0, 0) != BZ_OK)
    std::abort();
  return std::string(out.data(), len);
}

const char* kTwoTasks =
    "Cooking: A man cracks an egg. he\n2\nflies away.\nsings loudly.\npours it into a bowl.\neats the shell.\n"
    "Running: A woman ties her shoes. she\n0\nstarts to run.\nbecomes a tree.\nreads a book upside down.\nmelts.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus_root>\n", argv[0]);
    return 2;
  }
  root = argv[1];
  using quarot::testing::GgufBuilder;
  const std::string split(quarot::fuzz::kSplit);
  std::vector<float> v(64);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.25f * static_cast<float>(i) - 8.0f;

  // GGUF container.
  GgufBuilder a;
  a.add_string("general.architecture", "llama")
      .add_u32("llama.block_count", 1)
      .add_f32("llama.rope.freq_base", 10000.0f)
      .add_bool("tokenizer.ggml.add_bos_token", true)
      .add_string_array("tokenizer.ggml.tokens", {"a", "b", "<s>"})
      .add_i32_array("tokenizer.ggml.token_type", {1, 1, 3})
      .add_tensor_f32("token_embd.weight", {2, 32}, v)
      .add_tensor_f16("output_norm.weight", {32}, std::vector<float>(v.begin(), v.begin() + 32))
      .add_tensor_q8_0("blk.0.attn_q.weight", {2, 32}, v);
  put_builder("gguf", "seed_model.gguf", a);
  GgufBuilder b;
  b.version(2).alignment(64).add_u64("u64", 1).add_i64("i64", -1).add_f64("f64", 0.5);
  b.add_tensor_raw("q4_1", {32}, quarot::testing::kGgmlQ4_1, std::vector<uint8_t>(20, 0x11));
  b.add_tensor_raw("q4_k", {256}, quarot::testing::kGgmlQ4_K, std::vector<uint8_t>(144, 0x21));
  b.add_tensor_raw("q6_k", {256}, quarot::testing::kGgmlQ6_K, std::vector<uint8_t>(210, 0x31));
  put_builder("gguf", "seed_v2_quants.gguf", b);

  // safetensors container.
  {
    std::vector<quarot::SafetensorsEntry> entries;
    quarot::Tensor t({2, 4});
    for (int i = 0; i < 8; ++i) t.data[i] = static_cast<float>(i);
    entries.push_back(quarot::safetensors_entry_f32("w", t));
    entries.push_back({"bf16", quarot::DType::kBF16, {2}, {0x80, 0x3f, 0x00, 0xc0}});
    entries.push_back({"u8", quarot::DType::kU8, {3}, {1, 2, 3}});
    const std::string tmp = root + "/.seed.safetensors";
    quarot::write_safetensors(tmp, entries, {{"format", "pt"}});
    put("safetensors", "seed.safetensors", slurp(tmp));
    std::filesystem::remove(tmp);
  }

  // GGUF model loader: the micro model in F32 and F16, Llama (Q/K permuted) and Qwen2 (biases).
  const quarot::ModelWeights micro = quarot::make_synthetic_model(quarot::fuzz::micro_config(), 3);
  put_builder("gguf_model", "micro_f32.gguf", quarot::testing::gguf_from_model(micro));
  put_builder("gguf_model", "micro_f16.gguf", quarot::testing::gguf_from_model(micro, quarot::testing::GgufWeightType::kF16));
  {
    quarot::LlamaConfig c = quarot::fuzz::micro_config();
    c.arch = "qwen2";
    c.qkv_bias = true;
    c.tied_embeddings = false;
    put_builder("gguf_model", "micro_qwen2.gguf", quarot::testing::gguf_from_model(quarot::make_synthetic_model(c, 4)));
  }

  // Quantized model file: RTN 4-bit symmetric per row, asymmetric groups with F16 FP tensors,
  // and 2/3-bit rows (format 3's dense bit streams).
  for (int variant : {0, 1, 2}) {
    const bool sym = variant != 1;
    quarot::WeightQuantSpec spec;
    spec.symmetric = sym;
    spec.group = sym ? 0 : 4;
    spec.clip_search = false;
    std::map<std::string, quarot::QuantizedMatrix> q;
    const auto& l = micro.layers[0];
    const std::map<std::string, const quarot::Tensor*> linears = {
        {"layers.0.wq", &l.wq}, {"layers.0.wk", &l.wk}, {"layers.0.wv", &l.wv}, {"layers.0.wo", &l.wo},
        {"layers.0.w_gate", &l.w_gate}, {"layers.0.w_up", &l.w_up}, {"layers.0.w_down", &l.w_down}};
    int i = 0;
    for (const auto& [name, t] : linears) {
      spec.bits = variant == 2 ? 2 + i++ % 2 : 4;
      q[name] = quarot::quantize_rtn(*t, spec, name);
    }
    quarot::RuntimeRecipe recipe;
    recipe.act.bits = 4;
    recipe.k_cache.bits = recipe.v_cache.bits = 4;
    quarot::QuantizedModelWriteOptions o;
    o.fp16_tensors = !sym;
    const std::string tmp = root + "/.seed.safetensors";
    quarot::save_quantized_model(tmp, micro, q, recipe, {{"scheme", "W4A4KV4"}},
                                 quarot::fuzz::byte_level_tokenizer_json().dump(), o);
    put("quantized_model",
        variant == 0 ? "micro_w4_sym.safetensors"
                     : variant == 1 ? "micro_w4_asym_g4_f16.safetensors" : "micro_w2w3_dense.safetensors",
        slurp(tmp));
    std::filesystem::remove(tmp);
  }

  // Quantized model file with codebook (CLAQ) linears: mixed 2/3/4-bit columns with
  // outliers in wq, 2-bit without outliers in w_down (format version 2).
  {
    std::map<std::string, quarot::WeightEncoding> cb;
    const auto& l = micro.layers[0];
    int seed = 0;
    for (const auto& [name, t] : std::map<std::string, const quarot::Tensor*>{{"layers.0.wq", &l.wq},
                                                                              {"layers.0.w_down", &l.w_down}}) {
      const int64_t rows = t->shape[0], cols = t->shape[1];
      std::vector<uint8_t> bits(cols);
      std::vector<float> centroids;
      for (int64_t c = 0; c < cols; ++c) {
        bits[c] = static_cast<uint8_t>(name == "layers.0.wq" ? 2 + (c + seed) % 3 : 2);
        for (int i = 0; i < (1 << bits[c]); ++i) centroids.push_back(0.01f * static_cast<float>(i - c % 5));
      }
      std::vector<uint8_t> idx(rows * cols);
      for (int64_t i = 0; i < rows * cols; ++i) idx[i] = static_cast<uint8_t>((i * 7 + seed) % (1 << bits[i % cols]));
      std::vector<quarot::CodebookOutlier> outliers;
      if (name == "layers.0.wq") outliers = {{0, 0, 0.5f}, {0, static_cast<int32_t>(cols - 1), -0.25f},
                                              {static_cast<int32_t>(rows - 1), 1, 1.0f}};
      cb[name] = quarot::make_codebook_weight(rows, cols, bits, centroids, idx, outliers);
      ++seed;
    }
    const std::string tmp = root + "/.seed.safetensors";
    quarot::save_quantized_model(tmp, micro, {}, quarot::RuntimeRecipe{}, {{"scheme", "W2A16"}},
                                 quarot::fuzz::byte_level_tokenizer_json().dump(), {}, cb);
    put("quantized_model", "micro_claq.safetensors", slurp(tmp));
    std::filesystem::remove(tmp);
  }

  // tokenizer.json (+ kSplit + tokenizer_config.json).
  const std::string tok_json = quarot::fuzz::byte_level_tokenizer_json().dump();
  put("hf_tokenizer", "byte_level.json", tok_json);
  put("hf_tokenizer", "byte_level_with_config.json", tok_json + split + quarot::fuzz::tokenizer_config_json().dump());
  {
    nlohmann::json spm = quarot::fuzz::byte_level_tokenizer_json();
    spm["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xe2\x96\x81"}, {"prepend_scheme", "first"},
                            {"split", false}};
    spm["normalizer"] = {{"type", "Sequence"},
                         {"normalizers", {{{"type", "Prepend"}, {"prepend", "\xe2\x96\x81"}},
                                          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xe2\x96\x81"}}}}};
    spm["model"]["byte_fallback"] = true;
    put("hf_tokenizer", "metaspace_variant.json", spm.dump());
  }

  // GGUF tokenizer metadata: a byte-level (gpt2) vocabulary and a SentencePiece (llama) one.
  {
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    for (int c = 0; c < 256; ++c) {
      tokens.push_back(quarot::byte_level::byte_to_char(static_cast<uint8_t>(c)));
      types.push_back(1);
    }
    const std::string sp = quarot::byte_level::byte_to_char(' ');
    for (const std::string& t : {sp + "t", std::string("he"), sp + "the"}) {
      tokens.push_back(t);
      types.push_back(1);
    }
    tokens.push_back("<|im_start|>");
    tokens.push_back("<|im_end|>");
    types.push_back(3);
    types.push_back(3);
    GgufBuilder g;
    g.add_string("general.architecture", "llama")
        .add_string("tokenizer.ggml.model", "gpt2")
        .add_string("tokenizer.ggml.pre", "smollm")
        .add_string_array("tokenizer.ggml.tokens", tokens)
        .add_i32_array("tokenizer.ggml.token_type", types)
        .add_string_array("tokenizer.ggml.merges", {sp + " t", "h e", sp + "t he"})
        .add_u32("tokenizer.ggml.bos_token_id", 259)
        .add_u32("tokenizer.ggml.eos_token_id", 260)
        .add_bool("tokenizer.ggml.add_bos_token", false)
        .add_string("tokenizer.chat_template", "{{ messages }}");
    put_builder("gguf_tokenizer", "gpt2.gguf", g);
    GgufBuilder s;
    std::vector<std::string> spm_tokens = {"<unk>", "<s>", "</s>"};
    std::vector<int32_t> spm_types = {2, 3, 3};
    std::vector<float> scores = {0, 0, 0};
    for (int c = 0; c < 256; ++c) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "<0x%02X>", c);
      spm_tokens.push_back(hex);
      spm_types.push_back(6);
      scores.push_back(0);
    }
    for (const std::string& t : {"\xe2\x96\x81", "a", "b", "\xe2\x96\x81" "a", "ab", "\xe2\x96\x81" "ab"}) {
      spm_tokens.push_back(t);
      spm_types.push_back(1);
      scores.push_back(-static_cast<float>(spm_tokens.size()));
    }
    s.add_string("general.architecture", "llama")
        .add_string("tokenizer.ggml.model", "llama")
        .add_string_array("tokenizer.ggml.tokens", spm_tokens)
        .add_i32_array("tokenizer.ggml.token_type", spm_types)
        .add_f32_array("tokenizer.ggml.scores", scores)
        .add_u32("tokenizer.ggml.bos_token_id", 1)
        .add_u32("tokenizer.ggml.eos_token_id", 2)
        .add_u32("tokenizer.ggml.unknown_token_id", 0);
    put_builder("gguf_tokenizer", "llama_spm.gguf", s);
  }

  // HF checkpoint: config.json alone (single file) and with a shard index.
  {
    const std::string config = quarot::fuzz::hf_config_json(quarot::fuzz::micro_config()).dump(1);
    put("hf_checkpoint", "config_single_file.json", config);
    nlohmann::json index;
    index["metadata"] = {{"total_size", 0}};
    for (const auto& e : quarot::fuzz::hf_entries(micro)) index["weight_map"][e.name] = "model-00001-of-00001.safetensors";
    put("hf_checkpoint", "config_with_index.json", config + split + index.dump(1));
    nlohmann::json rope = quarot::fuzz::hf_config_json(quarot::fuzz::micro_config());
    rope["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                            {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 16}};
    put("hf_checkpoint", "config_llama3_rope.json", rope.dump());
  }

  // HellaSwag: plain and bzip2.
  put("hellaswag", "two_tasks.txt", kTwoTasks);
  put("hellaswag", "two_tasks.txt.bz2", bz2(kTwoTasks));

  // Calibration text: 3 parameter bytes (windows, length, seed), then the text.
  put("calibration_text", "wikitext_like.txt",
      std::string("\x03\x08\x2a", 3) + " = Robert Boulter = \n\n Robert Boulter is an English film , television and "
                                         "theatre actor . He had a guest @-@ starring role in 2000 .\n");
  put("calibration_text", "unicode.txt", std::string("\x02\x04\x07", 3) + "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 <|endoftext|> the the");
  return 0;
}
