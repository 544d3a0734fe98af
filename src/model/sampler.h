#pragma once
// Next-token selection: greedy, or temperature + top-k + top-p sampling with a
// seeded generator (same seed, same text).
#include <cstdint>
#include <vector>

#include "common/rng.h"

namespace quarot {

struct SamplerOptions {
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
