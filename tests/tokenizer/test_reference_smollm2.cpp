// Real-model checks against HF transformers' tokenizer for the default model, from
// fixtures committed under tests/ (tools/reference/make_fixtures.sh). Skipped only
// when the default model (or the WikiText-2 text) is absent, which scripts/test.sh
// counts as a failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_support.h"
#include "tokenizer/tokenizer.h"

namespace quarot {
namespace {

using Ids = std::vector<int32_t>;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json load_cases() {
  return nlohmann::json::parse(read_file(std::string(QUAROT_SOURCE_DIR) + "/tests/tokenizer/data/smollm2_cases.json"));
}

void expect_cases_match(const Tokenizer& tok, const std::string& label) {
  const auto cases = load_cases()["cases"];
  ASSERT_GE(cases.size(), 20u);
  for (const auto& c : cases) {
    const std::string text = c["text"].get<std::string>();
    const Ids expected = c["ids"].get<Ids>();
    const Ids ids = tok.encode(text, tok.add_bos_default());
    EXPECT_EQ(ids, expected) << label << ": " << text.substr(0, 80);
    EXPECT_EQ(tok.decode(ids), text) << label << ": byte-level BPE is lossless";
  }
}

TEST(TokenizerReference, SmolLM2GgufMatchesHfOnTrickyStrings) {
  const std::string model = test::default_model_path();
  if (model.empty()) GTEST_SKIP() << "default model not fetched";
  const auto tok = Tokenizer::load(model);
  EXPECT_EQ(tok->describe(), "byte-level BPE (gpt2 pre-tokenizer), 49152 tokens, 48900 merges");
  EXPECT_FALSE(tok->add_bos_default());
  EXPECT_EQ(tok->token_text(tok->bos_id()), "<|im_start|>");
  EXPECT_EQ(tok->token_text(tok->eos_id()), "<|im_end|>");
  EXPECT_NE(tok->chat_template().find("<|im_start|>"), std::string::npos);
  expect_cases_match(*tok, "gguf");
}

// FNV-1a 64 as 16 hex digits: how the fixtures commit large id lists (the same
// function as tools/reference/make_fixtures.py).
std::string fnv1a64_hex(const std::string& bytes) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char b : bytes) {
    h ^= b;
    h *= 0x100000001B3ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

// Over a tokenizer.json's model: 'token\n' for ids 0..V-1, then 'left right\n' per merge.
std::string vocab_merges_fingerprint(const nlohmann::json& model) {
  std::vector<std::string> by_id(model["vocab"].size());
  for (const auto& [token, id] : model["vocab"].items()) by_id.at(id.get<size_t>()) = token;
  std::string all;
  for (const auto& t : by_id) all += t + "\n";
  for (const auto& m : model["merges"])
    all += (m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>()) + "\n";
  return fnv1a64_hex(all);
}

// HF's own tokenizer.json for the default model (normalizer, pre-tokenizer, added
// tokens, post-processor and decoder exactly as transformers writes them), committed
// without its 2 MB vocab and merges: those come from the GGUF after a fingerprint
// check proves them identical to HF's.
nlohmann::json hf_tokenizer_json(const Tokenizer& from_gguf) {
  const auto fixture = nlohmann::json::parse(test::read_text(test::reference_fixture("tokenizer_hf.json")));
  const auto ours = nlohmann::json::parse(from_gguf.to_hf_json());
  const auto& want = fixture["vocab_merges"];
  EXPECT_EQ(ours["model"]["vocab"].size(), want["vocab"].get<size_t>());
  EXPECT_EQ(ours["model"]["merges"].size(), want["merges"].get<size_t>());
  EXPECT_EQ(vocab_merges_fingerprint(ours["model"]), want["fnv1a64"].get<std::string>())
      << "the GGUF's vocabulary or merges differ from transformers' import of them";
  nlohmann::json tok = fixture["tokenizer"];
  tok["model"]["vocab"] = ours["model"]["vocab"];
  tok["model"]["merges"] = ours["model"]["merges"];
  return tok;
}

TEST(TokenizerReference, SmolLM2HfJsonMatchesHfOnTrickyStrings) {
  const std::string model = test::default_model_path();
  if (model.empty()) GTEST_SKIP() << "default model not fetched";
  const auto gguf_tok = Tokenizer::load(model);
  const auto tok = Tokenizer::from_hf_json_string(hf_tokenizer_json(*gguf_tok).dump(), "tokenizer_hf.json");
  expect_cases_match(*tok, "tokenizer.json");
  EXPECT_EQ(tok->to_hf_json(), Tokenizer::from_hf_json_string(tok->to_hf_json(), "copy")->to_hf_json());
}

// The whole WikiText-2 test file, as the perplexity protocol tokenizes it, against
// HF's ids committed as FNV-1a hashes of 4096-id chunks (tests/reference/wikitext2_test_ids.json).
TEST(TokenizerReference, WholeWikitextMatchesHf) {
  const std::string model = test::default_model_path();
  const std::string text_path = test::data_file("wikitext-2-raw-v1.test.txt");
  if (model.empty() || text_path.empty()) GTEST_SKIP() << "default model or WikiText-2 test text ($QUAROT_DATA) absent";
  const auto ref = nlohmann::json::parse(test::read_text(test::reference_fixture("wikitext2_test_ids.json")));
  const auto tok = Tokenizer::load(model);
  const std::string text = read_file(text_path);
  ASSERT_EQ(text.size(), ref["text_bytes"].get<size_t>()) << text_path << " is not the text the fixture was made from";
  const auto start = std::chrono::steady_clock::now();
  const Ids ids = tok->encode(text, tok->add_bos_default());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("WikiText-2 test: %zu bytes -> %zu tokens (HF %zu), encoded in %.3f s (%.2f MB/s)\n", text.size(),
              ids.size(), ref["n_ids"].get<size_t>(), seconds, text.size() / seconds / 1e6);
  EXPECT_EQ(ids.size(), ref["n_ids"].get<size_t>());
  const size_t chunk = ref["chunk"].get<size_t>();
  const auto& chunks = ref["chunks"];
  size_t bad = 0;
  for (size_t c = 0; c < chunks.size(); ++c) {
    std::string lines;
    for (size_t i = c * chunk; i < std::min(ids.size(), (c + 1) * chunk); ++i) lines += std::to_string(ids[i]) + "\n";
    if (chunks[c].get<std::string>() != fnv1a64_hex(lines)) {
      if (bad == 0) ADD_FAILURE() << "first differing chunk: ids " << c * chunk << ".." << (c + 1) * chunk - 1;
      ++bad;
    }
  }
  EXPECT_EQ(bad, 0u) << "of " << chunks.size() << " chunks";
  EXPECT_EQ(tok->decode(ids), text);
}

// The other pre-tokenizers (Llama 3 / Qwen2 split regexes, Digits + ByteLevel) on the
// SmolLM2 vocabulary, against HF tokenizers' own regex engine.
TEST(TokenizerReference, PreTokenizerVariants) {
  const std::string model = test::default_model_path();
  if (model.empty()) GTEST_SKIP() << "default model not fetched";
  const auto gguf_tok = Tokenizer::load(model);
  nlohmann::json base = hf_tokenizer_json(*gguf_tok);
  const auto doc = nlohmann::json::parse(test::read_text(test::reference_fixture("tokenizer_variants.json")));
  int checked = 0;
  for (const auto& [name, variant] : doc["variants"].items()) {
    base["pre_tokenizer"] = variant["pre_tokenizer"];
    const auto tok = Tokenizer::from_hf_json_string(base.dump(), "variant " + name);
    for (const auto& c : variant["cases"]) {
      const std::string text = c["text"].get<std::string>();
      EXPECT_EQ(tok->encode(text, false), c["ids"].get<Ids>()) << name << ": " << text.substr(0, 80);
    }
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

}  // namespace
}  // namespace quarot
