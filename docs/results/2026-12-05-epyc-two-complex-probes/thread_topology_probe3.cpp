#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <sys/mman.h>
#include <unistd.h>
#include <ctime>
#include <omp.h>
#include <atomic>
#include <vector>
#include <utility>
#include <immintrin.h>
using clk = std::chrono::steady_clock;
static double secs(clk::time_point t0) { return std::chrono::duration<double>(clk::now() - t0).count(); }
static double probe(const float* buf, int64_t n) {
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = clk::now(); float total = 0;
#pragma omp parallel reduction(+ : total)
    { float acc[16] = {};
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; i += 16) {
#pragma omp simd
        for (int j = 0; j < 16; ++j) acc[j] += buf[i + j]; }
      for (float a : acc) total += a; }
    double s = secs(t0); if (total == -1.0f) abort();
    best = std::max(best, n * 4.0 / s / 1e9);
  }
  return best;
}
// Dependent loads over a random cyclic permutation of 64-byte lines in 256 MiB (2 MiB
// pages): DRAM latency as one thread sees it, on each thread in turn.
static double chase_ns(int thread) {
  static std::vector<uint32_t>* next = nullptr;
  const int64_t lines = (256ll << 20) / 64;
  static uint64_t* buf = nullptr;
  if (buf == nullptr) {
    buf = (uint64_t*)aligned_alloc(2 << 20, lines * 64);
    madvise(buf, lines * 64, MADV_HUGEPAGE);
    std::vector<uint32_t> order(lines);
    for (int64_t i = 0; i < lines; ++i) order[i] = (uint32_t)i;
    uint64_t x = 88172645463325252ull;
    for (int64_t i = lines - 1; i > 0; --i) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; std::swap(order[i], order[x % (i + 1)]); }
    for (int64_t i = 0; i < lines; ++i) buf[(int64_t)order[i] * 8] = (uint64_t)order[(i + 1) % lines] * 8;
  }
  (void)next;
  double result = 0;
#pragma omp parallel num_threads(2)
  {
    if (omp_get_thread_num() == thread) {
      uint64_t p = 0;
      const int steps = 2000000;
      auto t0 = clk::now();
      for (int i = 0; i < steps; ++i) p = buf[p];
      result = secs(t0) / steps * 1e9;
      if (p == 12345678901ull) abort();
    }
  }
  return result;
}
static double compute_ns() {
  double worst = 0;
#pragma omp parallel num_threads(2) reduction(max : worst)
  {
    __m512i v[8]; for (int i = 0; i < 8; ++i) v[i] = _mm512_set1_epi32(i * 77 + omp_get_thread_num());
    const __m512i t = _mm512_set1_epi32(0x03020100);
    auto t0 = clk::now();
    for (long k = 0; k < 20000000; ++k) {
#pragma GCC unroll 8
      for (int i = 0; i < 8; ++i) v[i] = _mm512_permutexvar_epi8(v[i], t);
    }
    double s = secs(t0) / 20000000 / 8 * 1e9;
    __m512i r = v[0]; for (int i = 1; i < 8; ++i) r = _mm512_xor_si512(r, v[i]);
    if (_mm512_reduce_add_epi32(r) == 12345) abort();
    worst = s;
  }
  return worst;
}
int main(int argc, char** argv) {
  int64_t bytes = 512ll << 20; int rounds = argc > 1 ? atoi(argv[1]) : 10;
  float* f = (float*)aligned_alloc(2 << 20, bytes); madvise(f, bytes, MADV_HUGEPAGE);
#pragma omp parallel for
  for (int64_t i = 0; i < bytes / 4; ++i) f[i] = float(i & 1023);
  alignas(64) static std::atomic<int> flag{0};
  for (int r = 0; r < rounds; ++r) {
    double pr = probe(f, bytes / 4);
    // empty regions
    auto t0 = clk::now(); int sink = 0;
    for (int i = 0; i < 20000; ++i) {
#pragma omp parallel reduction(+ : sink)
      { sink += omp_get_thread_num(); }
    }
    double region_us = secs(t0) / 20000 * 1e6;
    // cache-line ping-pong between the two threads: round trips per second
    const int n = 200000;
    t0 = clk::now();
#pragma omp parallel num_threads(2)
    {
      int id = omp_get_thread_num();
      for (int i = 0; i < n; ++i) {
        if (id == 0) { while (flag.load(std::memory_order_acquire) != 2 * i) {} flag.store(2 * i + 1, std::memory_order_release); }
        else { while (flag.load(std::memory_order_acquire) != 2 * i + 1) {} flag.store(2 * i + 2, std::memory_order_release); }
      }
    }
    double rt_ns = secs(t0) / n * 1e9;
    flag = 0;
    double cns = compute_ns(); time_t now = time(nullptr); char ts[16]; strftime(ts, 16, "%H:%M:%S", gmtime(&now)); double l0 = chase_ns(0), l1 = chase_ns(1); printf("%s probe %.1f GB/s | empty region %.2f us | line round trip %.0f ns | vpermb %.3f ns | DRAM latency thread 0 %.0f ns, thread 1 %.0f ns\n", ts, pr, region_us, rt_ns, cns, l0, l1);
    fflush(stdout); usleep(1500000);
  }
}
