// Integer GEMM/GEMV micro-benchmarks at LLaMA-2-7B linear shapes (N x K: 4096 x 4096
// attention, 11008 x 4096 gate/up, 4096 x 11008 down) for M = 1, 8, 64, 512 rows,
// W4A4 / W4A8 / W8A8 on every integer path this CPU has, beside the FP32 gemm on
// the same shapes; and W4A4 decode (M = 1, 8) at the default model's shapes
// (576 x 576, 1536 x 576, 576 x 1536). Counters:
//   ops/s      2*M*N*K integer (or FP32) operations per second
//   peak%      of the path's peak (peak_ops/s): a register-only loop of the path's
//              multiply-add instruction (vpmaddubsw+vpmaddwd / vpdpbusd / tdpbusd /
//              vfmadd) on one core, measured at start-up, times the thread count
//   cpu_ops/s, cpu_peak%  ops per process CPU-second times the thread count: the rate
//              the threads reach while they run (on a shared machine the wall rate
//              mostly measures the other jobs)
//   weight_B/s, bw%  weight bytes streamed per second, and as a share of the
//              measured all-core read bandwidth (what decode, M = 1..8, is bound by).
//              For M <= 8 the loop cycles through weight_copies copies of the weight
//              that together exceed the last-level cache 3x, so weights come from DRAM.
// Activation quantization is outside the timed loop (bench it with BM_QuantizeActivations).
// Build: cmake --build <dir> --target bench_int_gemm
// Run:   <dir>/bench/bench_int_gemm --benchmark_out=out.json --benchmark_out_format=json
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <omp.h>

#include <time.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "common/rng.h"
#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/amx_tiles.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/int_gemm.h"
#include "transform/hadamard_transform.h"
#include "bench_memory.h"

// GCC 12 warns inside its own _mm512_reduce_* helpers (an intentionally undefined
// pass-through operand); nothing here is uninitialized.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace {

using quarot::Isa;

// --- Peaks: independent accumulator chains of the path's instruction, no memory.

__attribute__((target("avx2,fma"))) int32_t int_peak_avx2(int64_t iterations, int32_t seed) {
  // The kFast inner step: 2 vpmaddubsw (64 u8 x s8 products) + vpaddw + vpmaddwd + vpaddd,
  // in 12 chains that each feed their accumulator back as the activations (identical
  // inputs would let the compiler compute the products once for all chains).
  __m256i acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_epi32(seed + i);
  const __m256i b = _mm256_set1_epi8(3), c = _mm256_set1_epi8(-5), ones = _mm256_set1_epi16(1);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) {
      const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(acc[i], b), _mm256_maddubs_epi16(acc[i], c));
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(p, ones));
    }
  }
  __m256i s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_epi32(s, acc[i]);
  return _mm256_extract_epi32(s, 0);
}
constexpr double kAvx2OpsPerIteration = 12 * 64 * 2;

__attribute__((target("avx512f,avx512bw,avx512vnni"))) int32_t int_peak_vnni(int64_t iterations, int32_t seed) {
  __m512i acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_epi32(i);
  const __m512i a = _mm512_set1_epi32(seed), b = _mm512_set1_epi32(seed * 3);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
    __asm__ volatile("" : "+v"(acc[0]), "+v"(acc[1]), "+v"(acc[2]), "+v"(acc[3]));
  }
  __m512i s = acc[0];
  for (int i = 1; i < 16; ++i) s = _mm512_add_epi32(s, acc[i]);
  return _mm512_reduce_add_epi32(s);
}
constexpr double kVnniOpsPerIteration = 16 * 64 * 2;

__attribute__((target("amx-tile,amx-int8,avx512f"))) int32_t int_peak_amx(int64_t iterations, int32_t seed) {
  quarot::amx_detail::configure_tiles();
  alignas(64) uint8_t data[16 * 64];
  std::memset(data, seed & 0x7f, sizeof(data));
  _tile_loadd(4, data, 64);
  _tile_loadd(5, data, 64);
  _tile_loadd(6, data, 64);
  _tile_loadd(7, data, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t it = 0; it < iterations; ++it) {
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(1, 4, 7);
    _tile_dpbusd(2, 5, 6);
    _tile_dpbusd(3, 5, 7);
  }
  alignas(64) int32_t out[16 * 16];
  _tile_stored(0, out, 64);
  quarot::amx_detail::release_tiles();
  return out[0];
}
constexpr double kAmxOpsPerIteration = 4 * 16 * 16 * 64 * 2;

__attribute__((target("avx2,fma"))) float fp32_peak_avx2(int64_t iterations, float mul, float add) {
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

__attribute__((target("avx512f"))) float fp32_peak_avx512(int64_t iterations, float mul, float add) {
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

// Ops per second of one core times the thread count (as bench_gemm's FMA peak):
// best of several runs of about 20 ms after a warm-up that lets the clock settle
// (AVX-512 and AMX change frequency licences). Timing all threads at once would be
// the better measure on an idle machine, but on a shared one it times the scheduler.
// The loop is timed in this thread's CPU time, so a descheduled thread on a shared
// machine does not lower the peak.
double thread_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

template <typename F>
double measure_peak(F run, double ops_per_iteration) {
  // The opaque barriers pin the loop between the two clock reads: a pure computation
  // may otherwise be moved across the calls.
  auto timed = [&](int64_t iterations) {
    const double t0 = thread_seconds();
    benchmark::DoNotOptimize(iterations);
    auto result = run(iterations);
    benchmark::DoNotOptimize(result);
    return thread_seconds() - t0;
  };
  int64_t iterations = 1 << 12;
  while (timed(iterations) < 0.02 && iterations < (int64_t{1} << 34)) iterations *= 2;
  double best = 0.0;
  for (int rep = 0; rep < 5; ++rep) best = std::max(best, ops_per_iteration * iterations / timed(iterations));
  return best * omp_get_max_threads();
}

double peak_all_cores(Isa isa, bool fp32) {
  static double cache[2][5] = {};
  double& p = cache[fp32 ? 1 : 0][static_cast<int>(isa)];
  if (p > 0.0) return p;
  if (fp32) {
    p = isa == Isa::kAvx2 ? measure_peak([](int64_t n) { return fp32_peak_avx2(n, 0.999f, 0.001f); }, 12.0 * 8 * 2)
                          : measure_peak([](int64_t n) { return fp32_peak_avx512(n, 0.999f, 0.001f); }, 24.0 * 16 * 2);
  } else if (isa == Isa::kAmx) {
    p = measure_peak([](int64_t n) { return int_peak_amx(n, 3); }, kAmxOpsPerIteration);
  } else if (isa == Isa::kAvx512Vnni) {
    p = measure_peak([](int64_t n) { return int_peak_vnni(n, 3); }, kVnniOpsPerIteration);
  } else {
    p = measure_peak([](int64_t n) { return int_peak_avx2(n, 3); }, kAvx2OpsPerIteration);
  }
  return p;
}

// Decode streams every weight from memory once per token; a benchmark that runs one
// weight again and again would time the cache instead. Below this many rows the
// benchmarks cycle through copies that together exceed the last-level cache 3x.
constexpr int64_t kColdRows = 8;
int64_t cold_copies(int64_t rows, double bytes) {
  if (rows > kColdRows) return 1;
  return std::max<int64_t>(2, static_cast<int64_t>(3.0 * llc_bytes() / bytes) + 1);
}

// Copies live where packing puts weights (weight_arena.h: huge pages): on 4 KiB
// pages the copies' page walks and prefetcher restarts cut a one-thread int4 GEMV's
// rate about in half, which the model, whose weights are in the arena, never sees.
template <typename T>
quarot::AlignedArray<T> clone(const quarot::AlignedArray<T>& a) {
  quarot::AlignedArray<T> c(a.size(), quarot::Placement::kWeights);
  if (a.size() > 0) std::memcpy(c.data(), a.data(), a.size() * sizeof(T));
  return c;
}

quarot::IntGemmWeight clone(const quarot::IntGemmWeight& w) {
  quarot::IntGemmWeight c;
  c.isa = w.isa;
  c.rows = w.rows;
  c.cols = w.cols;
  c.bits = w.bits;
  c.group = w.group;
  c.groups = w.groups;
  c.group_padded = w.group_padded;
  c.nibbles = w.nibbles;
  c.code_bias = w.code_bias;
  c.panels = w.panels;
  c.panel_bytes = w.panel_bytes;
  c.data = clone(w.data);
  c.scales = clone(w.scales);
  c.zero_terms = clone(w.zero_terms);
  c.sums = clone(w.sums);
  c.zeros = clone(w.zeros);
  return c;
}

quarot::GemmWeight clone(const quarot::GemmWeight& w) {
  quarot::GemmWeight c;
  c.isa = w.isa;
  c.out_features = w.out_features;
  c.in_features = w.in_features;
  c.panel_width = w.panel_width;
  c.data = clone(w.data);
  return c;
}

std::vector<float> random_values(int64_t count, uint64_t seed) {
  quarot::Rng rng(seed);
  std::vector<float> v(count);
  for (auto& x : v) x = static_cast<float>(rng.uniform() * 2.0 - 1.0);
  return v;
}

// Rates from the loop's own wall time (Google Benchmark cannot divide counters).
void set_counters(benchmark::State& state, double seconds, double ops, double weight_bytes, double peak,
                  int64_t copies) {
  const int threads = omp_get_max_threads();
  const double iterations = static_cast<double>(state.iterations());
  const double ops_rate = ops * iterations / seconds;
  const double byte_rate = weight_bytes * iterations / seconds;
  state.counters["ops/s"] = ops_rate;
  state.counters["peak_ops/s"] = peak;
  state.counters["peak%"] = 100.0 * ops_rate / peak;
  state.counters["weight_copies"] = static_cast<double>(copies);
  state.counters["weight_B/s"] = byte_rate;
  state.counters["bw%"] = 100.0 * byte_rate / read_bandwidth();
  state.counters["threads"] = threads;
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// CPU time of the whole process (every OpenMP thread). On a machine shared with other
// jobs the wall-clock rate mostly measures the scheduler; ops per CPU-second times the
// thread count is the rate the threads would reach running alone.
double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Args: N, K, M, weight bits, activation bits, isa.
void BM_IntGemm(benchmark::State& state) {
  const int64_t N = state.range(0), K = state.range(1), M = state.range(2);
  const int wbits = static_cast<int>(state.range(3)), abits = static_cast<int>(state.range(4));
  const auto isa = static_cast<Isa>(state.range(5));
  if (!quarot::isa_supported(isa)) {
    state.SkipWithError((std::string(quarot::isa_name(isa)) + " not supported here: " +
                         quarot::isa_unsupported_reason(isa)).c_str());
    return;
  }
  quarot::Rng rng(7);
  const int64_t count = N * K;
  std::vector<uint8_t> codes(wbits <= 4 ? (count + 1) / 2 : count);
  for (auto& c : codes) c = static_cast<uint8_t>(rng.next_u64() & (wbits <= 4 ? 0xFF : (1u << wbits) - 1));
  std::vector<float> scales(N);
  for (auto& s : scales) s = static_cast<float>(0.01 + 0.01 * rng.uniform());
  const quarot::IntWeightSource src{N, K, wbits, 0, codes.data(), scales.data(), nullptr};
  std::vector<quarot::IntGemmWeight> weights;
  weights.push_back(quarot::pack_int_gemm_weight(src, isa));
  const int64_t copies = cold_copies(M, static_cast<double>(weights[0].panels * weights[0].panel_bytes));
  for (int64_t c = 1; c < copies; ++c) weights.push_back(clone(weights[0]));
  const quarot::IntGemmWeight& w = weights[0];  // after the clones: push_back may move the elements
  const auto x = random_values(M * K, 2);
  quarot::QuantizedActivations a;
  quarot::quantize_activations(x.data(), M, K, nullptr, quarot::ActQuantSpec{abits, 1.0f, 0, true}, a, isa);
  std::vector<float> y(M * N);
  const double peak = peak_all_cores(isa, false);
  read_bandwidth();
  int64_t next = 0;
  const double t0 = now(), c0 = process_cpu_seconds();
  for (auto _ : state) {
    quarot::int_gemm(weights[next], a, nullptr, nullptr, y.data());
    next = next + 1 == copies ? 0 : next + 1;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double seconds = now() - t0, cpu_seconds = process_cpu_seconds() - c0;
  state.SetLabel(std::string("W") + std::to_string(wbits) + "A" + std::to_string(abits) + " " +
                 quarot::int_gemm_path(w, M));
  set_counters(state, seconds, 2.0 * M * N * K, static_cast<double>(w.panels * w.panel_bytes), peak, copies);
  const double cpu_rate = 2.0 * M * N * K * static_cast<double>(state.iterations()) * omp_get_max_threads() / cpu_seconds;
  state.counters["cpu_ops/s"] = cpu_rate;
  state.counters["cpu_peak%"] = 100.0 * cpu_rate / peak;
}

// Args: N, K, M, isa.
void BM_Fp32Gemm(benchmark::State& state) {
  const int64_t N = state.range(0), K = state.range(1), M = state.range(2);
  const auto isa = static_cast<Isa>(state.range(3));
  if (!quarot::isa_supported(isa)) {
    state.SkipWithError("instruction set not supported here");
    return;
  }
  std::vector<quarot::GemmWeight> weights;
  {
    const auto wf = random_values(N * K, 1);
    weights.push_back(quarot::pack_gemm_weight(wf.data(), N, K, isa));
  }
  const int64_t copies = cold_copies(M, 4.0 * N * K);
  for (int64_t c = 1; c < copies; ++c) weights.push_back(clone(weights[0]));
  const auto x = random_values(M * K, 2);
  std::vector<float> y(M * N);
  const double peak = peak_all_cores(isa, true);
  read_bandwidth();
  int64_t next = 0;
  const double t0 = now();
  for (auto _ : state) {
    quarot::gemm(weights[next], x.data(), M, nullptr, y.data());
    next = next + 1 == copies ? 0 : next + 1;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double seconds = now() - t0;
  state.SetLabel(std::string("fp32 ") + quarot::isa_name(isa));
  set_counters(state, seconds, 2.0 * M * N * K, 4.0 * N * K, peak, copies);
}

// Args: rows, cols, bits, isa, and the online rotation as k, p, inner (k x k mixing
// times H_p on runs of `inner`; k = p = 1: none): per-token quantization after it.
// k = 1, p = cols is a full-row Hadamard.
void BM_QuantizeActivations(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const auto isa = static_cast<Isa>(state.range(3));
  const int64_t k = state.range(4), p = state.range(5), inner = state.range(6);
  if (!quarot::isa_supported(isa)) {
    state.SkipWithError("instruction set not supported here");
    return;
  }
  const auto x = random_values(rows * cols, 3);
  quarot::OnlineRotation rotation{k, p, inner, {}};
  // The model's k x k mixing (plan_hadamard): a normalized Hadamard matrix where one
  // exists (down_proj's 12; the kernels take a shorter road for it), else a random
  // orthogonal one (o_proj's 9 heads).
  if (k > 1) rotation.m = quarot::plan_hadamard(k, 4).rotation.m;
  const bool rotate = !rotation.is_identity();
  quarot::QuantizedActivations a;
  for (auto _ : state) {
    quarot::quantize_activations(x.data(), rows, cols, rotate ? &rotation : nullptr,
                                 quarot::ActQuantSpec{static_cast<int>(state.range(2)), 1.0f, 0, true}, a, isa);
    benchmark::DoNotOptimize(a.codes.data());
  }
  state.SetLabel(std::string(rotate ? "rotation+quant " : "quant ") + quarot::isa_name(isa));
  state.counters["values/s"] =
      benchmark::Counter(static_cast<double>(rows * cols), benchmark::Counter::kIsIterationInvariantRate);
}

struct Shape {
  int64_t n, k;
};
constexpr Shape kShapes[] = {{4096, 4096}, {11008, 4096}, {4096, 11008}};
constexpr int64_t kRows[] = {1, 8, 64, 512};
constexpr int kFormats[][2] = {{4, 4}, {4, 8}, {8, 8}};
// The default model's (SmolLM2-135M) products: q/o, k/v, gate/up, down (decode W4A4 at
// M = 1, 8; prefill at M = 512).
constexpr Shape kSmallShapes[] = {{576, 576}, {192, 576}, {1536, 576}, {576, 1536}};

void register_all() {
  for (const Shape& s : kShapes) {
    for (int64_t m : kRows) {
      for (Isa isa : {Isa::kAvx2, Isa::kAvx512Vnni, Isa::kAmx}) {
        if (isa == Isa::kAmx && m <= 8) continue;  // decode runs the VNNI GEMV on AMX machines
        for (const auto& f : kFormats) {
          benchmark::RegisterBenchmark("int_gemm", BM_IntGemm)
              ->ArgNames({"N", "K", "M", "wbits", "abits", "isa"})
              ->Args({s.n, s.k, m, f[0], f[1], static_cast<int64_t>(isa)})
              ->UseRealTime()
              ->Unit(benchmark::kMillisecond);
        }
      }
      for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
        benchmark::RegisterBenchmark("fp32_gemm", BM_Fp32Gemm)
            ->ArgNames({"N", "K", "M", "isa"})
            ->Args({s.n, s.k, m, static_cast<int64_t>(isa)})
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  for (const Shape& s : kSmallShapes) {
    for (int64_t m : {1, 8}) {
      for (Isa isa : {Isa::kAvx2, Isa::kAvx512Vnni}) {
        benchmark::RegisterBenchmark("int_gemm", BM_IntGemm)
            ->ArgNames({"N", "K", "M", "wbits", "abits", "isa"})
            ->Args({s.n, s.k, m, 4, 4, static_cast<int64_t>(isa)})
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
    for (Isa isa : {Isa::kAvx2, Isa::kAvx512Vnni, Isa::kAmx}) {
      benchmark::RegisterBenchmark("int_gemm_smollm2", BM_IntGemm)
          ->ArgNames({"N", "K", "M", "wbits", "abits", "isa"})
          ->Args({s.n, s.k, 512, 4, 4, static_cast<int64_t>(isa)})
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  for (int64_t rows : {1, 512}) {
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      benchmark::RegisterBenchmark("quantize_activations", BM_QuantizeActivations)
          ->ArgNames({"rows", "cols", "bits", "isa", "k", "p", "inner"})
          ->Args({rows, 4096, 4, static_cast<int64_t>(isa), 1, 4096, 1})
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
  // The default model's W4A4 prefill inputs (512 tokens): q/k/v and gate/up (no online
  // rotation), o_proj (9 x 9 across heads of 64), down_proj (12 x 12 times H_128).
  constexpr int64_t kModelInputs[][4] = {{576, 1, 1, 1}, {576, 9, 1, 64}, {1536, 12, 128, 1}};
  for (const auto& in : kModelInputs) {
    for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
      benchmark::RegisterBenchmark("quantize_activations_smollm2", BM_QuantizeActivations)
          ->ArgNames({"rows", "cols", "bits", "isa", "k", "p", "inner"})
          ->Args({512, in[0], 4, static_cast<int64_t>(isa), in[1], in[2], in[3]})
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  register_all();
  benchmark::AddCustomContext("cpu", quarot::cpu_description());
  benchmark::AddCustomContext("threads", std::to_string(omp_get_max_threads()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
