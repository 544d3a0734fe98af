#include "model/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.h"

namespace quarot {

Sampler::Sampler(SamplerOptions opt) : opt_(opt), rng_(opt.seed) {
  SamplerOptions::kTemperature.check(opt_.temperature, "sampling temperature");
  SamplerOptions::kTopP.check(opt_.top_p, "sampling top-p");
  SamplerOptions::kTopK.check(opt_.top_k, "sampling top-k");
}

int32_t Sampler::sample(const float* logits, int64_t vocab) {
  if (opt_.temperature == 0.0f) {
    return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
  }
  std::vector<int32_t> idx(vocab);
  std::iota(idx.begin(), idx.end(), 0);
  int64_t keep = opt_.top_k > 0 ? std::min(opt_.top_k, vocab) : vocab;
  // Ties broken by token id so the order (and the draw) is deterministic.
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + keep, idx.end(), by_logit);
  idx.resize(keep);
  std::vector<double> p(keep);
  const double mx = logits[idx[0]];
  double sum = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    p[i] = std::exp((logits[idx[i]] - mx) / opt_.temperature);
    sum += p[i];
  }
  if (opt_.top_p < 1.0f) {
    double cum = 0.0;
    int64_t cut = keep;
    for (int64_t i = 0; i < keep; ++i) {
      cum += p[i] / sum;
      if (cum >= opt_.top_p) {
        cut = i + 1;
        break;
      }
    }
    p.resize(cut);
    sum = std::accumulate(p.begin(), p.end(), 0.0);
  }
  double r = rng_.uniform() * sum;
  for (size_t i = 0; i < p.size(); ++i) {
    r -= p[i];
    if (r <= 0.0) return idx[i];
  }
  return idx[p.size() - 1];
}

}  // namespace quarot
