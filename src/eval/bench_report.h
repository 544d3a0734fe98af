#pragma once
// The arithmetic and the JSON of a multi-model benchmark, apart from any timing:
// splitting a list of model names, summarizing repeated measurements, ratios to a
// baseline model, bandwidth bounds. eval/bench.h measures; this file only computes,
// so all of it can be checked without a clock.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace quarot {

// Each entry may itself be a comma-separated list ("a,b" and "c" give a, b, c);
// surrounding spaces are trimmed. Throws Error on an empty list or an empty name.
std::vector<std::string> split_model_list(const std::vector<std::string>& entries);

// Index of `baseline` in `models`: empty means the first; otherwise the first entry
// equal to it. Throws Error naming it when it is not among the models.
size_t baseline_index(const std::vector<std::string>& models, const std::string& baseline);

// Repeated measurements of one rate (tokens/s): the median is the reported figure
// (robust to a repetition disturbed by another process), best and all are kept.
struct RateSummary {
  std::vector<double> all;
  double median() const;
  double best() const;
};
// tokens / seconds for each timing; throws Error on a non-positive time or count.
RateSummary rates_from_seconds(int64_t tokens, const std::vector<double>& seconds);

// What a decoded token reads from memory: every weight once (plus one embedding row)
// and the K/V of every cached position.
struct DecodeTraffic {
  double weight_bytes = 0;             // per decoded token
  double kv_bytes_per_position = 0;    // all layers, K and V
  // Average bytes per token over `tokens` decode steps starting at context `context0`
  // (the cache grows by one position per step).
  double bytes_per_token(int64_t context0, int64_t tokens) const;
};

struct ModelBenchResult {
  std::string model;        // as named by the user
  std::string path;         // resolved file
  std::string description;  // e.g. "quarot quantized model W4A4KV4"
  std::string backend;      // backend name with its ISA path
  bool host_memory = true;  // the backend computes in host memory (else its own, e.g. a GPU's)
  int64_t file_bytes = 0;
  int64_t peak_rss_bytes = 0;        // VmHWM of the process that ran only this model
  int64_t rss_after_load_bytes = 0;  // VmRSS after loading and warm-up
  double load_seconds = 0;
  double prefill_flops_per_token = 0;  // for the GFLOP/s figure
  DecodeTraffic traffic;
  RateSummary prefill, decode_after_prompt, decode_empty;
  // thread_round_trip_ns() in this model's process right before and right after each
  // repetition (two per repetition, in order; zeros with one thread).
  std::vector<double> thread_round_trip_ns_all;
  // The read probe over a region of this model's decode bytes per token, after the prompt
  // and from an empty context (ReadBandwidthProbe::measure_gbs(region)), one per round
  // beside read_bandwidth_gbs_all; empty where not measured (not host memory).
  std::vector<double> footprint_gbs_after_prompt_all, footprint_gbs_empty_all;
  nlohmann::json profile;  // op-by-op times (BenchOptions::profile), null when not profiled
};

struct BenchReport {
  std::string cpu;
  std::string openmp_wait;  // how OpenMP threads wait between regions (common/wait_policy.h)
  std::string weight_memory;  // the pages packed weights live on (kernels/cpu/weight_arena.h)
  int threads = 0;
  int64_t prefill_tokens = 0, decode_tokens = 0;
  int repeats = 0;
  double read_bandwidth_gbs = 0;  // measured, all threads: the median of the rounds' figures
  std::vector<double> read_bandwidth_gbs_all;  // one per round of repetitions (may be empty)
  std::vector<double> thread_round_trip_ns_all;  // thread_round_trip_ns() beside each of those
  std::string method;             // how models were isolated and interleaved (one sentence)
  size_t baseline = 0;            // index into models
  std::vector<ModelBenchResult> models;
};

// The report as JSON: machine, settings, and per model its figures (median tokens/s,
// best, all), bytes per token, bandwidth bounds and ratios to the baseline model.
// Throws Error when the baseline index is out of range.
nlohmann::json bench_report_json(const BenchReport& report);

}  // namespace quarot
