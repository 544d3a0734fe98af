#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "eval/perplexity.h"

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

TEST(Perplexity, LlamaCppProtocolScoresSecondHalfWithBos) {
  LlamaConfig c = tiny_test_config();
  LlamaModel model(make_synthetic_model(c, 12), RuntimeRecipe{}, make_cpu_backend());
  std::vector<int32_t> ids(64);
  for (int i = 0; i < 64; ++i) ids[i] = (i * 7 + 3) % c.vocab_size;
  PerplexityOptions opt;
  opt.protocol = PplProtocol::kLlamaCpp;
  opt.seqlen = 32;
  opt.bos_id = 1;
  opt.progress = false;
  const PerplexityResult r = evaluate_perplexity(model, ids, opt);
  EXPECT_EQ(r.scored_tokens, 2 * 15);  // positions 16..30 predict 17..31
  std::vector<int32_t> w(ids.begin(), ids.begin() + 32);
  w[0] = 1;
  KvCache cache = model.make_cache(32);
  std::vector<float> logits;
  model.forward(w.data(), 32, cache, logits, true);
  double s = 0.0;
  for (int j = 16; j < 31; ++j) s += token_nll(logits.data() + j * c.vocab_size, c.vocab_size, w[j + 1]);
  EXPECT_NEAR(r.chunk_nll[0], s / 15, 1e-9);
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
