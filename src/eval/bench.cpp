#include "eval/bench.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "common/error.h"
#include "common/rng.h"

namespace quarot {
namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

double measure_read_bandwidth_gbs() {
  const int64_t n = int64_t{1} << 27;  // 512 MiB of floats
  std::vector<float> buf(n);
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<float>(i & 1023);
  double best = 0.0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    float total = 0.0f;
    // Sixteen independent partial sums per thread: the compiler turns them into
    // vector lanes without reassociating, so the loop is limited by memory, not
    // by the latency of one scalar add chain.
#pragma omp parallel reduction(+ : total)
    {
      float acc[16] = {};
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; i += 16) {
#pragma omp simd
        for (int j = 0; j < 16; ++j) acc[j] += buf[i + j];
      }
      for (float a : acc) total += a;
    }
    const double s = seconds_since(t0);
    if (total == -1.0f) std::abort();  // keeps the sum alive
    best = std::max(best, static_cast<double>(n) * sizeof(float) / s / 1e9);
  }
  return best;
}

BenchResult run_bench(const LlamaModel& model, const BenchOptions& opt) {
  const LlamaConfig& c = model.config();
  BenchOptions::kTokens.check(opt.prefill_tokens, "bench prefill tokens");
  BenchOptions::kTokens.check(opt.decode_tokens, "bench decode tokens");
  BenchOptions::kRepeats.check(opt.repeats, "bench repeats");
  if (opt.prefill_tokens + opt.decode_tokens > c.max_context)
    fail("bench: {} + {} tokens exceed the model's context of {}", opt.prefill_tokens, opt.decode_tokens,
         c.max_context);
  Rng rng(1234);
  std::vector<int32_t> prompt(opt.prefill_tokens);
  for (auto& t : prompt) t = static_cast<int32_t>(rng.below(c.vocab_size));
  BenchResult r;
  std::vector<float> logits;
  KvCache cache = model.make_cache(opt.prefill_tokens + opt.decode_tokens);
  // Warm-up (page in weights, allocate scratch).
  model.forward(prompt.data(), std::min<int64_t>(16, opt.prefill_tokens), cache, logits, false);
  double best = 1e30;
  for (int rep = 0; rep < std::max(1, opt.repeats); ++rep) {
    cache.clear();
    const auto t0 = std::chrono::steady_clock::now();
    model.forward(prompt.data(), opt.prefill_tokens, cache, logits, false);
    best = std::min(best, seconds_since(t0));
  }
  r.prefill_tokens_per_s = opt.prefill_tokens / best;
  const double linear_params = static_cast<double>(
      c.n_layers * (c.hidden * (c.q_dim() + 2 * c.kv_dim()) + c.q_dim() * c.hidden + 3 * c.hidden * c.intermediate) +
      c.vocab_size * c.hidden);
  const double attn_flops = 2.0 * 2.0 * c.n_layers * c.n_heads * c.head_dim * (opt.prefill_tokens / 2.0);
  r.prefill_gflops = r.prefill_tokens_per_s * (2.0 * linear_params + attn_flops) / 1e9;

  int32_t next = prompt.back();
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < opt.decode_tokens; ++i) {
    model.forward(&next, 1, cache, logits, false);
    next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  r.decode_tokens_per_s = opt.decode_tokens / seconds_since(t0);
  const double avg_ctx = opt.prefill_tokens + opt.decode_tokens / 2.0;
  r.decode_bytes_per_token = linear_params * sizeof(float) + 2.0 * c.n_layers * c.kv_dim() * avg_ctx * sizeof(float);
  r.memory_bandwidth_gbs = measure_read_bandwidth_gbs();
  r.decode_bandwidth_bound_tokens_per_s = r.memory_bandwidth_gbs * 1e9 / r.decode_bytes_per_token;
  return r;
}

}  // namespace quarot
