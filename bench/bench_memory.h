#pragma once
// Memory figures the decode benchmarks compare against: the last-level cache size
// (to size cold weight copies) and the all-core read bandwidth (decode is bound by it).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace {

// Bytes of the last-level cache (at least 8 MiB), from Google Benchmark's probe.
int64_t llc_bytes() {
  int64_t bytes = 8 << 20;
  for (const auto& c : benchmark::CPUInfo::Get().caches) {
    if (c.level >= 3) bytes = std::max<int64_t>(bytes, c.size);
  }
  return bytes;
}

// All-core read bandwidth from memory (bytes/s), measured once over a buffer four
// times the last-level cache. Integer sums: they vectorize (a float sum would not,
// being order-sensitive) and so stay memory-bound.
double read_bandwidth() {
  static double bw = 0.0;
  if (bw > 0.0) return bw;
  const int64_t count = std::max<int64_t>(int64_t{512} << 20, 4 * llc_bytes()) / 8;
  std::vector<uint64_t> data(count);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) data[i] = static_cast<uint64_t>(i);
  double best = 0.0;
  for (int rep = 0; rep < 4; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    uint64_t total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (int64_t i = 0; i < count; ++i) total += data[i];
    benchmark::DoNotOptimize(total);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 8.0 * count / s);
  }
  bw = best;
  return bw;
}

}  // namespace
