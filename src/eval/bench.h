#pragma once
// End-to-end throughput of one or several models, side by side: prefill tokens/s on
// a prompt of N tokens, decode tokens/s over M new tokens after that prompt and from
// an empty context, peak memory, file size, and the bytes a decoded token reads
// against the measured memory bandwidth (decode must read every weight once per
// token). The figures and JSON are in eval/bench_report.h.
//
// Isolation: every model is loaded and run in a child process of its own (fork), so
// its peak RSS is its own and one model's pages or caches do not count for another;
// the parent only sends "run one repetition" and collects the timings, model after
// model (A B C A B C ...), so slow drifts of the machine hit every model alike, and
// each child starts only once the previous one's threads have stopped spinning
// (wait_until_idle). The memory bandwidth is measured in another child after every
// round (median reported).
#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/value_range.h"
#include "eval/bench_report.h"
#include "eval/model_session.h"
#include "kernels/cpu/aligned_buffer.h"
#include "kernels/profiling_backend.h"
#include "model/llama_model.h"

namespace quarot {

struct BenchOptions {
  static constexpr ValueRange<int64_t> kTokens{1, int64_t{1} << 20};  // the model's context limits the sum
  static constexpr ValueRange<int> kRepeats{1, 1000};

  int64_t prefill_tokens = 512;
  int64_t decode_tokens = 128;
  int repeats = 3;  // interleaved repetitions; the median is reported
  int64_t bandwidth_buffer_bytes = int64_t{512} << 20;  // far beyond the caches
  // When set, the opener is expected to run each model on a profiling backend that
  // records into this profile (kernels/profiling_backend.h); each model's report then
  // has the op-by-op time of its last repetition's prefill and decode after the prompt.
  std::shared_ptr<OpProfile> profile;
};

// One phase of a profiled run as the report holds it: each op's time, share of
// `wall_seconds`, time per token and phases, and the "online_quantization" summary
// (bench.cpp says what it counts).
nlohmann::json op_profile_json(const OpProfile& profile, double wall_seconds, int64_t tokens);

// Multi-threaded streaming read of a buffer of `bytes` (much larger than the caches),
// allocated and filled once on the pages packed weights live on; measure_gbs() is the
// best of three passes, GB/s.
// measure_gbs(region) reads only the first `region` bytes (0 or more than the buffer:
// all of it), after one untimed pass: a region of one decode step's bytes, read over and
// over as decode re-reads its weights every token. Where the last-level cache holds much
// of such a footprint (the 2-vCPU Xeon's shared L3 is 480 MiB) that rate exceeds the
// DRAM rate of the whole buffer, and so can decode: the bench reports the bound at both.
class ReadBandwidthProbe {
 public:
  explicit ReadBandwidthProbe(int64_t bytes = int64_t{512} << 20);
  double measure_gbs(int64_t region = 0) const;

 private:
  AlignedFloats storage_;
};

// The time a cache line takes from one OpenMP thread to another and back (threads 0
// and 1 pass an atomic counter `round_trips` times), ns; 0 with fewer than two threads.
// It tells which topology a run had: the 2-vCPU EPYC VM's vCPUs sit either on one core
// complex (~50 ns; the read probe ~35 GB/s) or on two (~330 ns; the probe ~62 GB/s, an
// empty parallel region 1.1 instead of 0.5 us), and decode, which synchronizes its two
// threads hundreds of times per token, gains nothing from the second state's bandwidth.
double thread_round_trip_ns(int64_t round_trips = 4000);

// CPU time all threads of process `pid` have run so far (ns), from
// /proc/PID/task/*/schedstat; -1 when the kernel does not provide it.
int64_t process_cpu_ns(pid_t pid);

// Waits until process `pid` uses less than a tenth of a core, checked over 10 ms
// windows, for at most 2 s (without schedstat: a fixed 100 ms). run_bench calls it
// after every step of a child. Why: after a parallel region OpenMP's threads keep
// spinning for a while (GOMP_SPINCOUNT: a few ms on the 2-vCPU EPYC, tens of ms on the
// GPU machine's 16-core Xeon), and a model whose timed run starts meanwhile shares every
// core with them. On that Xeon the 512-token W4A4KV4 prefill (~70 ms) took 88-136 ms
// right after another process's run and 66-71 ms after a 200 ms pause (its RMSNorms
// 200-250 vs 25-60 us per call), while the FP32 model's longer prefill lost less, so
// the ratio between them was biased against the faster model. Threads that spin
// forever (OMP_WAIT_POLICY=ACTIVE) end the wait at the cap.
void wait_until_idle(pid_t pid);

// Bytes one decoded token reads from `model`'s packed weights and, per cached
// position, from `cache` (one of the model's caches).
DecodeTraffic decode_traffic(const LlamaModel& model, const KvCache& cache);

// Floating-point operations of one prefill token (linear layers and attention over
// a prompt of `prompt_tokens`), for the GFLOP/s figure.
double prefill_flops_per_token(const LlamaConfig& c, int64_t prompt_tokens);

// Opens a model by the name the user gave (runs in the child process).
using ModelOpener = std::function<ModelSession(const std::string& name)>;

// Benchmarks `models` (names for `open`) and returns the report (baseline index 0;
// the caller may change it). Forks: call it before this process has run an OpenMP
// parallel region (the GNU OpenMP runtime does not survive a fork after its threads
// have started), which holds for a process that only benchmarks. Throws Error naming
// the model when one cannot be opened, is too short for the token counts, or its
// process dies.
BenchReport run_bench(const std::vector<std::string>& models, const ModelOpener& open, const BenchOptions& opt);

}  // namespace quarot
