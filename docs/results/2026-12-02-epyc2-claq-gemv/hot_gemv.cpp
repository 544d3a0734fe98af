// Hot-cache CLAQ decode GEMV throughput for an old/new comparison: one OpenMP thread,
// one cache-resident weight per shape, best of 7 repetitions of 200 calls timed by the
// thread's CPU time (other processes' load changes it little). Built against either
// branch's kernels library (the API used here is the same on both):
//   g++ -std=c++20 -O2 -march=native -fopenmp -I<checkout>/src hot_gemv.cpp \
//       <build>/libquarot_kernels.a <build>/libquarot_common.a -lfmt -o hot_gemv
// The weights are bench/bench_codebook_gemm.cpp's (same seeds): enc 2/3/4 = every
// column that wide, 21 = 6% 4-bit + 94% 2-bit columns + 0.5% outliers.
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "common/rng.h"
#include "kernels/cpu/codebook_gemm.h"
#include "kernels/weight_encoding.h"

namespace {

double thread_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

quarot::WeightEncoding make_codebook(int64_t rows, int64_t cols, int enc) {
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

}  // namespace

int main() {
  omp_set_num_threads(1);
  const int64_t shapes[][2] = {{576, 576}, {1536, 576}, {576, 1536}};
  std::printf("{\"results\": [\n");
  bool first = true;
  for (const auto& s : shapes)
    for (int enc : {2, 3, 4, 21}) {
      const auto w = quarot::pack_codebook_weight(make_codebook(s[0], s[1], enc));
      std::vector<float> x(s[1], 0.5f), y(s[0]);
      double best = 1e30;
      for (int rep = 0; rep < 7; ++rep) {
        const double t0 = thread_seconds();
        for (int i = 0; i < 200; ++i)
          quarot::codebook_gemm(w, x.data(), 1, nullptr, y.data(), quarot::Isa::kAvx2, quarot::CodebookPath::kLut);
        best = std::min(best, (thread_seconds() - t0) / 200);
      }
      std::printf("%s {\"rows\": %ld, \"cols\": %ld, \"enc\": %d, \"us_per_call\": %.2f, \"ns_per_8_weights\": %.3f}\n",
                  first ? " " : ",", static_cast<long>(s[0]), static_cast<long>(s[1]), enc, best * 1e6,
                  best * 1e9 / (s[0] * s[1] / 8.0));
      first = false;
    }
  std::printf("]}\n");
}
