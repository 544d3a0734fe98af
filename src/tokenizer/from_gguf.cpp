// Tokenizer construction from GGUF metadata, mirroring what transformers builds
// from the same keys (integrations/gguf: byte-level files become GPT2Tokenizer with
// the pre-tokenizer regex chosen by tokenizer.ggml.pre; "llama" files become
// LlamaTokenizer: Metaspace(prepend "first", no split) + byte-fallback BPE). The
// result is expressed as an HF tokenizer.json and shares the JSON code path.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <tuple>
#include <unordered_map>

#include "common/error.h"
#include "io/gguf.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace quarot {
namespace {

using nlohmann::json;

constexpr int64_t kTokenTypeControl = 3;
constexpr int64_t kTokenTypeUserDefined = 4;

std::optional<SplitPattern> split_for_pre(const std::string& pre) {
  static const std::map<std::string, SplitPattern> table = {
      {"llama3", SplitPattern::kLlama3},    {"llama-v3", SplitPattern::kLlama3},  {"llama-bpe", SplitPattern::kLlama3},
      {"falcon3", SplitPattern::kLlama3},   {"falcon-h1", SplitPattern::kLlama3}, {"pixtral", SplitPattern::kLlama3},
      {"midm-2.0", SplitPattern::kLlama3},  {"lfm2", SplitPattern::kLlama3},      {"dbrx", SplitPattern::kLlama3},
      {"smaug-bpe", SplitPattern::kLlama3}, {"qwen2", SplitPattern::kQwen2},      {"deepseek-r1-qwen", SplitPattern::kQwen2},
      {"megrez", SplitPattern::kQwen2},
  };
  auto it = table.find(pre);
  if (it == table.end()) return std::nullopt;
  return it->second;
}

json added_token_json(int32_t id, const std::string& content, bool special) {
  return {{"id", id},          {"content", content}, {"single_word", false}, {"lstrip", false},
          {"rstrip", false},   {"normalized", false}, {"special", special}};
}

json template_post_processor(const std::optional<std::string>& bos, int32_t bos_id) {
  json single = json::array();
  json special = json::object();
  if (bos) {
    single.push_back({{"SpecialToken", {{"id", *bos}, {"type_id", 0}}}});
    special[*bos] = {{"id", *bos}, {"ids", {bos_id}}, {"tokens", {*bos}}};
  }
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  json pair = single;
  pair.push_back({{"Sequence", {{"id", "B"}, {"type_id", 1}}}});
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", special}};
}

// transformers' generate_merges: every split of every token into two tokens, best
// score first; ties by longer left part, then longer right part, then vocabulary order.
std::vector<std::pair<std::string, std::string>> merges_from_scores(const std::vector<std::string>& tokens,
                                                                    const std::vector<double>& scores) {
  std::unordered_map<std::string, int64_t> id_of;
  for (size_t i = 0; i < tokens.size(); ++i) id_of[tokens[i]] = static_cast<int64_t>(i);
  struct Candidate {
    std::string left, right;
    double score;
    size_t left_chars, right_chars;
  };
  std::vector<Candidate> all;
  auto char_count = [](std::string_view s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  };
  // Walk unique tokens in first-insertion order of a Python dict built from the list.
  std::unordered_map<std::string, size_t> first_index;
  std::vector<size_t> order;
  for (size_t i = 0; i < tokens.size(); ++i)
    if (first_index.emplace(tokens[i], i).second) order.push_back(i);
  for (size_t i : order) {
    const std::string& token = tokens[i];
    const double score = scores[i];
    std::vector<Candidate> local;
    for (size_t cut = 1; cut < token.size(); ++cut) {
      if ((static_cast<unsigned char>(token[cut]) & 0xC0) == 0x80) continue;  // inside a character
      std::string left = token.substr(0, cut), right = token.substr(cut);
      if (id_of.count(left) && id_of.count(right)) local.push_back({left, right, score, char_count(left), char_count(right)});
    }
    std::stable_sort(local.begin(), local.end(), [&](const Candidate& a, const Candidate& b) {
      return std::pair(id_of[a.left], id_of[a.right]) < std::pair(id_of[b.left], id_of[b.right]);
    });
    for (auto& c : local) all.push_back(std::move(c));
  }
  std::stable_sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& b) {
    return std::tuple(a.score, a.left_chars, a.right_chars) > std::tuple(b.score, b.left_chars, b.right_chars);
  });
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(all.size());
  for (auto& c : all) merges.emplace_back(std::move(c.left), std::move(c.right));
  return merges;
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GgufFile& gguf) {
  const std::string& path = gguf.path();
  const std::string& source = path;
  auto need = [&](const char* key) {
    if (!gguf.has(key)) fail("{}: {} missing", source, key);
  };
  need("tokenizer.ggml.model");
  need("tokenizer.ggml.tokens");
  const std::string model_type = gguf.get_string("tokenizer.ggml.model");
  const std::string pre = gguf.get_string_or("tokenizer.ggml.pre", "default");
  std::vector<std::string> tokens = gguf.get_string_array("tokenizer.ggml.tokens");
  if (tokens.empty()) fail("{}: tokenizer.ggml.tokens is empty", source);
  std::vector<int64_t> token_types;
  if (gguf.has("tokenizer.ggml.token_type")) {
    token_types = gguf.get_int_array("tokenizer.ggml.token_type");
    if (token_types.size() != tokens.size())
      fail("{}: tokenizer.ggml.token_type has {} entries for {} tokens", source, token_types.size(), tokens.size());
  }
  auto special_token = [&](const char* key) -> std::optional<std::string> {
    if (!gguf.has(key)) return std::nullopt;
    const int64_t id = gguf.get_int(key);
    if (id < 0 || id >= static_cast<int64_t>(tokens.size()))
      fail("{}: {} = {} is outside the vocabulary of {} tokens", source, key, id, tokens.size());
    return tokens[id];
  };

  json doc = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}};
  json model = {{"type", "BPE"},       {"dropout", nullptr},          {"unk_token", nullptr},
                {"continuing_subword_prefix", ""}, {"end_of_word_suffix", ""}, {"fuse_unk", false},
                {"byte_fallback", false}, {"ignore_merges", false}};
  TokenizerConfig config;
  config.bos_token = special_token("tokenizer.ggml.bos_token_id");
  config.eos_token = special_token("tokenizer.ggml.eos_token_id");
  config.chat_template = gguf.get_string_or("tokenizer.chat_template", "");
  std::vector<std::pair<std::string, std::string>> merges;
  json added = json::array();

  if (model_type == "gpt2") {
    // Tokens a converter wrote as raw text are respelled in the byte alphabet.
    for (auto& t : tokens)
      if (!byte_level::is_byte_alphabet(t)) t = byte_level::encode_bytes(t);
    need("tokenizer.ggml.merges");
    for (const std::string& m : gguf.get_string_array("tokenizer.ggml.merges")) {
      const size_t space = m.find(' ');
      if (space == std::string::npos) fail("{}: tokenizer.ggml.merges entry '{}' has no space", source, m);
      merges.emplace_back(m.substr(0, space), m.substr(space + 1));
    }
    config.add_bos_token = gguf.get_bool_or("tokenizer.ggml.add_bos_token", false);
    const auto split = split_for_pre(pre);
    if (split) {
      doc["pre_tokenizer"] = {
          {"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", split_pattern_regex(*split)}}}, {"behavior", "Isolated"}, {"invert", false}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
    } else {
      doc["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
    }
    doc["normalizer"] = nullptr;
    doc["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  } else if (model_type == "llama") {
    if (gguf.has("tokenizer.ggml.merges")) {
      for (const std::string& m : gguf.get_string_array("tokenizer.ggml.merges")) {
        const size_t space = m.find(' ');
        if (space == std::string::npos) fail("{}: tokenizer.ggml.merges entry '{}' has no space", source, m);
        merges.emplace_back(m.substr(0, space), m.substr(space + 1));
      }
    } else {
      need("tokenizer.ggml.scores");
      const std::vector<double> scores = gguf.get_float_array("tokenizer.ggml.scores");
      if (scores.size() != tokens.size())
        fail("{}: tokenizer.ggml.scores has {} entries for {} tokens", source, scores.size(), tokens.size());
      merges = merges_from_scores(tokens, scores);
    }
    // Sentencepiece files without the flag get BOS, as in llama.cpp and transformers.
    config.add_bos_token = gguf.get_bool_or("tokenizer.ggml.add_bos_token", true);
    auto unk = special_token("tokenizer.ggml.unknown_token_id");
    if (!unk && std::find(tokens.begin(), tokens.end(), "<unk>") != tokens.end()) unk = "<unk>";
    if (unk) model["unk_token"] = *unk;
    model["fuse_unk"] = true;
    model["byte_fallback"] = true;
    doc["normalizer"] = nullptr;
    doc["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "first"}, {"split", false}};
    doc["decoder"] = {{"type", "Sequence"},
                      {"decoders",
                       {{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
                        {{"type", "ByteFallback"}},
                        {{"type", "Fuse"}},
                        {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
  } else {
    fail("{}: unsupported tokenizer.ggml.model '{}' (supported: gpt2, llama)", source, model_type);
  }

  json vocab = json::object();
  for (size_t id = 0; id < tokens.size(); ++id) vocab[tokens[id]] = static_cast<int64_t>(id);
  if (vocab.size() != tokens.size()) {
    // Duplicate spellings: HF keeps the last id for a token; other ids stay unreachable,
    // which tokenizer.json cannot express.
    fail("{}: tokenizer.ggml.tokens holds duplicate tokens ({} unique of {})", source, vocab.size(), tokens.size());
  }
  model["vocab"] = std::move(vocab);
  json merges_json = json::array();
  for (const auto& [l, r] : merges) merges_json.push_back(json::array({l, r}));
  model["merges"] = std::move(merges_json);

  for (size_t id = 0; id < token_types.size(); ++id) {
    // Control tokens become special added tokens (a byte-level control token spelled
    // outside the byte alphabet is a converter mislabel, skipped as transformers does);
    // user-defined tokens become plain added tokens.
    if (token_types[id] == kTokenTypeControl) {
      if (model_type == "gpt2" && !byte_level::is_byte_alphabet(tokens[id])) continue;
      added.push_back(added_token_json(static_cast<int32_t>(id), tokens[id], true));
    } else if (token_types[id] == kTokenTypeUserDefined) {
      added.push_back(added_token_json(static_cast<int32_t>(id), tokens[id], false));
    }
  }
  doc["added_tokens"] = std::move(added);
  const bool add_bos = *config.add_bos_token && config.bos_token;
  doc["post_processor"] = template_post_processor(add_bos ? config.bos_token : std::nullopt,
                                                  add_bos ? static_cast<int32_t>(gguf.get_int("tokenizer.ggml.bos_token_id")) : -1);
  doc["model"] = std::move(model);
  return make_bpe_tokenizer(std::move(doc), std::move(config), source);
}

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& model_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(model_path, ec)) {
    const fs::path json_path = fs::path(model_path) / "tokenizer.json";
    if (!fs::is_regular_file(json_path, ec)) fail("{}: no tokenizer.json in this model directory", model_path);
    return from_hf_json_file(json_path.string());
  }
  if (!fs::exists(model_path, ec)) fail("{}: no such file or directory", model_path);
  if (fs::path(model_path).extension() == ".gguf") {
    GgufFile gguf(model_path);
    return from_gguf(gguf);
  }
  if (fs::path(model_path).filename() == "tokenizer.json") return from_hf_json_file(model_path);
  fail("{}: not a .gguf file or a model directory with tokenizer.json", model_path);
}

}  // namespace quarot
