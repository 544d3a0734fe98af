// Decode-shaped re-reads of the SAME weights every token (as a model does): layers' products
// as separate OpenMP regions, then the lm_head; variants mark parts non-temporal (prefetchnta)
// so the L3 may keep the rest across tokens.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <immintrin.h>
#include <sys/mman.h>
#include <unistd.h>
#include <omp.h>
#include <vector>
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
template <bool NTA>
static int stream_part(const uint8_t* q, int64_t bytes, const uint8_t* a) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  __m512i acc0 = _mm512_setzero_si512(), acc1 = acc0;
  for (int64_t off = 0; off + 64 <= bytes; off += 64) {
    if (NTA) _mm_prefetch((const char*)(q + off + 2048), _MM_HINT_NTA);
    __m512i v = _mm512_load_si512(q + off);
    int32_t av; memcpy(&av, a + ((off / 16) & 1023), 4);
    __m512i b = _mm512_set1_epi32(av);
    acc0 = _mm512_dpbusd_epi32(acc0, b, _mm512_and_si512(v, low4));
    acc1 = _mm512_dpbusd_epi32(acc1, b, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4));
  }
  return _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
}
struct Prod { int64_t off, size; bool nta; };
static double decode(const uint8_t* w, const std::vector<Prod>& ps, int tokens, const uint8_t* a) {
  int64_t total = 0; int sink = 0;
  for (auto& p : ps) total += p.size;
  auto t0 = clk::now();
  for (int t = 0; t < tokens; ++t)
    for (const Prod& p : ps) {
#pragma omp parallel reduction(+ : sink)
      {
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        int64_t per = (p.size / nt) / 64 * 64;
        const uint8_t* q = w + p.off + id * per;
        int64_t n = id == nt - 1 ? p.size - id * per : per;
        sink += p.nta ? stream_part<true>(q, n, a) : stream_part<false>(q, n, a);
      }
    }
  double s = secs(t0); if (sink == 12345) puts("");
  return total * tokens / s / 1e9;
}
int main(int argc, char** argv) {
  int64_t bytes = 512ll << 20; int rounds = argc > 1 ? atoi(argv[1]) : 10;
  float* f = (float*)aligned_alloc(2 << 20, bytes); madvise(f, bytes, MADV_HUGEPAGE);
  uint8_t* w = (uint8_t*)aligned_alloc(2 << 20, 256ll << 20); madvise(w, 256ll << 20, MADV_HUGEPAGE);
  uint8_t a[2048]; for (int i = 0; i < 2048; ++i) a[i] = i * 7;
#pragma omp parallel for
  for (int64_t i = 0; i < bytes / 4; ++i) f[i] = float(i & 1023);
#pragma omp parallel for
  for (int64_t i = 0; i < (256ll << 20); ++i) w[i] = uint8_t(i * 2654435761u >> 13);
  auto model = [](int nta_from_layer, bool nta_head) {
    std::vector<Prod> ps; int64_t off = 0;
    auto add = [&](int64_t sz, bool nta) { ps.push_back({off, sz, nta}); off += (sz + 4095) / 4096 * 4096; };
    for (int l = 0; l < 30; ++l) {
      bool nta = l >= nta_from_layer;
      add((576 + 384) * 576 / 2, nta); add(576 * 576 / 2, nta); add(2 * 1536 * 576 / 2, nta); add(576 * 1536 / 2, nta);
    }
    add(49152ll * 576 * 2, nta_head);
    return ps;
  };
  const auto plain = model(99, false), head_nta = model(99, true), half = model(15, true), third = model(10, true), all = model(0, true);
  for (int r = 0; r < rounds; ++r) {
    double pr = probe(f, bytes / 4);
    printf("r%d probe %.1f | plain %.1f | lm_head NTA %.1f | layers 15+ & head NTA %.1f | layers 10+ & head NTA %.1f | all NTA %.1f GB/s\n", r, pr,
           decode(w, plain, 6, a), decode(w, head_nta, 6, a), decode(w, half, 6, a), decode(w, third, 6, a), decode(w, all, 6, a));
    fflush(stdout);
  }
}
