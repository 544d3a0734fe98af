// GEMM micro-benchmarks on the default model's shapes (SmolLM2-135M: hidden 576,
// kv 192, ffn 1536, vocab 49152), every instruction-set path side by side plus a
// naive triple loop, with FLOP/s and weight-bytes/s counters. Decode (n = 1) is
// compared against the memory-bandwidth benchmarks below, prefill (n = 512)
// against the FMA-peak benchmarks (one thread per path, times the thread count).
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <omp.h>

#include <cstring>
#include <vector>

#include "common/rng.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm.h"

namespace {

using quarot::Isa;

std::vector<float> random_values(int64_t count, uint64_t seed) {
  quarot::Rng rng(seed);
  std::vector<float> v(count);
  for (auto& x : v) x = static_cast<float>(rng.uniform() * 2.0 - 1.0);
  return v;
}

void set_counters(benchmark::State& state, int64_t n, int64_t in, int64_t out) {
  const double flops = 2.0 * n * in * out;
  const double bytes = 4.0 * (static_cast<double>(in) * out + n * in + n * out);
  state.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["B/s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate,
                                             benchmark::Counter::kIs1024);
  state.counters["threads"] = omp_get_max_threads();
}

// Args: out, in, n, isa.
void BM_Gemm(benchmark::State& state) {
  const int64_t out = state.range(0), in = state.range(1), n = state.range(2);
  const auto isa = static_cast<Isa>(state.range(3));
  if (!quarot::isa_supported(isa)) {
    state.SkipWithError("instruction set not supported on this CPU");
    return;
  }
  const auto w = random_values(out * in, 1);
  const auto x = random_values(n * in, 2);
  std::vector<float> y(n * out);
  const quarot::GemmWeight packed = quarot::pack_gemm_weight(w.data(), out, in, isa);
  for (auto _ : state) {
    quarot::gemm(packed, x.data(), n, nullptr, y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(quarot::isa_name(isa));
  set_counters(state, n, in, out);
}

// The textbook loop nest, single-threaded, as a baseline. Args: out, in, n.
void BM_GemmNaive(benchmark::State& state) {
  const int64_t out = state.range(0), in = state.range(1), n = state.range(2);
  const auto w = random_values(out * in, 1);
  const auto x = random_values(n * in, 2);
  std::vector<float> y(n * out);
  for (auto _ : state) {
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t o = 0; o < out; ++o) {
        float s = 0.0f;
        for (int64_t k = 0; k < in; ++k) s += x[i * in + k] * w[o * in + k];
        y[i * out + o] = s;
      }
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel("naive 1 thread");
  set_counters(state, n, in, out);
  state.counters["threads"] = 1;
}

struct Shape {
  int64_t out, in;
};
constexpr Shape kShapes[] = {{576, 576}, {192, 576}, {1536, 576}, {576, 1536}, {49152, 576}};

void register_gemm(benchmark::internal::Benchmark* b, bool prefill) {
  for (const Shape& s : kShapes) {
    if (!prefill || s.out != 192) {
      for (int isa = 0; isa < 3; ++isa) b->Args({s.out, s.in, prefill ? 512 : 1, isa});
    }
  }
}

BENCHMARK(BM_Gemm)->Name("gemv")->ArgNames({"out", "in", "n", "isa"})->Apply([](auto* b) {
  register_gemm(b, false);
})->UseRealTime();
BENCHMARK(BM_Gemm)->Name("prefill")->ArgNames({"out", "in", "n", "isa"})->Apply([](auto* b) {
  register_gemm(b, true);
})->UseRealTime();
BENCHMARK(BM_GemmNaive)
    ->Name("naive")
    ->ArgNames({"out", "in", "n"})
    ->Args({576, 576, 1})
    ->Args({1536, 576, 1})
    ->Args({49152, 576, 1})
    ->Args({576, 576, 512})
    ->UseRealTime();

// --- Memory bandwidth: the ceiling for decode, which streams every weight once.

constexpr int64_t kBandwidthBytes = int64_t{256} << 20;

void BM_Memcpy(benchmark::State& state) {
  std::vector<char> src(kBandwidthBytes, 1), dst(kBandwidthBytes, 0);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), src.size());
    benchmark::ClobberMemory();
  }
  // Read + write traffic.
  state.counters["B/s"] = benchmark::Counter(2.0 * kBandwidthBytes, benchmark::Counter::kIsIterationInvariantRate,
                                             benchmark::Counter::kIs1024);
}
BENCHMARK(BM_Memcpy)->Name("bandwidth/memcpy_1thread")->UseRealTime();

void BM_StreamRead(benchmark::State& state) {
  const int64_t count = kBandwidthBytes / 4;
  std::vector<float> data(count);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) data[i] = 1.0f;  // first touch by the reading threads
  for (auto _ : state) {
    float total = 0.0f;
#pragma omp parallel for simd reduction(+ : total) schedule(static)
    for (int64_t i = 0; i < count; ++i) total += data[i];
    benchmark::DoNotOptimize(total);
  }
  state.counters["B/s"] = benchmark::Counter(static_cast<double>(kBandwidthBytes),
                                             benchmark::Counter::kIsIterationInvariantRate,
                                             benchmark::Counter::kIs1024);
  state.counters["threads"] = omp_get_max_threads();
}
BENCHMARK(BM_StreamRead)->Name("bandwidth/stream_read")->UseRealTime();

// --- FMA peak of one core: 12 independent accumulator chains, no memory traffic.

__attribute__((target("avx2,fma"))) float fma_peak_avx2(int64_t iterations) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(0.001f);
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  return _mm256_cvtss_f32(s);
}

__attribute__((target("avx512f"))) float fma_peak_avx512(int64_t iterations) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(0.001f);
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < 24; ++i) s = _mm512_add_ps(s, acc[i]);
  return _mm512_reduce_add_ps(s);
}

void BM_FmaPeak(benchmark::State& state) {
  const auto isa = static_cast<Isa>(state.range(0));
  if (!quarot::isa_supported(isa)) {
    state.SkipWithError("instruction set not supported on this CPU");
    return;
  }
  constexpr int64_t kIterations = 1 << 20;
  for (auto _ : state) {
    benchmark::DoNotOptimize(isa == Isa::kAvx512 ? fma_peak_avx512(kIterations) : fma_peak_avx2(kIterations));
  }
  const double flops_per_iteration = isa == Isa::kAvx512 ? 24.0 * 16 * 2 : 12.0 * 8 * 2;
  state.counters["FLOP/s"] = benchmark::Counter(flops_per_iteration * kIterations,
                                                benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(std::string(quarot::isa_name(isa)) + " 1 core");
}
BENCHMARK(BM_FmaPeak)->Name("fma_peak_1core")->ArgName("isa")->Arg(1)->Arg(2)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("cpu", quarot::cpu_description());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
