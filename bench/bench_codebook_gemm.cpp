// CLAQ codebook (lookup-table) GEMV/GEMM at the default model's linear shapes
// (SmolLM2-135M, rows x cols = out x in: 576x576 wq/wo, 192x576 wk/wv, 1536x576
// gate/up, 576x1536 down) and 4096x4096, for 2-, 3- and 4-bit columns and a CLAQ-like
// mix (6% of columns 4-bit, the rest 2-bit, 0.5% outliers: about 2.2 bits/weight),
// beside the int4 weight-only GEMV (W4A16, per-row scales) and the W4A8 integer
// GEMV on the same shapes. Counters:
//   weight_B/s, bw%  stored weight bytes (indices + tables + outliers; codes + scales)
//              streamed per second, and as a share of the measured all-core read
//              bandwidth. For n <= 8 the loop cycles through weight_copies copies
//              that together exceed the last-level cache 3x, so weights come from DRAM.
//   gemv_B/s, gemv_bw%  (BM_Codebook, n <= 8) the same for the bytes the decode GEMV
//              streams from memory: its repacked index words (kernels/cpu/codebook_lanes.h;
//              3-bit columns take 6.7% more than the file) plus the outliers; the FP32
//              tables are read once per half stripe and stay in cache.
//   us/call    wall time of one product
//   bits/w     stored bits per weight
// BM_CodebookPath times n = 1..64 activation rows with each algorithm forced (the
// lookup-table GEMV up to 8 rows, FP32 panels + gemm tiles any n) on 4096x4096 and
// 1536x576: where they cross sets kCodebookGemvMaxRows.
// Build: cmake --build <dir> --target bench_codebook_gemm
// Run:   <dir>/bench/bench_codebook_gemm --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/rng.h"
#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/codebook_gemm.h"
#include "kernels/cpu/codebook_int8.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/int_gemm.h"
#include "kernels/cpu/weight_only_gemm.h"
#include "kernels/weight_encoding.h"

#include "bench_memory.h"

namespace {

using quarot::Isa;
using quarot::WeightEncoding;

int64_t cold_copies(int64_t n, double bytes) {
  if (n > 8) return 1;
  return std::max<int64_t>(2, static_cast<int64_t>(3.0 * llc_bytes() / bytes) + 1);
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

std::vector<float> random_values(int64_t count, uint64_t seed) {
  quarot::Rng rng(seed);
  std::vector<float> v(count);
  for (auto& x : v) x = static_cast<float>(rng.uniform() * 2.0 - 1.0);
  return v;
}

// enc: 2, 3, 4 = every column that wide; 21 = the CLAQ-like 2.x-bit mix.
WeightEncoding make_codebook(int64_t rows, int64_t cols, int enc) {
  quarot::Rng rng(3);
  std::vector<uint8_t> bits(cols);
  for (auto& b : bits) b = static_cast<uint8_t>(enc == 21 ? (rng.uniform() < 0.06 ? 4 : 2) : enc);
  std::vector<float> centroids;
  for (int64_t c = 0; c < cols; ++c)
    for (int i = 0; i < (1 << bits[c]); ++i) centroids.push_back(static_cast<float>(rng.uniform() * 0.2 - 0.1));
  std::vector<uint8_t> idx(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) idx[r * cols + c] = static_cast<uint8_t>(rng.below(uint64_t{1} << bits[c]));
  std::vector<quarot::CodebookOutlier> outliers;
  if (enc == 21) {
    std::vector<char> taken(rows * cols, 0);
    for (int64_t i = 0; i < rows * cols / 200; ++i) {
      const int64_t p = static_cast<int64_t>(rng.below(rows * cols));
      if (taken[p]) continue;
      taken[p] = 1;
      outliers.push_back({static_cast<int32_t>(p / cols), static_cast<int32_t>(p % cols), 0.5f});
    }
  }
  return quarot::make_codebook_weight(rows, cols, bits, centroids, idx, std::move(outliers));
}

// A deep copy (own buffers) of a codebook encoding, so copies occupy distinct memory.
WeightEncoding clone_codebook(const WeightEncoding& e) {
  struct Buffers {
    std::vector<uint8_t> bits, idx;
    std::vector<uint16_t> cent, ocols, ovals;
    std::vector<uint32_t> ptr;
  };
  const quarot::CodebookLayout l(e.rows, e.cols, e.col_bits, "bench");
  auto b = std::make_shared<Buffers>();
  b->bits.assign(e.col_bits, e.col_bits + e.cols);
  const auto* ip = static_cast<const uint8_t*>(e.data);
  b->idx.assign(ip, ip + l.index_bytes);
  b->cent.assign(e.centroids, e.centroids + l.centroid_count);
  if (e.n_outliers > 0) {
    b->ptr.assign(e.outlier_row_ptr, e.outlier_row_ptr + e.rows + 1);
    b->ocols.assign(e.outlier_cols, e.outlier_cols + e.n_outliers);
    b->ovals.assign(e.outlier_values, e.outlier_values + e.n_outliers);
  }
  return quarot::codebook_weight_view(e.rows, e.cols, b->bits.data(), b->cent.data(), b->idx.data(), e.n_outliers,
                                      e.n_outliers > 0 ? b->ptr.data() : nullptr,
                                      e.n_outliers > 0 ? b->ocols.data() : nullptr,
                                      e.n_outliers > 0 ? b->ovals.data() : nullptr, b);
}

void set_counters(benchmark::State& state, double seconds, double weight_bytes, double weights, int64_t copies) {
  const double it = static_cast<double>(state.iterations());
  state.counters["weight_B/s"] = weight_bytes * it / seconds;
  state.counters["bw%"] = 100.0 * weight_bytes * it / seconds / read_bandwidth();
  state.counters["us/call"] = 1e6 * seconds / it;
  state.counters["bits/w"] = 8.0 * weight_bytes / weights;
  state.counters["weight_copies"] = static_cast<double>(copies);
  state.counters["threads"] = omp_get_max_threads();
}

bool skip_unsupported(benchmark::State& state, Isa isa) {
  if (quarot::isa_supported(isa)) return false;
  state.SkipWithError((std::string(quarot::isa_name(isa)) + " not supported here").c_str());
  return true;
}

// Args: rows, cols, n, enc, isa, path (0 auto, 1 lut, 2 panels).
void BM_Codebook(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1), n = state.range(2);
  const int enc = static_cast<int>(state.range(3));
  const auto isa = static_cast<Isa>(state.range(4));
  const auto path = static_cast<quarot::CodebookPath>(state.range(5));
  if (skip_unsupported(state, isa)) return;
  const WeightEncoding first = make_codebook(rows, cols, enc);
  const double bytes = static_cast<double>(first.stored_bytes());
  const int64_t copies = cold_copies(n, bytes);
  std::vector<quarot::CodebookGemmWeight> ws;
  ws.push_back(quarot::pack_codebook_weight(first));
  for (int64_t c = 1; c < copies; ++c) ws.push_back(quarot::pack_codebook_weight(clone_codebook(first)));
  const auto x = random_values(n * cols, 2);
  std::vector<float> y(n * rows);
  read_bandwidth();
  int64_t next = 0;
  const double t0 = now();
  for (auto _ : state) {
    quarot::codebook_gemm(ws[next], x.data(), n, nullptr, y.data(), isa, path);
    next = next + 1 == copies ? 0 : next + 1;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double seconds = now() - t0;
  state.SetLabel(std::string("claq") + (enc == 21 ? "2.x+outliers" : std::to_string(enc)) + " " +
                 quarot::isa_name(isa) +
                 (path == quarot::CodebookPath::kLut ? " lut" : path == quarot::CodebookPath::kPanels ? " panels" : ""));
  set_counters(state, seconds, bytes, static_cast<double>(rows * cols), copies);
  if (n <= quarot::kCodebookLutMaxRows && path != quarot::CodebookPath::kPanels) {
    const double gemv_bytes = 4.0 * ws[0].lanes.words.size() +
                              (first.n_outliers > 0 ? 4.0 * (rows + 1) + 4.0 * first.n_outliers : 0.0);
    const double it = static_cast<double>(state.iterations());
    state.counters["gemv_B/s"] = gemv_bytes * it / seconds;
    state.counters["gemv_bw%"] = 100.0 * gemv_bytes * it / seconds / read_bandwidth();
  }
}

// The decode GEMV's instruction throughput: one weight (cache-resident at these shapes),
// one OpenMP thread, timed by that thread's CPU time, so other processes' load changes it
// little (unlike the wall-clock counters above). ns/8w: nanoseconds per 8 weights.
// Args: rows, cols, enc, isa.
void BM_CodebookHot(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const int enc = static_cast<int>(state.range(2));
  const auto isa = static_cast<Isa>(state.range(3));
  if (skip_unsupported(state, isa)) return;
  const quarot::CodebookGemmWeight w = quarot::pack_codebook_weight(make_codebook(rows, cols, enc));
  const auto x = random_values(cols, 2);
  std::vector<float> y(rows);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  for (auto _ : state) {
    quarot::codebook_gemm(w, x.data(), 1, nullptr, y.data(), isa, quarot::CodebookPath::kLut);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  omp_set_num_threads(saved);
  state.SetLabel(std::string("claq") + (enc == 21 ? "2.x+outliers" : std::to_string(enc)) + " " +
                 quarot::isa_name(isa) + " hot 1 thread");
  state.counters["ns/8w"] = benchmark::Counter(static_cast<double>(rows * cols) / 8.0 * 1e-9,
                                               benchmark::Counter::kIsIterationInvariantRate |
                                                   benchmark::Counter::kInvert);
}

// int4 symmetric per-row grid through weight_only_gemm (W4A16). Args: rows, cols, n, isa.
void BM_Int4WeightOnly(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1), n = state.range(2);
  const auto isa = static_cast<Isa>(state.range(3));
  if (skip_unsupported(state, isa)) return;
  quarot::Rng rng(1);
  std::vector<uint8_t> codes(rows * cols);
  for (auto& c : codes) c = static_cast<uint8_t>(rng.below(16));
  const WeightEncoding first =
      quarot::make_int_grid_weight(4, true, 0, rows, cols, codes, std::vector<float>(rows, 0.01f), {});
  const double bytes = static_cast<double>(first.stored_bytes());
  const int64_t copies = cold_copies(n, bytes);
  std::vector<WeightEncoding> ws{first};
  for (int64_t c = 1; c < copies; ++c)
    ws.push_back(quarot::make_int_grid_weight(4, true, 0, rows, cols, codes, std::vector<float>(rows, 0.01f), {}));
  const auto x = random_values(n * cols, 2);
  std::vector<float> y(n * rows);
  read_bandwidth();
  int64_t next = 0;
  const double t0 = now();
  for (auto _ : state) {
    quarot::weight_only_gemm(ws[next], x.data(), n, nullptr, y.data(), isa);
    next = next + 1 == copies ? 0 : next + 1;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double seconds = now() - t0;
  state.SetLabel(std::string("int4 W4A16 ") + quarot::isa_name(isa));
  set_counters(state, seconds, bytes, static_cast<double>(rows * cols), copies);
}

// A deep copy of a packed int8 codebook weight (its own index words and tables), so
// copies occupy distinct memory; the source encoding (outliers) is shared. The
// copies live where packing puts weights (huge pages), as the first one does.
quarot::CodebookInt8Weight clone_int8(const quarot::CodebookInt8Weight& p) {
  quarot::CodebookInt8Weight c;
  c.source = p.source;
  c.layout = p.layout;
  c.group = p.group;
  c.slot_start = p.slot_start;
  c.chunk_start = p.chunk_start;
  c.slots = p.slots;
  c.halves = p.halves;
  c.slot_column = p.slot_column;
  c.group_scale = p.group_scale;
  c.tables = quarot::AlignedBytes(p.tables.size(), quarot::Placement::kWeights);
  std::memcpy(c.tables.data(), p.tables.data(), p.tables.size());
  c.data = quarot::AlignedBytes(p.data.size(), quarot::Placement::kWeights);
  std::memcpy(c.data.data(), p.data.data(), p.data.size());
  c.outlier_delta = p.outlier_delta;
  // The decode path's maps and pair-table values, as a packed weight has them.
  for (auto [dst, src] : {std::pair{&c.gather_lo, &p.gather_lo}, std::pair{&c.gather_block, &p.gather_block},
                          std::pair{&c.pair_t, &p.pair_t}}) {
    *dst = quarot::AlignedBytes(src->size(), quarot::Placement::kWeights);
    if (src->size() > 0) std::memcpy(dst->data(), src->data(), src->size());
  }
  return c;
}

// The integer CLAQ GEMV (codebook_int8.h) on 8-bit per-token activation codes
// (quantized outside the loop, as BM_Int4A8). Args: rows, cols, n, enc, group.
// int8_B/s: the bytes it streams (index words + outliers) per second.
void BM_CodebookInt8(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1), n = state.range(2);
  const int enc = static_cast<int>(state.range(3)), group = static_cast<int>(state.range(4));
  if (!quarot::codebook_int8_fast_available()) {
    state.SkipWithError("no AVX-512 VBMI + VNNI here");
    return;
  }
  const WeightEncoding first = make_codebook(rows, cols, enc);
  std::vector<quarot::CodebookInt8Weight> ws;
  ws.push_back(quarot::pack_codebook_int8(first, group));
  const double bytes = static_cast<double>(ws[0].data.size()) +
                       (first.n_outliers > 0 ? 4.0 * (rows + 1) + 4.0 * first.n_outliers : 0.0);
  const int64_t copies = cold_copies(n, bytes);
  for (int64_t c = 1; c < copies; ++c) ws.push_back(clone_int8(ws[0]));
  const auto x = random_values(n * cols, 2);
  quarot::QuantizedActivations a;
  quarot::quantize_activations(x.data(), n, cols, nullptr, quarot::ActQuantSpec{8, 1.0f, 0, true}, a,
                               quarot::detected_isa());
  std::vector<float> y(n * rows);
  read_bandwidth();
  int64_t next = 0;
  const double t0 = now();
  for (auto _ : state) {
    const quarot::CodebookInt8Product p{&ws[next], nullptr, nullptr, y.data()};
    quarot::codebook_int8_gemv(&p, 1, a);
    next = next + 1 == copies ? 0 : next + 1;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double seconds = now() - t0;
  state.SetLabel(std::string("claq") + (enc == 21 ? "2.x+outliers" : std::to_string(enc)) + " int8 g" +
                 std::to_string(group));
  set_counters(state, seconds, static_cast<double>(first.stored_bytes()), static_cast<double>(rows * cols), copies);
  const double it = static_cast<double>(state.iterations());
  state.counters["int8_B/s"] = bytes * it / seconds;
}

// The int8 GEMV's instruction throughput, as BM_CodebookHot: one weight in cache, one
// thread, CPU time. Args: rows, cols, enc, group.
void BM_CodebookInt8Hot(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const int enc = static_cast<int>(state.range(2)), group = static_cast<int>(state.range(3));
  if (!quarot::codebook_int8_fast_available()) {
    state.SkipWithError("no AVX-512 VBMI + VNNI here");
    return;
  }
  const quarot::CodebookInt8Weight w = quarot::pack_codebook_int8(make_codebook(rows, cols, enc), group);
  const auto x = random_values(cols, 2);
  quarot::QuantizedActivations a;
  quarot::quantize_activations(x.data(), 1, cols, nullptr, quarot::ActQuantSpec{8, 1.0f, 0, true}, a,
                               quarot::detected_isa());
  std::vector<float> y(rows);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  for (auto _ : state) {
    const quarot::CodebookInt8Product p{&w, nullptr, nullptr, y.data()};
    quarot::codebook_int8_gemv(&p, 1, a);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  omp_set_num_threads(saved);
  state.SetLabel(std::string("claq") + (enc == 21 ? "2.x+outliers" : std::to_string(enc)) + " int8 g" +
                 std::to_string(group) + " hot 1 thread");
  state.counters["ns/8w"] = benchmark::Counter(static_cast<double>(rows * cols) / 8.0 * 1e-9,
                                               benchmark::Counter::kIsIterationInvariantRate |
                                                   benchmark::Counter::kInvert);
}

// pack_codebook_int8 (done once per weight, on first use in the CPU backend), beside
// pack_codebook_weight. Args: rows, cols, enc, which (0 int8, 1 FP32 lanes).
void BM_CodebookPack(benchmark::State& state) {
  const WeightEncoding e = make_codebook(state.range(0), state.range(1), static_cast<int>(state.range(2)));
  for (auto _ : state) {
    if (state.range(3) == 0) {
      auto p = quarot::pack_codebook_int8(e);
      benchmark::DoNotOptimize(p.data.data());
    } else {
      auto p = quarot::pack_codebook_weight(e);
      benchmark::DoNotOptimize(p.lanes.words.data());
    }
  }
  state.SetLabel(state.range(3) == 0 ? "int8" : "fp32 lanes");
}

// W4A8 integer GEMV (activations quantized outside the loop). Args: rows, cols, n, isa.
void BM_Int4A8(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1), n = state.range(2);
  const auto isa = static_cast<Isa>(state.range(3));
  if (skip_unsupported(state, isa)) return;
  quarot::Rng rng(7);
  std::vector<uint8_t> codes((rows * cols + 1) / 2);
  for (auto& c : codes) c = static_cast<uint8_t>(rng.next_u64() & 0xFF);
  std::vector<float> scales(rows, 0.01f);
  const quarot::IntWeightSource src{rows, cols, 4, 0, codes.data(), scales.data(), nullptr};
  std::vector<quarot::IntGemmWeight> ws;
  ws.push_back(quarot::pack_int_gemm_weight(src, isa));
  const double bytes = static_cast<double>(ws[0].panels * ws[0].panel_bytes);
  const int64_t copies = cold_copies(n, bytes);
  for (int64_t c = 1; c < copies; ++c) ws.push_back(quarot::pack_int_gemm_weight(src, isa));
  const auto x = random_values(n * cols, 2);
  quarot::QuantizedActivations a;
  quarot::quantize_activations(x.data(), n, cols, nullptr, quarot::ActQuantSpec{8, 1.0f, 0, true}, a, isa);
  std::vector<float> y(n * rows);
  read_bandwidth();
  int64_t next = 0;
  const double t0 = now();
  for (auto _ : state) {
    quarot::int_gemm(ws[next], a, nullptr, nullptr, y.data());
    next = next + 1 == copies ? 0 : next + 1;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double seconds = now() - t0;
  state.SetLabel(std::string("int4 W4A8 ") + quarot::isa_name(isa));
  set_counters(state, seconds, bytes, static_cast<double>(rows * cols), copies);
}

struct Shape {
  int64_t rows, cols;
};
const Shape kShapes[] = {{576, 576}, {192, 576}, {1536, 576}, {576, 1536}, {4096, 4096}};

Isa best() { return quarot::detected_isa(); }

void codebook_args(benchmark::internal::Benchmark* b) {
  for (const Shape& s : kShapes)
    for (int enc : {2, 3, 4, 21}) b->Args({s.rows, s.cols, 1, enc, static_cast<int64_t>(best()), 0});
  // The scalar reference and AVX2 on an AVX-512 machine, for comparison.
  for (int enc : {2, 4}) {
    b->Args({4096, 4096, 1, enc, static_cast<int64_t>(Isa::kScalar), 0});
    if (best() != Isa::kAvx2) b->Args({4096, 4096, 1, enc, static_cast<int64_t>(Isa::kAvx2), 0});
  }
}

void int8_hot_args(benchmark::internal::Benchmark* b) {
  for (const Shape& s : {Shape{576, 576}, Shape{1536, 576}, Shape{576, 1536}, Shape{256, 4096}})
    for (int enc : {2, 3, 4, 21}) b->Args({s.rows, s.cols, enc, quarot::kCodebookInt8Group});
  for (int64_t g : {16, 32, 64})
    for (int enc : {2, 3, 4}) b->Args({1536, 576, enc, g});
}

void hot_args(benchmark::internal::Benchmark* b) {
  for (const Shape& s : {Shape{576, 576}, Shape{1536, 576}, Shape{576, 1536}, Shape{256, 4096}})
    for (int enc : {2, 3, 4, 21}) b->Args({s.rows, s.cols, enc, static_cast<int64_t>(best())});
}

void int_args(benchmark::internal::Benchmark* b) {
  for (const Shape& s : kShapes) b->Args({s.rows, s.cols, 1, static_cast<int64_t>(best())});
}

// The comparison: LLaMA-7B-like decode shapes, 2/3/4-bit columns, FP32 lookup
// GEMV vs the int8 one vs the W4A8 integer GEMV (BM_Int4A8 with big_args).
const Shape kBigShapes[] = {{4096, 4096}, {11008, 4096}, {4096, 11008}};

void big_codebook_args(benchmark::internal::Benchmark* b) {
  for (const Shape& s : kBigShapes)
    for (int enc : {2, 3, 4}) b->Args({s.rows, s.cols, 1, enc, static_cast<int64_t>(best()), 0});
}

void big_int8_args(benchmark::internal::Benchmark* b) {
  for (const Shape& s : kBigShapes)
    for (int enc : {2, 3, 4}) b->Args({s.rows, s.cols, 1, enc, quarot::kCodebookInt8Group});
  // Scale group sweep and more activation rows, 4096x4096.
  for (int enc : {2, 4})
    for (int64_t g : {16, 64}) b->Args({4096, 4096, 1, enc, g});
  for (int64_t n : {2, 4}) b->Args({4096, 4096, n, 21, quarot::kCodebookInt8Group});
  b->Args({4096, 4096, 1, 21, quarot::kCodebookInt8Group});
  // Prefill sizes (compare BM_CodebookPath's panels at the same n).
  for (int64_t n : {8, 16, 64}) {
    b->Args({4096, 4096, n, 21, quarot::kCodebookInt8Group});
    b->Args({1536, 576, n, 21, quarot::kCodebookInt8Group});
  }
  for (const Shape& s : kShapes)
    for (int enc : {2, 4, 21}) b->Args({s.rows, s.cols, 1, enc, quarot::kCodebookInt8Group});
}

void big_int_args(benchmark::internal::Benchmark* b) {
  for (const Shape& s : kBigShapes) b->Args({s.rows, s.cols, 1, static_cast<int64_t>(best())});
}

void path_args(benchmark::internal::Benchmark* b) {
  for (const Shape& s : {Shape{4096, 4096}, Shape{1536, 576}}) {
    for (int64_t n : {1, 2, 3, 4, 6, 8}) b->Args({s.rows, s.cols, n, 21, static_cast<int64_t>(best()), 1});
    for (int64_t n : {1, 2, 3, 4, 6, 8, 16, 64}) b->Args({s.rows, s.cols, n, 21, static_cast<int64_t>(best()), 2});
  }
}

BENCHMARK(BM_Codebook)->Apply(codebook_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_CodebookHot)->Apply(hot_args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CodebookPack)->Args({4096, 4096, 2, 0})->Args({4096, 4096, 2, 1})->Args({1536, 576, 21, 0})
    ->Args({1536, 576, 21, 1})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CodebookInt8Hot)->Apply(int8_hot_args)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Int4WeightOnly)->Apply(int_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Int4A8)->Apply(int_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Codebook)->Name("BM_CodebookBig")->Apply(big_codebook_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_CodebookInt8)->Apply(big_int8_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Int4A8)->Name("BM_Int4A8Big")->Apply(big_int_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Codebook)->Name("BM_CodebookPath")->Apply(path_args)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Int4WeightOnly)->Name("BM_Int4WeightOnlyRows")->Args({4096, 4096, 8, static_cast<int64_t>(best())})
    ->Args({4096, 4096, 64, static_cast<int64_t>(best())})->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
