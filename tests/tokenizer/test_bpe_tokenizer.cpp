// BPE merging, byte fallback, added tokens, GGUF and tokenizer.json loading, the
// JSON round trip, and bad input, on tiny hand-made vocabularies whose expected
// ids are worked out by hand in the comments.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/gguf.h"
#include "io/gguf_builder.h"
#include "test_support.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer.h"

namespace quarot {
namespace {

using nlohmann::json;
using Ids = std::vector<int32_t>;

json bpe_json(const std::vector<std::string>& vocab, const std::vector<std::pair<std::string, std::string>>& merges) {
  json v = json::object();
  for (size_t i = 0; i < vocab.size(); ++i) v[vocab[i]] = i;
  json m = json::array();
  for (const auto& [l, r] : merges) m.push_back(l + " " + r);
  return {{"version", "1.0"},
          {"added_tokens", json::array()},
          {"normalizer", nullptr},
          {"pre_tokenizer", nullptr},
          {"post_processor", nullptr},
          {"decoder", nullptr},
          {"model", {{"type", "BPE"}, {"vocab", v}, {"merges", m}}}};
}

std::unique_ptr<Tokenizer> from_json(const json& j) { return Tokenizer::from_hf_json_string(j.dump(), "toy.json"); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(Bpe, MergesLowestRankFirst) {
  // ids: a0 b1 c2 ab3 bc4 abc5
  const std::vector<std::string> vocab{"a", "b", "c", "ab", "bc", "abc"};
  // (b,c) outranks (a,b): a b c -> a bc -> abc
  EXPECT_EQ(from_json(bpe_json(vocab, {{"b", "c"}, {"a", "b"}, {"a", "bc"}}))->encode("abc", false), (Ids{5}));
  // (a,b) first and no (ab,c) merge: a b c -> ab c, even though "abc" is a token
  EXPECT_EQ(from_json(bpe_json(vocab, {{"a", "b"}, {"b", "c"}, {"a", "bc"}}))->encode("abc", false), (Ids{3, 2}));
  // ignore_merges emits a whole-word token directly
  json j = bpe_json(vocab, {{"a", "b"}, {"b", "c"}, {"a", "bc"}});
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(from_json(j)->encode("abc", false), (Ids{5}));
}

TEST(Bpe, EqualRanksMergeLeftmostFirst) {
  // "aaa" with merge (a,a): the leftmost pair merges, leaving aa a.
  const auto tok = from_json(bpe_json({"a", "aa"}, {{"a", "a"}}));
  EXPECT_EQ(tok->encode("aaa", false), (Ids{1, 0}));
  EXPECT_EQ(tok->encode("aaaa", false), (Ids{1, 1}));
}

TEST(Bpe, UnknownCharsUseUnkAndFuse) {
  json j = bpe_json({"<unk>", "a"}, {});
  j["model"]["unk_token"] = "<unk>";
  EXPECT_EQ(from_json(j)->encode("axya", false), (Ids{1, 0, 0, 1}));
  j["model"]["fuse_unk"] = true;
  EXPECT_EQ(from_json(j)->encode("axya", false), (Ids{1, 0, 1}));
  // Without an unk token, unknown characters are dropped (as HF does).
  EXPECT_EQ(from_json(bpe_json({"a"}, {}))->encode("axa", false), (Ids{0, 0}));
}

// A byte-level GGUF: ids 0..255 are the byte characters; 256 "Ġt", 257 "he",
// 258 "Ġthe", 259 "<|endoftext|>" (control), with merges Ġ t, h e, Ġt he.
std::string write_byte_level_gguf(const std::string& dir, bool with_merges = true) {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back(byte_level::byte_to_char(static_cast<uint8_t>(b)));
  tokens.insert(tokens.end(), {"\u0120t", "he", "\u0120the", "<|endoftext|>"});
  std::vector<int32_t> types(tokens.size(), 1);
  types[259] = 3;
  testing::GgufBuilder b;
  b.add_string("general.architecture", "llama")
      .add_string("tokenizer.ggml.model", "gpt2")
      .add_string("tokenizer.ggml.pre", "smollm")
      .add_string_array("tokenizer.ggml.tokens", tokens)
      .add_i32_array("tokenizer.ggml.token_type", types)
      .add_u32("tokenizer.ggml.bos_token_id", 259)
      .add_u32("tokenizer.ggml.eos_token_id", 259)
      .add_bool("tokenizer.ggml.add_bos_token", false)
      .add_string("tokenizer.chat_template", "{{ messages }}");
  if (with_merges) b.add_string_array("tokenizer.ggml.merges", {"\u0120 t", "h e", "\u0120t he"});
  const std::string path = dir + (with_merges ? "/byte_level.gguf" : "/no_merges.gguf");
  b.write(path);
  return path;
}

TEST(ByteLevelBpe, EncodesFromGguf) {
  const auto tok = Tokenizer::load(write_byte_level_gguf(test::temp_dir()));
  // "the the" splits into "the" and " the": t h e -> t he (no "t he" merge);
  // Ġ t h e -> Ġt h e -> Ġt he -> Ġthe.
  EXPECT_EQ(tok->encode("the the", false), (Ids{'t', 257, 258}));
  EXPECT_EQ(tok->encode("<|endoftext|> the", false), (Ids{259, 258}));
  EXPECT_EQ(tok->encode("x", true), (Ids{259, 'x'}));
  EXPECT_EQ(tok->encode("", false), Ids{});
  EXPECT_EQ(tok->encode("\n", false), (Ids{'\n'}));  // byte 0x0A is id 10
  EXPECT_EQ(tok->decode({259, 't', 257, 258, 0xC3, 0xA9}), "<|endoftext|>the the\xC3\xA9");
  EXPECT_EQ(tok->token_text(258), " the");
  EXPECT_EQ(tok->vocab_size(), 260);
  EXPECT_EQ(tok->bos_id(), 259);
  EXPECT_EQ(tok->eos_id(), 259);
  EXPECT_FALSE(tok->add_bos_default());
  EXPECT_EQ(tok->chat_template(), "{{ messages }}");
  EXPECT_EQ(tok->describe(), "byte-level BPE (gpt2 pre-tokenizer), 260 tokens, 3 merges");
  // Arbitrary bytes (invalid UTF-8 included) survive encode -> decode.
  const std::string raw = "caf\xC3\xA9 \xFF\xFE\t\n 12";
  EXPECT_EQ(tok->decode(tok->encode(raw, false)), raw);
}

// A SentencePiece-style GGUF without merges (merges come from scores):
// 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, 259 ▁, 260 h, 261 e, 262 l, 263 o,
// 264 he(-1), 265 ll(-2), 266 ▁he(-3), 267 llo(-4), 268 ▁hello(-5).
std::string write_sentencepiece_gguf(const std::string& dir) {
  std::vector<std::string> tokens{"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types{2, 3, 3};
  std::vector<float> scores{0, 0, 0};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    tokens.push_back(name);
    types.push_back(6);
    scores.push_back(0);
  }
  for (const char* t : {"\u2581", "h", "e", "l", "o"}) tokens.push_back(t), types.push_back(1), scores.push_back(-10);
  const std::vector<std::pair<std::string, float>> merged{
      {"he", -1}, {"ll", -2}, {"\u2581he", -3}, {"llo", -4}, {"\u2581hello", -5}};
  for (const auto& [t, s] : merged) tokens.push_back(t), types.push_back(1), scores.push_back(s);
  testing::GgufBuilder b;
  b.add_string("general.architecture", "llama")
      .add_string("tokenizer.ggml.model", "llama")
      .add_string_array("tokenizer.ggml.tokens", tokens)
      .add_f32_array("tokenizer.ggml.scores", scores)
      .add_i32_array("tokenizer.ggml.token_type", types)
      .add_u32("tokenizer.ggml.bos_token_id", 1)
      .add_u32("tokenizer.ggml.eos_token_id", 2)
      .add_u32("tokenizer.ggml.unknown_token_id", 0);
  const std::string path = dir + "/spm.gguf";
  b.write(path);
  return path;
}

TEST(SentencePieceBpe, MergesByScoreWithMetaspaceAndByteFallback) {
  const auto tok = Tokenizer::load(write_sentencepiece_gguf(test::temp_dir()));
  EXPECT_TRUE(tok->add_bos_default());  // sentencepiece GGUFs without the flag add BOS
  // "hello" -> "▁hello": he(-1), ll(-2), ▁he(-3), llo(-4), ▁hello(-5) in score order.
  EXPECT_EQ(tok->encode("hello", true), (Ids{1, 268}));
  // A leading space is the ▁ itself: no second prefix.
  EXPECT_EQ(tok->encode(" hello", false), (Ids{268}));
  // é is not in the vocabulary: bytes C3 A9 -> <0xC3> (3+0xC3) <0xA9> (3+0xA9).
  EXPECT_EQ(tok->encode("hello h\xC3\xA9", false), (Ids{268, 259, 260, 3 + 0xC3, 3 + 0xA9}));
  // After an added token the text does not start the input: no ▁ prefix ("first"),
  // so h e l l o -> he ll o -> he llo.
  EXPECT_EQ(tok->encode("<s>hello", false), (Ids{1, 264, 267}));
  EXPECT_EQ(tok->decode({1, 268, 259, 260, 3 + 0xC3, 3 + 0xA9}), "<s> hello h\xC3\xA9");
  EXPECT_EQ(tok->decode({268, 259, 260}), "hello h");  // the decoder strips one leading space
  EXPECT_EQ(tok->token_text(3 + 0x41), "A");
  EXPECT_EQ(tok->describe().rfind("SentencePiece-style BPE with byte fallback", 0), 0u);
}

TEST(HfJson, RoundTripsIdentically) {
  const std::string dir = test::temp_dir();
  for (const std::string& path : {write_byte_level_gguf(dir), write_sentencepiece_gguf(dir)}) {
    const auto original = Tokenizer::load(path);
    const auto copy = Tokenizer::from_hf_json_strings(original->to_hf_json(), original->to_hf_config_json(), "copy");
    EXPECT_EQ(copy->to_hf_json(), original->to_hf_json());
    EXPECT_EQ(copy->to_hf_config_json(), original->to_hf_config_json());
    EXPECT_EQ(copy->describe(), original->describe());
    EXPECT_EQ(copy->bos_id(), original->bos_id());
    EXPECT_EQ(copy->eos_id(), original->eos_id());
    EXPECT_EQ(copy->add_bos_default(), original->add_bos_default());
    EXPECT_EQ(copy->chat_template(), original->chat_template());
    for (const char* text : {"hello the the", " h\xC3\xA9llo <s> <|endoftext|>x", "", "\n\n  12 ok"})
      EXPECT_EQ(copy->encode(text, true), original->encode(text, true)) << text;
    // tokenizer.json alone still knows BOS and add_bos from its post-processor.
    const auto bare = Tokenizer::from_hf_json_string(original->to_hf_json(), "bare");
    EXPECT_EQ(bare->add_bos_default(), original->add_bos_default());
    if (original->add_bos_default()) {
      EXPECT_EQ(bare->bos_id(), original->bos_id());
    }
  }
}

TEST(HfJson, ReadsTokenizerConfigBesideTheFile) {
  const std::string dir = test::temp_dir();
  const auto original = Tokenizer::load(write_byte_level_gguf(dir));
  const std::string tokenizer_json = original->to_hf_json();
  test::write_bytes(dir + "/tokenizer.json", std::vector<uint8_t>(tokenizer_json.begin(), tokenizer_json.end()));
  const std::string config = R"({"bos_token": {"content": "<|endoftext|>"}, "eos_token": "<|endoftext|>",
                                  "add_bos_token": true, "chat_template": "T"})";
  test::write_bytes(dir + "/tokenizer_config.json", std::vector<uint8_t>(config.begin(), config.end()));
  const auto tok = Tokenizer::load(dir);
  EXPECT_TRUE(tok->add_bos_default());
  EXPECT_EQ(tok->bos_id(), 259);
  EXPECT_EQ(tok->eos_id(), 259);
  EXPECT_EQ(tok->chat_template(), "T");
}

TEST(HfJson, AddedTokenStripFlags) {
  json j = bpe_json({"a", " "}, {});
  j["added_tokens"] = json::array({{{"id", 2}, {"content", "<x>"}, {"lstrip", true}, {"rstrip", true}, {"special", true}},
                                   {{"id", 3}, {"content", "<x>y"}, {"special", false}}});
  const auto tok = from_json(j);
  EXPECT_EQ(tok->encode("a  <x>  a", false), (Ids{0, 2, 0}));  // spaces around <x> are absorbed
  EXPECT_EQ(tok->encode("a<x>ya", false), (Ids{0, 3, 0}));     // longest added token wins
  EXPECT_EQ(tok->vocab_size(), 4);
}

TEST(TokenizerErrors, NameTheFileAndProblem) {
  EXPECT_EQ(error_of([] { Tokenizer::from_hf_json_string("{not json", "bad.json"); }).rfind("bad.json: not valid JSON", 0), 0u);
  json unigram = bpe_json({"a"}, {});
  unigram["model"]["type"] = "Unigram";
  EXPECT_EQ(error_of([&] { from_json(unigram); }), "toy.json: unsupported model type 'Unigram'");
  EXPECT_NE(error_of([] { from_json(bpe_json({"a", "b"}, {{"a", "b"}})); }).find("missing from the vocabulary"),
            std::string::npos);
  json gaps = bpe_json({"a"}, {});
  gaps["model"]["vocab"]["b"] = 5;
  EXPECT_NE(error_of([&] { from_json(gaps); }).find("without gaps"), std::string::npos);
  json regex = bpe_json({"a"}, {});
  regex["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\w+"}}}, {"behavior", "Isolated"}};
  EXPECT_NE(error_of([&] { from_json(regex); }).find("unsupported Split pre-tokenizer regex"), std::string::npos);
  json no_model = {{"added_tokens", json::array()}};
  EXPECT_EQ(error_of([&] { from_json(no_model); }), "toy.json: tokenizer.json has no 'model'");
  // Ids that are no int: the fuzzer's 5.8e113 was an undefined float-to-integer cast.
  json float_id = bpe_json({"a"}, {});
  float_id["model"]["vocab"]["a"] = 5.8e113;
  EXPECT_EQ(error_of([&] { from_json(float_id); }), "toy.json: the id of vocab token 'a' is not an integer (5.8e+113)");
  json huge_added = bpe_json({"a"}, {});
  huge_added["added_tokens"] = json::array({{{"id", int64_t{1} << 40}, {"content", "<s>"}}});
  EXPECT_EQ(error_of([&] { from_json(huge_added); }), "toy.json: an added token id 1099511627776 is out of range");
  json bad_merge = bpe_json({"a"}, {});
  bad_merge["model"]["merges"] = json::array({"a"});
  EXPECT_NE(error_of([&] { from_json(bad_merge); }).find("not two tokens"), std::string::npos);

  const std::string dir = test::temp_dir();
  const std::string no_merges = write_byte_level_gguf(dir, false);
  EXPECT_EQ(error_of([&] { Tokenizer::load(no_merges); }), no_merges + ": tokenizer.ggml.merges missing");
  testing::GgufBuilder bert;
  bert.add_string("tokenizer.ggml.model", "bert").add_string_array("tokenizer.ggml.tokens", {"a"});
  bert.write(dir + "/bert.gguf");
  EXPECT_NE(error_of([&] { Tokenizer::load(dir + "/bert.gguf"); }).find("unsupported tokenizer.ggml.model 'bert'"),
            std::string::npos);
  testing::GgufBuilder empty;
  empty.add_string("general.architecture", "llama");
  empty.write(dir + "/empty.gguf");
  EXPECT_EQ(error_of([&] { Tokenizer::load(dir + "/empty.gguf"); }), dir + "/empty.gguf: tokenizer.ggml.model missing");
  EXPECT_NE(error_of([&] { Tokenizer::load(dir + "/nothing_here"); }).find("no such file"), std::string::npos);
  EXPECT_NE(error_of([&] { Tokenizer::load(dir); }).find("no tokenizer.json"), std::string::npos);

  const auto tok = Tokenizer::load(write_byte_level_gguf(dir));
  EXPECT_NE(error_of([&] { tok->decode({1, 260}); }).find("token id 260 out of range"), std::string::npos);
  EXPECT_NE(error_of([&] { tok->token_text(-1); }).find("out of range"), std::string::npos);
}

// Regression (found by fuzz_gguf_tokenizer): a GGUF token or chat template that is not
// valid UTF-8 loads (GGUF strings are raw bytes), but tokenizer.json cannot hold it;
// to_hf_json() threw nlohmann's type_error, which ended `quarot quantize` with
// std::terminate. It must be a quarot::Error naming the problem.
TEST(BpeGguf, InvalidUtf8CannotBeWrittenAsJsonAndSaysSo) {
  const std::string dir = test::temp_dir();
  testing::GgufBuilder b;
  b.add_string("tokenizer.ggml.model", "llama")
      .add_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "a", "\xff\xfe"})
      .add_f32_array("tokenizer.ggml.scores", {0, 0, 0, -1, -2})
      .add_i32_array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1})
      .add_u32("tokenizer.ggml.unknown_token_id", 0)
      .add_u32("tokenizer.ggml.bos_token_id", 1)
      .add_u32("tokenizer.ggml.eos_token_id", 2);
  b.write(dir + "/bad_token.gguf");
  const auto tok = Tokenizer::load(dir + "/bad_token.gguf");
  EXPECT_NE(error_of([&] { (void)tok->to_hf_json(); }).find("not valid UTF-8"), std::string::npos);
  testing::GgufBuilder t;
  t.add_string("tokenizer.ggml.model", "gpt2")
      .add_string_array("tokenizer.ggml.tokens", {"a", "b", "ab"})
      .add_string_array("tokenizer.ggml.merges", {"a b"})
      .add_string("tokenizer.chat_template", "{{ \xc3 }}");
  t.write(dir + "/bad_template.gguf");
  const auto tok2 = Tokenizer::load(dir + "/bad_template.gguf");
  EXPECT_NO_THROW((void)tok2->to_hf_json());
  EXPECT_NE(error_of([&] { (void)tok2->to_hf_config_json(); }).find("not valid UTF-8"), std::string::npos);
}

}  // namespace
}  // namespace quarot
