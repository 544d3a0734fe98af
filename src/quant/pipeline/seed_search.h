#pragma once
// Best-of-N rotation seeds: QuaRot's randomized Hadamard (and the random orthogonal
// fallbacks) depend on a seed, and with 4-bit activations the quantization error of
// one draw differs measurably from another's. The search rotates the FP model with
// each candidate seed, applies the scheme's quantizers and keeps the seed with the
// lowest next-token NLL on calibration text (never on the evaluation text).
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/backend.h"
#include "model/weights.h"
#include "quant/scheme.h"

namespace quarot {

struct SeedTrial {
  uint64_t seed = 0;
  double calib_nll = 0.0;  // mean next-token NLL over the scoring windows
  double seconds = 0.0;
};

struct SeedSearchResult {
  uint64_t best_seed = 0;
  std::vector<SeedTrial> trials;  // in the order tried: options.seed, options.seed + 1, ...
  int64_t windows = 0;            // scoring windows used
  int64_t seqlen = 0;
  std::string proxy;              // what each candidate was scored as, e.g. "W16A4KV4 (weights FP)"
};

// Tries options.seed_trials seeds, options.seed + i for i in [0, seed_trials). Each
// candidate is scored as the scheme it will become, except that GPTQ weights are
// kept FP (a GPTQ pass per candidate would cost N calibrations): RTN weights are
// quantized by RTN, activations and KV cache as the options say. Scores the first
// options.seed_trial_windows of `windows`. Ties go to the earlier seed.
// Candidates run on `backend`, which must compute the simulated arithmetic
// (kernels/backend.h: the reference the quantized model is scored against).
// Throws Error without a rotation to vary (rotate none), or without windows.
SeedSearchResult search_rotation_seed(const ModelWeights& fp, const QuantizeOptions& options,
                                      const std::vector<std::vector<int32_t>>& windows,
                                      const std::shared_ptr<const Backend>& backend);

}  // namespace quarot
