#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "eval/perplexity.h"
#include "byte_tokenizer.h"

namespace quarot {
namespace {

TEST(Perplexity, TokenNllIsLogSoftmax) {
  const float row[3] = {1.0f, 2.0f, 3.0f};
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  EXPECT_NEAR(token_nll(row, 3, 0), lse - 1.0, 1e-12);
  EXPECT_NEAR(token_nll(row, 3, 2), lse - 3.0, 1e-12);
}

// The GPTQ protocol equals exp(mean of per-window mean NLLs), with windows cut
// from the token stream; checked against a direct computation with the model.
TEST(Perplexity, GptqProtocolMatchesDirectComputation) {
  LlamaConfig c = tiny_test_config();
  LlamaModel model(make_synthetic_model(c, 11), RuntimeRecipe{}, make_cpu_backend());
  std::vector<int32_t> ids(70);
  for (int i = 0; i < 70; ++i) ids[i] = (i * 13 + 5) % c.vocab_size;
  PerplexityOptions opt;
  opt.seqlen = 32;
  opt.progress = false;
  const PerplexityResult r = evaluate_perplexity(model, ids, opt);
  EXPECT_EQ(r.chunks, 2);  // 70 / 32, trailing 6 tokens dropped
  EXPECT_EQ(r.scored_tokens, 2 * 31);
  double sum_means = 0.0;
  for (int w = 0; w < 2; ++w) {
    KvCache cache = model.make_cache(32);
    std::vector<float> logits;
    model.forward(ids.data() + w * 32, 32, cache, logits, true);
    double s = 0.0;
    for (int j = 0; j < 31; ++j) s += token_nll(logits.data() + j * c.vocab_size, c.vocab_size, ids[w * 32 + j + 1]);
    sum_means += s / 31;
  }
  EXPECT_NEAR(r.ppl, std::exp(sum_means / 2), 1e-9 * r.ppl);
  opt.max_chunks = 1;
  EXPECT_EQ(evaluate_perplexity(model, ids, opt).chunks, 1);
}

// Mean NLL of positions first..seqlen-2 of one window evaluated in one forward.
double window_mean_nll(const LlamaModel& model, const std::vector<int32_t>& w, int64_t first) {
  const int64_t vocab = model.config().vocab_size;
  KvCache cache = model.make_cache(static_cast<int64_t>(w.size()));
  std::vector<float> logits;
  model.forward(w.data(), static_cast<int64_t>(w.size()), cache, logits, true);
  double s = 0.0;
  for (int64_t j = first; j + 1 < static_cast<int64_t>(w.size()); ++j)
    s += token_nll(logits.data() + j * vocab, vocab, w[j + 1]);
  return s / (static_cast<double>(w.size()) - 1 - first);
}

// llama-perplexity: BOS replaces the first token of every window when the vocabulary
// adds BOS; only the second half (positions 16..30 of 32, predicting 17..31) is scored.
TEST(Perplexity, LlamaCppProtocolScoresSecondHalfWithBos) {
  LlamaConfig c = tiny_test_config();
  LlamaModel model(make_synthetic_model(c, 12), RuntimeRecipe{}, make_cpu_backend());
  std::vector<int32_t> ids(64);
  for (int i = 0; i < 64; ++i) ids[i] = (i * 7 + 3) % c.vocab_size;
  PerplexityOptions opt;
  opt.protocol = PplProtocol::kLlamaCpp;
  opt.seqlen = 32;
  opt.bos_id = 1;
  opt.add_bos = true;
  opt.progress = false;
  const PerplexityResult r = evaluate_perplexity(model, ids, opt);
  EXPECT_EQ(r.chunks, 2);
  EXPECT_EQ(r.scored_tokens, 2 * 15);
  for (int w = 0; w < 2; ++w) {
    std::vector<int32_t> win(ids.begin() + w * 32, ids.begin() + (w + 1) * 32);
    win[0] = 1;
    EXPECT_NEAR(r.chunk_nll[w], window_mean_nll(model, win, 16), 1e-9) << "window " << w;
  }
  EXPECT_NEAR(r.nll, (r.chunk_nll[0] + r.chunk_nll[1]) / 2, 1e-12);  // equal counts per window
}

// A vocabulary without add_bos_token (SmolLM2's GGUF): llama.cpp evaluates each window
// as it is. Putting BOS there anyway changes the result, so the test tells them apart.
TEST(Perplexity, LlamaCppProtocolKeepsTheFirstTokenWithoutAddBos) {
  LlamaConfig c = tiny_test_config();
  LlamaModel model(make_synthetic_model(c, 12), RuntimeRecipe{}, make_cpu_backend());
  std::vector<int32_t> ids(64);
  for (int i = 0; i < 64; ++i) ids[i] = (i * 7 + 3) % c.vocab_size;
  PerplexityOptions opt;
  opt.protocol = PplProtocol::kLlamaCpp;
  opt.seqlen = 32;
  opt.bos_id = 1;
  opt.add_bos = false;
  opt.progress = false;
  const PerplexityResult r = evaluate_perplexity(model, ids, opt);
  const std::vector<int32_t> raw(ids.begin(), ids.begin() + 32);
  std::vector<int32_t> with_bos = raw;
  with_bos[0] = 1;
  EXPECT_NEAR(r.chunk_nll[0], window_mean_nll(model, raw, 16), 1e-9);
  EXPECT_GT(std::fabs(window_mean_nll(model, raw, 16) - window_mean_nll(model, with_bos, 16)), 1e-6);
}

// n_batch smaller than the window: the window goes through the KV cache in pieces,
// which is the same computation up to rounding (causal attention).
TEST(Perplexity, LlamaCppBatchSplitMatchesOneForward) {
  LlamaConfig c = tiny_test_config();
  LlamaModel model(make_synthetic_model(c, 13), RuntimeRecipe{}, make_cpu_backend());
  std::vector<int32_t> ids(96);
  for (int i = 0; i < 96; ++i) ids[i] = (i * 11 + 2) % c.vocab_size;
  PerplexityOptions opt;
  opt.protocol = PplProtocol::kLlamaCpp;
  opt.seqlen = 32;
  opt.progress = false;
  const PerplexityResult whole = evaluate_perplexity(model, ids, opt);
  for (int64_t batch : {1, 5, 8, 31}) {
    opt.batch = batch;
    const PerplexityResult split = evaluate_perplexity(model, ids, opt);
    ASSERT_EQ(split.chunk_nll.size(), whole.chunk_nll.size());
    for (size_t w = 0; w < whole.chunk_nll.size(); ++w)
      EXPECT_NEAR(split.chunk_nll[w], whole.chunk_nll[w], 1e-5 * whole.chunk_nll[w]) << "batch " << batch;
  }
}

// Both protocols score the text as the tokenizer encodes a document: BOS first only
// when the vocabulary adds it; the options follow the tokenizer.
TEST(Perplexity, TokenizesWithBosOnlyWhenTheVocabularyAddsIt) {
  PerplexityOptions opt;
  const std::vector<int32_t> plain = tokenize_for_perplexity(ByteTokenizer(false), "ab", opt);
  EXPECT_EQ(plain, (std::vector<int32_t>{'a', 'b'}));
  EXPECT_FALSE(opt.add_bos);
  EXPECT_EQ(opt.bos_id, 1);
  const std::vector<int32_t> bos = tokenize_for_perplexity(ByteTokenizer(true), "ab", opt);
  EXPECT_EQ(bos, (std::vector<int32_t>{1, 'a', 'b'}));
  EXPECT_TRUE(opt.add_bos);
  // llama.cpp reads the file with -f, which drops one trailing newline.
  EXPECT_EQ(tokenize_for_perplexity(ByteTokenizer(false), "a\n\n", opt).size(), 3u);
  opt.protocol = PplProtocol::kLlamaCpp;
  EXPECT_EQ(tokenize_for_perplexity(ByteTokenizer(false), "a\n\n", opt), (std::vector<int32_t>{'a', '\n'}));
}

// llama-perplexity needs at least two windows of text.
TEST(Perplexity, LlamaCppProtocolNeedsTwoWindows) {
  LlamaConfig c = tiny_test_config();
  LlamaModel model(make_synthetic_model(c, 1), RuntimeRecipe{}, make_cpu_backend());
  std::vector<int32_t> ids(40, 5);
  PerplexityOptions opt;
  opt.seqlen = 32;
  opt.progress = false;
  EXPECT_EQ(evaluate_perplexity(model, ids, opt).chunks, 1);  // gptq: one window is enough
  opt.protocol = PplProtocol::kLlamaCpp;
  EXPECT_THROW(evaluate_perplexity(model, ids, opt), Error);
  opt.batch = 0;
  ids.resize(64, 5);
  EXPECT_THROW(evaluate_perplexity(model, ids, opt), Error);
}

TEST(Perplexity, RejectsTooShortTextAndBadOptions) {
  LlamaConfig c = tiny_test_config();
  LlamaModel model(make_synthetic_model(c, 1), RuntimeRecipe{}, make_cpu_backend());
  std::vector<int32_t> ids(10, 5);
  PerplexityOptions opt;
  opt.seqlen = 32;
  EXPECT_THROW(evaluate_perplexity(model, ids, opt), Error);
  opt.seqlen = 100000;
  EXPECT_THROW(evaluate_perplexity(model, ids, opt), Error);
  EXPECT_THROW(parse_ppl_protocol("wikitext"), Error);
}

}  // namespace
}  // namespace quarot
