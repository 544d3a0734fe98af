// Decode attention over an FP32 KV cache (causal_attention_kv with FP32 sources, as the
// CPU backend runs it) vs the packed int4 / int8 cache (causal_attention_quant_kv), at context 512 and 2048, for SmolLM2-135M
// (9 query heads, 3 KV heads x 64, 30 layers) and a 7B-class shape (32 / 8 x 128,
// 32 layers). Every layer has its own cache and the benchmark visits the layers in
// turn, as a decode step does, so the caches compete for the CPU caches as in the
// model (one iteration = one layer). Counters: KV bytes read per token for one
// layer and for all layers, and that traffic as a rate. Prefill rows (512 or 2048 new
// tokens on an empty cache) compare the FP32 cache, the int4 cache with FP32 products
// and with int8 products.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "common/rng.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/fake_quant.h"
#include "kernels/cpu/kv_attention.h"
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
// prefill products (0 = FP32, 1 = int8 where the CPU has VNNI: KvPrefillProducts).
void BM_Attention(benchmark::State& state) {
  const int64_t heads = state.range(0), kv_heads = state.range(1), hd = state.range(2), layers = state.range(3);
  const int64_t ctx = state.range(4), n = state.range(6);
  const int bits = static_cast<int>(state.range(5));
  const KvPrefillProducts products = state.range(7) != 0 ? KvPrefillProducts::kInt8 : KvPrefillProducts::kFloat;
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
                 isa_name(best_isa()) + (n >= 16 && bits > 0 ? (state.range(7) != 0 ? ", int8 products" : ", fp32 products") : ""));
}

void register_decode(benchmark::internal::Benchmark* b) {
  // Short contexts: the start of a decode from an empty prompt, where per-call costs dominate.
  for (const int64_t ctx : {16, 64, 128}) b->Args({9, 3, 64, 30, ctx, 4, 1, 0});
  for (const int64_t ctx : {512, 2048})
    for (const int bits : {-1, 0, 4, 8}) {
      b->Args({9, 3, 64, 30, ctx, bits, 1, 0});
      b->Args({32, 8, 128, 32, ctx, bits, 1, 0});
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

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("cpu", quarot::cpu_description());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
