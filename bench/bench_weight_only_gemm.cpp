// Weight-only (FP32 activation) products at the lm_head shape of the default model
// (SmolLM2-135M: 49152 x 576): the weight kept as F16 or as an 8-bit / 4-bit integer
// grid and read in place (weight_only_gemm), against the FP32 gemm on a packed FP32
// copy of the same weight. Decode (n = 1) is memory bound: compare the "W B/s" counter
// (stored weight bytes streamed per second) and "bw%" (that rate as a share of the
// measured all-core read bandwidth; the 57 MB F16 weight exceeds common last-level
// caches, so it streams from memory). Prefill (n = 512): compare FLOP/s.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <chrono>
#include <vector>

#include "bench_memory.h"

#include "common/half.h"
#include "common/rng.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/weight_only_gemm.h"
#include "kernels/weight_encoding.h"

namespace {

using quarot::Isa;

constexpr int64_t kRows = 49152, kCols = 576;

std::vector<float> random_values(int64_t count, uint64_t seed) {
  quarot::Rng rng(seed);
  std::vector<float> v(count);
  for (auto& x : v) x = static_cast<float>(rng.uniform() * 2.0 - 1.0);
  return v;
}

// Rates from the loop's own wall time (Google Benchmark cannot divide counters).
void set_counters(benchmark::State& state, int64_t n, double weight_bytes, double seconds) {
  const double iterations = static_cast<double>(state.iterations());
  state.counters["FLOP/s"] = 2.0 * n * kRows * kCols * iterations / seconds;
  state.counters["W B/s"] = weight_bytes * iterations / seconds;
  state.counters["bw%"] = 100.0 * weight_bytes * iterations / seconds / read_bandwidth();
  state.counters["threads"] = omp_get_max_threads();
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Args: n, encoding (0 = F16, 8 = int8 sym per row, 4 = int4 sym group 32), isa.
void BM_WeightOnly(benchmark::State& state) {
  const int64_t n = state.range(0);
  const int enc = static_cast<int>(state.range(1));
  const auto isa = static_cast<Isa>(state.range(2));
  if (!quarot::isa_supported(isa)) {
    state.SkipWithError("instruction set not supported on this CPU");
    return;
  }
  quarot::Rng rng(1);
  std::vector<uint16_t> halves;
  quarot::WeightEncoding w;
  if (enc == 0) {
    halves.resize(kRows * kCols);
    for (auto& h : halves) h = quarot::fp32_to_fp16(static_cast<float>(rng.uniform() * 2.0 - 1.0));
    w = quarot::f16_weight(halves.data(), kRows, kCols);
  } else {
    const int64_t group = enc == 4 ? 32 : 0;
    const int64_t ng = group > 0 ? kCols / group : 1;
    std::vector<uint8_t> codes(kRows * kCols);
    for (auto& c : codes) c = static_cast<uint8_t>(rng.below(1u << enc));
    w = quarot::make_int_grid_weight(enc, true, group, kRows, kCols, codes, std::vector<float>(kRows * ng, 0.01f), {});
  }
  const auto x = random_values(n * kCols, 2);
  std::vector<float> y(n * kRows);
  read_bandwidth();
  const double t0 = now();
  for (auto _ : state) {
    quarot::weight_only_gemm(w, x.data(), n, nullptr, y.data(), isa);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double seconds = now() - t0;
  state.SetLabel(std::string(enc == 0 ? "f16 " : enc == 8 ? "int8 " : "int4g32 ") + quarot::isa_name(isa));
  set_counters(state, n, static_cast<double>(w.stored_bytes()), seconds);
}

// The baseline it replaces: an FP32 copy of the weight through the FP32 gemm. Args: n, isa.
void BM_Fp32Gemm(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto isa = static_cast<Isa>(state.range(1));
  if (!quarot::isa_supported(isa)) {
    state.SkipWithError("instruction set not supported on this CPU");
    return;
  }
  const auto wv = random_values(kRows * kCols, 1);
  const quarot::GemmWeight packed = quarot::pack_gemm_weight(wv.data(), kRows, kCols, isa);
  const auto x = random_values(n * kCols, 2);
  std::vector<float> y(n * kRows);
  read_bandwidth();
  const double t0 = now();
  for (auto _ : state) {
    quarot::gemm(packed, x.data(), n, nullptr, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double seconds = now() - t0;
  state.SetLabel(std::string("fp32 ") + quarot::isa_name(isa));
  set_counters(state, n, 4.0 * kRows * kCols, seconds);
}

void weight_only_args(benchmark::internal::Benchmark* b) {
  for (int64_t n : {1, 512})
    for (int enc : {0, 8, 4})
      for (Isa isa : {Isa::kAvx512, Isa::kAvx2, Isa::kScalar}) {
        if (isa == Isa::kScalar && n > 1) continue;  // the reference prefill takes seconds
        if (isa == Isa::kAvx512 && n > 1) continue;  // prefill panels are the AVX2 code
        b->Args({n, enc, static_cast<int64_t>(isa)});
      }
}

void fp32_args(benchmark::internal::Benchmark* b) {
  for (int64_t n : {1, 512}) b->Args({n, static_cast<int64_t>(Isa::kAvx2)});
}

BENCHMARK(BM_WeightOnly)->Apply(weight_only_args)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Fp32Gemm)->Apply(fp32_args)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
