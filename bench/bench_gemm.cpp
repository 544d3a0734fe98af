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

// Sums with 4 independent vector accumulators: one accumulator would be bound by
// add latency (~4 cycles per vector), far below what memory delivers.
__attribute__((target("avx2"))) float sum_avx2(const float* data, int64_t count) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= count; i += 32) {
    for (int u = 0; u < 4; ++u) acc[u] = _mm256_add_ps(acc[u], _mm256_loadu_ps(data + i + 8 * u));
  }
  float tail = 0.0f;
  for (; i < count; ++i) tail += data[i];
  const __m256 s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  for (float v : lanes) tail += v;
  return tail;
}

float sum_portable(const float* data, int64_t count) {
  float partial[16] = {};
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    for (int u = 0; u < 16; ++u) partial[u] += data[i + u];
  }
  for (; i < count; ++i) partial[0] += data[i];
  float total = 0.0f;
  for (float v : partial) total += v;
  return total;
}

void BM_StreamRead(benchmark::State& state) {
  const int64_t count = kBandwidthBytes / 4;
  std::vector<float> data(count, 1.0f);
  const bool avx2 = quarot::isa_supported(Isa::kAvx2);
  for (auto _ : state) {
    float total = 0.0f;
#pragma omp parallel reduction(+ : total)
    {
      const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
      const int64_t begin = count * t / threads, end = count * (t + 1) / threads;
      total += avx2 ? sum_avx2(data.data() + begin, end - begin) : sum_portable(data.data() + begin, end - begin);
    }
    benchmark::DoNotOptimize(total);
  }
  state.counters["B/s"] = benchmark::Counter(static_cast<double>(kBandwidthBytes),
                                             benchmark::Counter::kIsIterationInvariantRate,
                                             benchmark::Counter::kIs1024);
  state.counters["threads"] = omp_get_max_threads();
}
BENCHMARK(BM_StreamRead)->Name("bandwidth/stream_read")->UseRealTime();

// --- FMA peak of one core: 12 independent accumulator chains, no memory traffic.

// The multiplier and addend come in as arguments the benchmark hides from the
// optimizer, so the chains cannot be folded at compile time.
__attribute__((target("avx2,fma"))) float fma_peak_avx2(int64_t iterations, float mul, float add) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 a = _mm256_set1_ps(mul), b = _mm256_set1_ps(add);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  return _mm256_cvtss_f32(s);
}

__attribute__((target("avx512f"))) float fma_peak_avx512(int64_t iterations, float mul, float add) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 a = _mm512_set1_ps(mul), b = _mm512_set1_ps(add);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 24
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
  float mul = 0.999f, add = 0.001f;
  for (auto _ : state) {
    benchmark::DoNotOptimize(mul);
    benchmark::DoNotOptimize(add);
    const float r = isa == Isa::kAvx512 ? fma_peak_avx512(kIterations, mul, add) : fma_peak_avx2(kIterations, mul, add);
    benchmark::DoNotOptimize(r);
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
