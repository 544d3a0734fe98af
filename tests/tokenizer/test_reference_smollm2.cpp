// Real-model checks against HF transformers' tokenizer for the default model
// (ids produced by tools/reference/check_tokenizer.py). Skipped when the model or
// the reference files are absent.
#include <gtest/gtest.h>

#include <chrono>
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

TEST(TokenizerReference, SmolLM2HfJsonMatchesHfOnTrickyStrings) {
  const std::string json_path = test::reference_file("smollm2-tokenizer.json");
  if (json_path.empty()) GTEST_SKIP() << "reference tokenizer.json absent (run tools/reference/check_tokenizer.py)";
  const auto tok = Tokenizer::from_hf_json_file(json_path);
  expect_cases_match(*tok, "tokenizer.json");
  const std::string model = test::default_model_path();
  if (!model.empty()) EXPECT_EQ(tok->to_hf_json(), Tokenizer::from_hf_json_string(tok->to_hf_json(), "copy")->to_hf_json());
}

// The whole WikiText-2 test file, as the perplexity protocol tokenizes it. Writes our
// ids beside HF's so check_tokenizer.py can report on them too.
TEST(TokenizerReference, WholeWikitextMatchesHf) {
  const std::string model = test::default_model_path();
  const std::string hf_ids_path = test::reference_file("smollm2-wikitext2-test-ids.txt");
  const std::string text_path = "/work/shared/data/wikitext-2-raw-v1.test.txt";
  if (model.empty() || hf_ids_path.empty() || !std::ifstream(text_path))
    GTEST_SKIP() << "model, HF ids or WikiText-2 test text absent";
  const auto tok = Tokenizer::load(model);
  const std::string text = read_file(text_path);
  Ids expected;
  {
    std::ifstream in(hf_ids_path);
    for (int32_t id; in >> id;) expected.push_back(id);
  }
  const auto start = std::chrono::steady_clock::now();
  const Ids ids = tok->encode(text, tok->add_bos_default());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  size_t mismatches = 0, first = std::string::npos;
  for (size_t i = 0; i < std::max(ids.size(), expected.size()); ++i) {
    if (i >= ids.size() || i >= expected.size() || ids[i] != expected[i]) {
      ++mismatches;
      if (first == std::string::npos) first = i;
    }
  }
  std::printf("WikiText-2 test: %zu bytes -> %zu tokens (HF %zu), %zu mismatches, encoded in %.3f s (%.2f MB/s)\n",
              text.size(), ids.size(), expected.size(), mismatches, seconds, text.size() / seconds / 1e6);
  {
    std::ofstream out(std::filesystem::path(hf_ids_path).parent_path() / "quarot-wikitext2-test-ids.txt");
    for (int32_t id : ids) out << id << '\n';
  }
  EXPECT_EQ(mismatches, 0u) << "first mismatch at token " << first;
  EXPECT_EQ(ids.size(), expected.size());
  EXPECT_EQ(tok->decode(ids), text);
}

}  // namespace
}  // namespace quarot

namespace quarot {
namespace {

// The other pre-tokenizers (Llama 3 / Qwen2 split regexes, Digits + ByteLevel) on the
// SmolLM2 vocabulary, against HF tokenizers' own regex engine.
TEST(TokenizerReference, PreTokenizerVariants) {
  int checked = 0;
  for (const char* name : {"llama3", "qwen2", "digits"}) {
    const std::string path = test::reference_file(std::string("smollm2-variant-") + name + ".json");
    if (path.empty()) continue;
    const auto doc = nlohmann::json::parse(read_file(path));
    const auto tok = Tokenizer::from_hf_json_string(doc["tokenizer"].dump(), path);
    for (const auto& c : doc["cases"]) {
      const std::string text = c["text"].get<std::string>();
      EXPECT_EQ(tok->encode(text, false), c["ids"].get<Ids>()) << name << ": " << text.substr(0, 80);
    }
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << "variant reference files absent (run tools/reference/check_tokenizer.py)";
}

}  // namespace
}  // namespace quarot
