// Best-of-N rotation seeds on the tiny synthetic model (with outlier channels).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "common/error.h"
#include "common/rng.h"
#include "model/llama_model.h"
#include "quant/pipeline/pipeline_test_util.h"
#include "quant/pipeline/quarot_pipeline.h"
#include "quant/pipeline/seed_search.h"

namespace quarot {
namespace {

std::vector<std::vector<int32_t>> windows_of(int64_t count, int64_t len, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<std::vector<int32_t>> w(count, std::vector<int32_t>(len));
  for (auto& win : w)
    for (auto& t : win) t = static_cast<int32_t>(rng.below(vocab));
  return w;
}

// Mean next-token NLL computed independently of the search (log of a double softmax).
double reference_nll(const QuantizationResult& r, const std::vector<std::vector<int32_t>>& windows, int64_t count) {
  LlamaModel model(r.weights, r.recipe, make_cpu_backend());
  const int64_t vocab = model.config().vocab_size;
  double total = 0.0;
  int64_t n_scored = 0;
  for (int64_t w = 0; w < count; ++w) {
    const auto& ids = windows[w];
    const auto n = static_cast<int64_t>(ids.size());
    KvCache cache = model.make_cache(n);
    std::vector<float> logits;
    model.forward(ids.data(), n, cache, logits, true);
    for (int64_t t = 0; t + 1 < n; ++t) {
      double z = 0.0;
      for (int64_t i = 0; i < vocab; ++i) z += std::exp(static_cast<double>(logits[t * vocab + i]));
      total -= std::log(std::exp(static_cast<double>(logits[t * vocab + ids[t + 1]])) / z);
      ++n_scored;
    }
  }
  return total / static_cast<double>(n_scored);
}

class SeedSearch : public ::testing::Test {
 protected:
  LlamaConfig config = tiny_test_config();
  ModelWeights fp = make_synthetic_model(config, 11);
  std::vector<std::vector<int32_t>> windows = windows_of(3, 40, config.vocab_size, 7);

  QuantizeOptions options(int64_t trials, WeightMethod method = WeightMethod::kRtn) const {
    QuantizeOptions o;
    o.scheme = parse_quant_scheme("W4A4KV4");
    o.weights = method;
    o.seed = 5;
    o.seed_trials = trials;
    o.seed_trial_windows = 2;
    o.calib_windows = 3;
    o.calib_seqlen = 40;
    return o;
  }
};

TEST_F(SeedSearch, PicksTheSeedWithTheLowestCalibrationNll) {
  const SeedSearchResult s = search_rotation_seed(fp, options(4), windows, calibration_backend());
  ASSERT_EQ(s.trials.size(), 4u);
  EXPECT_EQ(s.windows, 2);
  EXPECT_EQ(s.seqlen, 40);
  std::set<double> distinct;
  for (size_t i = 0; i < s.trials.size(); ++i) {
    EXPECT_EQ(s.trials[i].seed, 5u + i);
    distinct.insert(s.trials[i].calib_nll);
  }
  // Different seeds are different rotations, hence different 4-bit errors.
  EXPECT_EQ(distinct.size(), 4u);
  const auto best = std::min_element(s.trials.begin(), s.trials.end(),
                                     [](const SeedTrial& a, const SeedTrial& b) { return a.calib_nll < b.calib_nll; });
  EXPECT_EQ(s.best_seed, best->seed);

  // Each score is the NLL of the quantized model with that seed, recomputed here.
  for (const SeedTrial& t : s.trials) {
    QuantizeOptions one = options(1);
    one.seed = t.seed;
    EXPECT_NEAR(reference_nll(quantize_model(fp, one, {}, calibration_backend()), windows, 2), t.calib_nll, 1e-6 * std::fabs(t.calib_nll));
  }
}

TEST_F(SeedSearch, QuantizeModelUsesTheChosenSeed) {
  const QuantizationResult searched = quantize_model(fp, options(3), windows, calibration_backend());
  ASSERT_TRUE(searched.report.seed_search.has_value());
  const uint64_t best = searched.report.seed_search->best_seed;
  EXPECT_EQ(searched.report.seed, best);
  QuantizeOptions direct = options(1);
  direct.seed = best;
  const QuantizationResult plain = quantize_model(fp, direct, {}, calibration_backend());
  EXPECT_FALSE(plain.report.seed_search.has_value());
  EXPECT_EQ(searched.weights.layers[1].w_down.data, plain.weights.layers[1].w_down.data);
  EXPECT_EQ(searched.weights.tok_embeddings.data, plain.weights.tok_embeddings.data);
  const nlohmann::json j = searched.report.to_json();
  EXPECT_EQ(j["seed"], best);
  EXPECT_EQ(j["seed_search"]["trials"].size(), 3u);
}

TEST_F(SeedSearch, GptqCandidatesAreScoredWithFpWeights) {
  const SeedSearchResult s = search_rotation_seed(fp, options(2, WeightMethod::kGptq), windows, calibration_backend());
  EXPECT_NE(s.proxy.find("FP weights"), std::string::npos) << s.proxy;
  QuantizeOptions w16 = options(1);
  w16.scheme = parse_quant_scheme("W16A4KV4");
  w16.seed = s.trials[1].seed;
  EXPECT_NEAR(reference_nll(quantize_model(fp, w16, {}, calibration_backend()), windows, 2), s.trials[1].calib_nll,
              1e-6 * std::fabs(s.trials[1].calib_nll));
}

TEST_F(SeedSearch, RejectsWhatCannotBeSearched) {
  QuantizeOptions none = options(3);
  none.rotate = RotationMode::kNone;
  EXPECT_THROW(none.validate(), Error);
  EXPECT_THROW(search_rotation_seed(fp, none, windows, calibration_backend()), Error);
  EXPECT_THROW(search_rotation_seed(fp, options(3), {}, calibration_backend()), Error);
  QuantizeOptions zero = options(0);
  EXPECT_THROW(zero.validate(), Error);
  // A search without calibration windows fails with a message, not a crash.
  EXPECT_THROW(quantize_model(fp, options(2), {}, calibration_backend()), Error);
}

}  // namespace
}  // namespace quarot
