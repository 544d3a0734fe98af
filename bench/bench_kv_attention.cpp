// Decode attention over an FP32 KV cache (causal_attention_kv with FP32 sources, as the
// CPU backend runs it) vs the packed int4 / int8 cache (causal_attention_quant_kv), at context 512 and 2048, for SmolLM2-135M
// (9 query heads, 3 KV heads x 64, 30 layers) and a 7B-class shape (32 / 8 x 128,
// 32 layers). Every layer has its own cache and the benchmark visits the layers in
// turn, as a decode step does, so the caches compete for the CPU caches as in the
// model (one iteration = one layer). Counters: KV bytes read per token for one
// layer and for all layers, and that traffic as a rate. Prefill rows (512 or 2048 new
// tokens on an empty cache) compare the FP32 cache, the int4 cache with FP32 products
// and with int8 products. code_tiles: decode's two kernels alone on one 128-position
// tile (one thread, hot in L1), FP32 (AVX2) against the integer ones, with a "min"
// statistic beside the median for noisy machines.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/rng.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/fake_quant.h"
#include "kernels/cpu/kv_attention.h"
#include "kernels/cpu/kv_code_tiles.h"
#include "kernels/cpu/kv_prefill_int8.h"
#include "kernels/cpu/kv_store_q.h"

namespace {

using namespace quarot;

std::vector<float> normal(int64_t count, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = static_cast<float>(rng.normal());
  return v;
}

// Args: heads, kv_heads, head_dim, layers, context, bits (0 = FP32 cache), new rows,
// products (0 = FP32, 1 = int8 where the CPU has VNNI: KvProducts).
void BM_Attention(benchmark::State& state) {
  const int64_t heads = state.range(0), kv_heads = state.range(1), hd = state.range(2), layers = state.range(3);
  const int64_t ctx = state.range(4), n = state.range(6);
  const int bits = static_cast<int>(state.range(5));
  const KvProducts products = state.range(7) != 0 ? KvProducts::kInt8 : KvProducts::kFloat;
  const int64_t kvd = kv_heads * hd, pos0 = ctx - n;
  const AttentionShape shape{heads, kv_heads, hd};
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const auto q = normal(n * heads * hd, 1);
  const auto rows = normal(ctx * kvd, 2);
  const bool fp32 = bits <= 0;  // -1: the same FP32 cache through causal_attention's direct loop
  const QuantKvLayout layout{kv_heads, hd, 0, fp32 ? 4 : bits, false, 0.95f};
  std::vector<std::vector<float>> kf, vf;
  std::vector<QuantKvLayerStore> kq, vq;
  for (int64_t l = 0; l < layers; ++l) {
    if (fp32) {
      kf.push_back(rows);
      vf.push_back(rows);
    } else {
      kq.emplace_back(layout, ctx);
      vq.emplace_back(layout, ctx);
      kq.back().append(rows.data(), ctx, 0, true);
      vq.back().append(rows.data(), ctx, 0, true);
    }
  }
  std::vector<float> out(static_cast<size_t>(n * heads * hd));
  int64_t layer = 0;
  for (auto _ : state) {
    if (bits == -1)
      causal_attention(q.data(), n, pos0, kf[layer].data(), vf[layer].data(), shape, scale, out.data());
    else if (bits == 0)
      causal_attention_kv(q.data(), n, pos0, KvSource{nullptr, kf[layer].data()}, KvSource{nullptr, vf[layer].data()},
                          shape, scale, out.data());
    else
      causal_attention_kv(q.data(), n, pos0, KvSource{&kq[layer], nullptr}, KvSource{&vq[layer], nullptr}, shape, scale,
                          out.data(), products);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
    layer = (layer + 1) % layers;
  }
  const double bytes = 2.0 * ctx * (fp32 ? 4.0 * kvd : static_cast<double>(layout.bytes_per_position()));
  state.counters["KV_bytes"] = bytes;                     // one layer, one step
  state.counters["KV_bytes_model"] = bytes * layers;     // every layer: one decode token
  state.counters["B/s"] =
      benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1024);
  state.counters["threads"] = omp_get_max_threads();
  state.SetLabel(std::string(bits == -1 ? "fp32 cache, direct loop" : bits == 0 ? "fp32 cache" : "int" + std::to_string(bits) + " cache") + ", " +
                 isa_name(best_isa()) + (bits > 0 ? (state.range(7) != 0 ? ", int8 products" : ", fp32 products") : ""));
}

void register_decode(benchmark::internal::Benchmark* b) {
  // Short contexts: the start of a decode from an empty prompt, where per-call costs dominate.
  for (const int64_t ctx : {16, 64, 128})
    for (const int int8 : {0, 1}) b->Args({9, 3, 64, 30, ctx, 4, 1, int8});
  for (const int64_t ctx : {512, 2048})
    for (const int bits : {-1, 0, 4, 8}) {
      b->Args({9, 3, 64, 30, ctx, bits, 1, 0});
      b->Args({32, 8, 128, 32, ctx, bits, 1, 0});
      if (bits == 4) {
        b->Args({9, 3, 64, 30, ctx, bits, 1, 1});
        b->Args({32, 8, 128, 32, ctx, bits, 1, 1});
      }
    }
}

BENCHMARK(BM_Attention)
    ->Name("decode_attention")
    ->ArgNames({"heads", "kv", "hd", "layers", "ctx", "bits", "n", "int8"})
    ->Apply(register_decode)
    ->UseRealTime();
BENCHMARK(BM_Attention)
    ->Name("prefill_attention")
    ->ArgNames({"heads", "kv", "hd", "layers", "ctx", "bits", "n", "int8"})
    ->Args({9, 3, 64, 2, 512, 0, 512, 0})
    ->Args({9, 3, 64, 2, 512, 4, 512, 0})
    ->Args({9, 3, 64, 2, 512, 4, 512, 1})
    ->Args({9, 3, 64, 2, 2048, 4, 2048, 0})
    ->Args({9, 3, 64, 2, 2048, 4, 2048, 1})
    ->Args({32, 8, 128, 2, 2048, 4, 2048, 0})
    ->Args({32, 8, 128, 2, 2048, 4, 2048, 1})
    ->UseRealTime();

// Args: head_dim, query vectors, kernels (0 = FP32 AVX2, 1 = integer), 0 = scores /
// 1 = weighted sum. One 128-position tile of a 4-bit cache, one group per head.
void BM_CodeTiles(benchmark::State& state) {
  const int64_t hd = state.range(0), nq = state.range(1), rows = 128;
  const bool integer = state.range(2) != 0, values = state.range(3) != 0;
  const kv_detail::CodeTileKernels* k = integer
                                            ? kv_detail::code_tile_kernels_int8_for(best_isa(), hd, hd, true)
                                            : kv_detail::code_tile_kernels_for(Isa::kAvx2, hd, hd);
  if (k == nullptr || !isa_supported(Isa::kAvx2)) {
    state.SkipWithError("kernels not available on this CPU");
    return;
  }
  QuantKvLayerStore store(QuantKvLayout{1, hd, 0, 4, false, 0.95f}, rows);
  const auto x = normal(rows * hd, 5);
  store.append(x.data(), rows, 0, false);
  const kv_detail::CodeRows cr{store.codes(0, 0), store.params(0, 0), rows, hd, hd, true};
  const auto q = normal(nq * hd, 6);
  auto p = normal(nq * rows, 7);
  for (float& v : p) v = std::exp(2.0f * v);
  std::vector<float> out(static_cast<size_t>(nq * std::max(rows, hd)));
  std::vector<float> work(static_cast<size_t>(kv_detail::work_floats(nq, rows, hd)));
  for (auto _ : state) {
    if (values)
      k->weighted_sum(p.data(), nq, rows, cr, out.data(), work.data());
    else
      k->scores(q.data(), nq, cr, 0.125f, out.data(), rows, work.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(std::string(integer ? "integer" : "fp32 avx2") + (values ? ", weighted sum" : ", scores"));
}

BENCHMARK(BM_CodeTiles)
    ->Name("code_tiles")
    ->ArgNames({"hd", "nq", "int", "values"})
    ->ArgsProduct({{64, 128}, {3}, {0, 1}, {0, 1}})
    ->ComputeStatistics("min", [](const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); });

// Args: head_dim, query vectors, kernels (0 = AVX-512 VNNI, 1 = AMX), 0 = scores / 1 =
// weighted sum, 2 = softmax rows (softmax_rows, what the prefill calls), 3 = the same
// rows one softmax_row call each (how the prefill called them before). One 64-key tile of the int8 prefill (kv_prefill_int8.h),
// one thread: the per-tile calls of attention_prefill_int8 for one query block.
void BM_PrefillInt8(benchmark::State& state) {
  const int64_t hd = state.range(0), nq = state.range(1), keys = kv_detail::kPrefillKeys;
  const bool amx = state.range(2) != 0;
  const int64_t what = state.range(3);
  if (!isa_supported(amx ? Isa::kAmx : Isa::kAvx512Vnni)) {
    state.SkipWithError(isa_unsupported_reason(amx ? Isa::kAmx : Isa::kAvx512Vnni).c_str());
    return;
  }
  const kv_detail::PrefillInt8Kernels& k =
      amx ? kv_detail::prefill_int8_kernels_amx() : kv_detail::prefill_int8_kernels_avx512vnni();
  const int64_t tile = kv_detail::prefill_int8_tile_bytes(hd);
  const auto kv = normal(keys * hd, 8), q = normal(nq * hd, 9);
  std::vector<int8_t> kq(tile), vq(tile);
  std::vector<float> kscale(keys), vscale(keys), qfactor(nq), wscale(nq, 0.001f), m(nq);
  std::vector<int32_t> kcorr(keys);
  k.quantize_keys(kv.data(), keys, hd, hd, 0, nullptr, kq.data(), kscale.data(), kcorr.data());
  k.quantize_values(kv.data(), keys, hd, hd, 0, nullptr, vq.data(), vscale.data());
  const int64_t rows = (nq + 15) / 16 * 16;
  std::vector<uint8_t> qu(rows * hd), u(rows * keys);
  k.quantize_queries(q.data(), nq, hd, 0.125f, qu.data(), qfactor.data());
  std::vector<float> s(nq * keys), o(nq * hd, 0.0f), sums(nq);
  const std::vector<int64_t> visible(nq, keys);
  if (k.begin != nullptr) k.begin();
  k.scores(qu.data(), nq, hd, kq.data(), kcorr.data(), kscale.data(), keys, qfactor.data(), s.data(), keys);
  for (auto _ : state) {
    if (what == 0) {
      k.scores(qu.data(), nq, hd, kq.data(), kcorr.data(), kscale.data(), keys, qfactor.data(), s.data(), keys);
    } else if (what == 1) {
      k.weighted_sum(u.data(), nq, keys, vq.data(), keys, hd, wscale.data(), o.data());
    } else if (what == 2) {
      std::fill(m.begin(), m.end(), -INFINITY);
      k.softmax_rows(s.data(), keys, nq, visible.data(), vscale.data(), m.data(), u.data(), keys, wscale.data(),
                     sums.data());
    } else {
      for (int64_t i = 0; i < nq; ++i) {
        m[i] = -INFINITY;
        sums[i] = k.softmax_row(s.data() + i * keys, keys, vscale.data(), &m[i], u.data() + i * keys, &wscale[i]);
      }
    }
    benchmark::DoNotOptimize(s.data());
    benchmark::DoNotOptimize(o.data());
    benchmark::ClobberMemory();
  }
  if (k.end != nullptr) k.end();
  state.SetLabel(std::string(amx ? "amx" : "avx512vnni") + (what == 0   ? ", scores"
                                                      : what == 1 ? ", weighted sum"
                                                      : what == 2 ? ", softmax rows"
                                                                  : ", softmax rows one call each"));
}

BENCHMARK(BM_PrefillInt8)
    ->Name("prefill_int8_tile")
    ->ArgNames({"hd", "nq", "amx", "what"})
    ->ArgsProduct({{64, 128}, {48}, {0, 1}, {0, 1, 2, 3}});

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("cpu", quarot::cpu_description());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
