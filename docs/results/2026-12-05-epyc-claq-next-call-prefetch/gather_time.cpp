// Hot timing of the CLAQ gather kernel alone and of a whole 1-row codebook_int8_gemv call.
#include <chrono>
#include <cstdio>
#include <vector>
#include <omp.h>
#include "common/rng.h"
#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/codebook_int8.h"
#include "kernels/cpu/codebook_int8_kernels.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/weight_encoding.h"
namespace quarot::codebook_int8_detail { const Int8Kernels& int8_kernels_avx512vbmi(); }
using namespace quarot;
WeightEncoding make_codebook(int64_t rows, int64_t cols) {
  Rng rng(3);
  std::vector<uint8_t> bits(cols);
  for (auto& b : bits) b = rng.uniform() < 0.06 ? 4 : 2;
  std::vector<float> centroids;
  for (int64_t c = 0; c < cols; ++c)
    for (int i = 0; i < (1 << bits[c]); ++i) centroids.push_back(static_cast<float>(rng.uniform() * 0.2 - 0.1));
  std::vector<uint8_t> idx(rows * cols);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) idx[r * cols + c] = static_cast<uint8_t>(rng.below(uint64_t{1} << bits[c]));
  return make_codebook_weight(rows, cols, bits, centroids, idx, {});
}
template <class F> double best_ns(F f, int reps = 20000) {
  double best = 1e30;
  for (int r = 0; r < 7; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) f();
    auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double, std::nano>(t1 - t0).count() / reps);
  }
  return best;
}
int main() {
  omp_set_num_threads(1);
  for (auto [rows, cols] : {std::pair<int64_t,int64_t>{576, 576}, {576, 1536}}) {
    CodebookInt8Weight w = pack_codebook_int8(make_codebook(rows, cols), 16);
    std::vector<float> x(cols);
    Rng rng(5);
    for (auto& v : x) v = static_cast<float>(rng.uniform() - 0.5);
    QuantizedActivations a;
    quantize_activations(x.data(), 1, cols, nullptr, ActQuantSpec{8, 1.0f, 0, true}, a, detected_isa());
    std::vector<int8_t> xs(w.slots + 64);
    std::vector<int32_t> corr(w.groups() + 16);
    codebook_int8_detail::GatherArgs g;
    g.codes = a.row(0); g.offset = a.offsets[0]; g.slot_column = w.slot_column.data();
    g.lo = w.gather_lo.data(); g.block = w.gather_block.data(); g.slots = w.slots; g.cols = cols; g.group = w.group;
    g.xs = xs.data(); g.corr = corr.data();
    const auto& k = codebook_int8_detail::int8_kernels_avx512vbmi();
    double tg = best_ns([&] { k.gather(g); asm volatile("" ::: "memory"); });
    // Cold: 64 MB streamed between gathers (what a decode step's weights do), timed alone.
    static std::vector<char> big(64 << 20, 1);
    double cold = 1e30, coldpf = 1e30;
    for (int r = 0; r < 30; ++r) {
      long sum = 0;
      for (size_t i = 0; i < big.size(); i += 64) sum += big[i];
      asm volatile("" :: "r"(sum));
      auto t0 = std::chrono::steady_clock::now();
      k.gather(g);
      auto t1 = std::chrono::steady_clock::now();
      cold = std::min(cold, std::chrono::duration<double, std::nano>(t1 - t0).count());
      for (size_t i = 0; i < big.size(); i += 64) sum += big[i];
      asm volatile("" :: "r"(sum));
      const CodebookInt8Weight* ws[1] = {&w};
      t0 = std::chrono::steady_clock::now();
      codebook_int8_prefetch_inputs(ws, 1);
      k.gather(g);
      t1 = std::chrono::steady_clock::now();
      coldpf = std::min(coldpf, std::chrono::duration<double, std::nano>(t1 - t0).count());
    }
    std::printf("cold gather %.1f ns, cold with prefetch_inputs %.1f ns\n", cold, coldpf);
    auto touch = [](const void* p, size_t n) { long s = 0; for (size_t i = 0; i < n; i += 64) s += static_cast<const char*>(p)[i]; asm volatile("" :: "r"(s)); };
    const char* names[] = {"maps", "codes", "xs+corr", "all"};
    for (int v = 0; v < 4; ++v) {
      double best = 1e30;
      for (int r = 0; r < 30; ++r) {
        long sum = 0;
        for (size_t i = 0; i < big.size(); i += 64) sum += big[i];
        asm volatile("" :: "r"(sum));
        if (v == 0 || v == 3) { touch(g.lo, w.slots); touch(g.block, w.slots); }
        if (v == 1 || v == 3) touch(g.codes, cols);
        if (v == 2 || v == 3) { touch(g.xs, w.slots); touch(g.corr, w.groups() * 4); }
        auto t0 = std::chrono::steady_clock::now();
        k.gather(g);
        auto t1 = std::chrono::steady_clock::now();
        best = std::min(best, std::chrono::duration<double, std::nano>(t1 - t0).count());
      }
      std::printf("  cold but %s warm: %.1f ns\n", names[v], best);
    }
    std::vector<float> y(rows);
    CodebookInt8Product p{&w, nullptr, nullptr, y.data()};
    double tc = best_ns([&] { codebook_int8_gemv(&p, 1, a); asm volatile("" ::: "memory"); }, 2000);
    std::printf("%lldx%lld slots %lld: gather %.1f ns, whole 1-thread call %.1f ns\n", (long long)rows, (long long)cols,
                (long long)w.slots, tg, tc);
  }
}
