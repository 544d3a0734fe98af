#pragma once
// Next-token selection: greedy, or temperature + top-k + top-p sampling with a
// seeded generator (same seed, same text).
#include <cstdint>
#include <vector>

#include "common/rng.h"
#include "common/value_range.h"

namespace quarot {

struct SamplerOptions {
  // Meaningful ranges, declared once: the Sampler and the command line check these.
  static constexpr ValueRange<float> kTemperature{0.0f, 100.0f};
  static constexpr ValueRange<int64_t> kTopK{0, int64_t{1} << 24};
  static constexpr ValueRange<float> kTopP{0.0f, 1.0f, true};  // (0, 1]

  float temperature = 0.0f;  // 0 = greedy
  int64_t top_k = 0;         // 0 = no limit
  float top_p = 1.0f;        // 1 = no nucleus cut
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(SamplerOptions opt);
  int32_t sample(const float* logits, int64_t vocab);

 private:
  SamplerOptions opt_;
  Rng rng_;
};

}  // namespace quarot
