// Where packed weights live (kernels/cpu/weight_arena.h): the same decode products read
// from huge-page weight memory and from 4 KiB heap pages, alternating in one process so
// a shared machine's drift hits both alike. Two workloads at SmolLM2's shapes:
//   layers   30 layers of W4A4 decode products (q/k/v 960x576, o 576x576, gate/up
//            3072x576, down 576x1536; two full weight sets, 2 x 53 MB, so every token
//            reads from DRAM), one "token" = the 120 products; per-product medians too;
//   lm_head  the 49152 x 576 weight-only GEMV, F16 and int8.
// Prints JSON: median and 25th percentile (us) per placement, and the ratio.
// Run: <dir>/bench/bench_weight_memory [tokens=200]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/rng.h"
#include "common/threads.h"
#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/int_gemm.h"
#include "kernels/cpu/weight_arena.h"
#include "kernels/cpu/weight_only_gemm.h"

namespace {

using namespace quarot;
using Clock = std::chrono::steady_clock;

double us_since(Clock::time_point t0) { return std::chrono::duration<double, std::micro>(Clock::now() - t0).count(); }

template <typename T>
AlignedArray<T> heap_copy(const AlignedArray<T>& a) {
  AlignedArray<T> b(a.size(), Placement::kHeap);
  if (a.size() > 0) std::memcpy(b.data(), a.data(), static_cast<size_t>(a.size()) * sizeof(T));
  return b;
}

struct Stat {
  double median, p25;
};
Stat stat(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v[v.size() / 4]};
}

std::string stat_json(const char* name, const Stat& huge, const Stat& heap) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "\"%s\": {\"weight_memory_us\": %.1f, \"weight_memory_p25_us\": %.1f, \"heap_us\": %.1f, "
                "\"heap_p25_us\": %.1f, \"heap_over_weight_memory\": %.3f}",
                name, huge.median, huge.p25, heap.median, heap.p25, heap.median / huge.median);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  const int tokens = argc > 1 ? std::max(10, std::atoi(argv[1])) : 200;
  const Isa isa = best_isa();
  Rng rng(1);
  struct Shape {
    const char* name;
    int64_t n, k;
  };
  const Shape shapes[4] = {{"q_proj+k_proj+v_proj", 960, 576}, {"o_proj", 576, 576}, {"gate_proj+up_proj", 3072, 576},
                           {"down_proj", 576, 1536}};
  constexpr int kLayers = 30;
  std::vector<IntGemmWeight> sets[2];  // 0: weight memory, 1: heap copies
  for (int s = 0; s < 2; ++s)
    for (int l = 0; l < kLayers; ++l)
      for (const Shape& sh : shapes) {
        std::vector<uint8_t> codes(static_cast<size_t>(sh.n * sh.k / 2));
        for (auto& c : codes) c = static_cast<uint8_t>(rng.next_u64());
        std::vector<float> scales(static_cast<size_t>(sh.n), 0.01f);
        IntGemmWeight w = pack_int_gemm_weight(IntWeightSource{sh.n, sh.k, 4, 0, codes.data(), scales.data(), nullptr}, isa);
        if (s == 1) {
          w.data = heap_copy(w.data);
          w.scales = heap_copy(w.scales);
          w.zero_terms = heap_copy(w.zero_terms);
          w.sums = heap_copy(w.sums);
          w.zeros = heap_copy(w.zeros);
        }
        sets[s].push_back(std::move(w));
      }
  std::vector<float> x(1536), y(49152);
  for (auto& v : x) v = static_cast<float>(2.0 * rng.uniform() - 1.0);
  const ActQuantSpec spec{4, 1.0f, 0, true};
  QuantizedActivations q576, q1536;
  quantize_activations(x.data(), 1, 576, nullptr, spec, q576, isa);
  quantize_activations(x.data(), 1, 1536, nullptr, spec, q1536, isa);

  std::vector<double> token[2], per[2][4];
  for (int it = 0; it < 2 * tokens; ++it) {
    const int s = it % 2;
    double total = 0.0;
    for (int l = 0; l < kLayers; ++l)
      for (int j = 0; j < 4; ++j) {
        const auto t0 = Clock::now();
        int_gemm(sets[s][l * 4 + j], j == 3 ? q1536 : q576, nullptr, nullptr, y.data());
        const double us = us_since(t0);
        per[s][j].push_back(us);
        total += us;
      }
    token[s].push_back(total);
  }

  // lm_head: one weight in weight memory, one heap copy of it, F16 then int8.
  const int64_t rows = 49152, cols = 576;
  std::string lm_json;
  for (const bool f16 : {true, false}) {
    const int64_t bytes = rows * cols * (f16 ? 2 : 1);
    AlignedBytes a(bytes, Placement::kWeights), b(bytes, Placement::kHeap);
    for (int64_t i = 0; i < bytes; ++i) a.data()[i] = static_cast<uint8_t>(rng.next_u64() & (f16 ? 0x3b : 0xff));
    std::memcpy(b.data(), a.data(), static_cast<size_t>(bytes));
    std::vector<float> scales(static_cast<size_t>(rows), 0.01f);
    WeightEncoding e[2];
    for (int s = 0; s < 2; ++s) {
      e[s].kind = f16 ? WeightKind::kF16 : WeightKind::kIntGrid;
      e[s].rows = rows;
      e[s].cols = cols;
      e[s].data = s == 0 ? a.data() : b.data();
      if (!f16) e[s].bits = 8, e[s].symmetric = true, e[s].scales = scales.data();
    }
    std::vector<double> t[2];
    for (int it = 0; it < 2 * std::max(20, tokens / 2); ++it) {
      const int s = it % 2;
      const auto t0 = Clock::now();
      weight_only_gemm(e[s], x.data(), 1, nullptr, y.data(), isa);
      t[s].push_back(us_since(t0));
    }
    lm_json += std::string(lm_json.empty() ? "" : ",\n    ") +
               stat_json(f16 ? "lm_head_f16_49152x576" : "lm_head_int8_49152x576", stat(t[0]), stat(t[1]));
  }

  std::printf("{\n  \"cpu\": \"%s\",\n  \"weight_memory\": \"%s\",\n  \"threads\": %d,\n  \"tokens\": %d,\n",
              cpu_description().c_str(), weight_arena::describe().c_str(), num_threads(), tokens);
  std::printf("  \"layers_w4a4_decode\": {%s,\n    \"products\": {", stat_json("token_30_layers", stat(token[0]), stat(token[1])).c_str());
  for (int j = 0; j < 4; ++j)
    std::printf("%s%s", j ? ",\n      " : "\n      ", stat_json(shapes[j].name, stat(per[0][j]), stat(per[1][j])).c_str());
  std::printf("}},\n  \"weight_only\": {\n    %s\n  }\n}\n", lm_json.c_str());
  return 0;
}
