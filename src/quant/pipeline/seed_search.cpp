#include "quant/pipeline/seed_search.h"

#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "common/error.h"
#include "common/progress.h"
#include "kernels/backend.h"
#include "kernels/cpu/vec_ops.h"
#include "model/llama_model.h"
#include "quant/pipeline/quarot_pipeline.h"

namespace quarot {

namespace {

// Mean next-token NLL of the model over the first `count` windows.
double mean_nll(const LlamaModel& model, const std::vector<std::vector<int32_t>>& windows, int64_t count) {
  const int64_t vocab = model.config().vocab_size;
  double total = 0.0;
  int64_t scored = 0;
  std::vector<float> logits;
  for (int64_t w = 0; w < count; ++w) {
    const std::vector<int32_t>& ids = windows[w];
    const auto n = static_cast<int64_t>(ids.size());
    KvCache cache = model.make_cache(n);
    model.forward(ids.data(), n, cache, logits, true);
    for (int64_t t = 0; t + 1 < n; ++t) total += token_nll(logits.data() + t * vocab, vocab, ids[t + 1]);
    scored += n - 1;
  }
  if (scored == 0) fail("rotation seed search: the scoring windows hold no next-token predictions");
  return total / static_cast<double>(scored);
}

}  // namespace

SeedSearchResult search_rotation_seed(const ModelWeights& fp, const QuantizeOptions& options,
                                      const std::vector<std::vector<int32_t>>& windows,
                                      const std::shared_ptr<const Backend>& backend) {
  if (options.rotate == RotationMode::kNone)
    fail("seed trials {} need a rotation to vary (a Hadamard or random rotation, not none)", options.seed_trials);
  if (options.seed_trials < 1) fail("seed trials must be at least 1, got {}", options.seed_trials);
  if (windows.empty()) fail("rotation seed search needs calibration windows to score the seeds on");
  const int64_t count = std::min<int64_t>(options.seed_trial_windows, static_cast<int64_t>(windows.size()));

  // Each candidate as the model it will become; GPTQ weights stay FP (see header).
  QuantizeOptions trial = options;
  trial.seed_trials = 1;
  if (trial.weights != WeightMethod::kRtn) {
    trial.scheme.w_bits = 16;
    trial.w_bits_budget = 0.0;
    trial.outlier_fraction = 0.0;
  }

  SeedSearchResult result;
  result.windows = count;
  result.seqlen = static_cast<int64_t>(windows.front().size());
  result.proxy = trial.scheme.w_bits == options.scheme.w_bits
                     ? options.scheme.name
                     : fmt::format("{} with FP weights (GPTQ runs once, on the chosen seed)", options.scheme.name);
  double best_nll = 0.0;
  ProgressBar bar("seeds", options.seed_trials, "seed");
  for (int64_t i = 0; i < options.seed_trials; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    trial.seed = options.seed + static_cast<uint64_t>(i);
    const QuantizationResult r = quantize_model(fp, trial, {}, backend);
    const LlamaModel model(r.weights, r.recipe, backend);
    SeedTrial t;
    t.seed = trial.seed;
    t.calib_nll = mean_nll(model, windows, count);
    if (!std::isfinite(t.calib_nll))
      fail("rotation seed search: seed {} gives a non-finite calibration NLL (the model produced NaN/Inf)", t.seed);
    t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    result.trials.push_back(t);
    if (i == 0 || t.calib_nll < best_nll) {
      best_nll = t.calib_nll;
      result.best_seed = t.seed;
    }
    bar.add(1, fmt::format("seed {} nll {:.4f}, best seed {}", t.seed, t.calib_nll, result.best_seed));
  }
  bar.finish();
  return result;
}

}  // namespace quarot
