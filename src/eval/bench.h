#pragma once
// End-to-end throughput of a model: prefill tokens/s on a prompt of N tokens and
// decode tokens/s over M new tokens, compared with the memory-bandwidth limit
// (decode must read every weight once per token).
#include <cstdint>
#include <string>

#include "common/value_range.h"
#include "model/llama_model.h"

namespace quarot {

struct BenchOptions {
  static constexpr ValueRange<int64_t> kTokens{1, int64_t{1} << 20};  // the model's context limits the sum
  static constexpr ValueRange<int> kRepeats{1, 1000};

  int64_t prefill_tokens = 512;
  int64_t decode_tokens = 128;
  int repeats = 3;  // best-of for prefill
};

struct BenchResult {
  double prefill_tokens_per_s = 0.0;
  double decode_tokens_per_s = 0.0;
  double decode_bytes_per_token = 0.0;  // weights + KV cache read per decoded token
  double memory_bandwidth_gbs = 0.0;    // measured read bandwidth, all threads
  double decode_bandwidth_bound_tokens_per_s = 0.0;
  double prefill_gflops = 0.0;
};

// Multi-threaded streaming read of a buffer much larger than the caches, GB/s.
double measure_read_bandwidth_gbs();

BenchResult run_bench(const LlamaModel& model, const BenchOptions& opt);

}  // namespace quarot
