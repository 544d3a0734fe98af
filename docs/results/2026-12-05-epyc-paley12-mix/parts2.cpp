#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <utility>
#include <vector>
#include "kernels/cpu/act_quant_kernels.h"
#include "kernels/cpu/fwht_kernels.h"
#include "spec.h"
using namespace quarot;
using namespace quarot::act_quant_detail;
int main() {
  const ActQuantKernels& k = act_quant_kernels_avx512();
  const int n = 1536, kk = 12, block = 128;
  std::vector<float> x(n), buf(n), mixed(n), mixed2(n), signs(kk * kk), m(kk * kk);
  std::mt19937 rng(1); std::normal_distribution<float> nd;
  for (auto& v : x) v = nd(rng);
  for (int i = 0; i < kk * kk; ++i) { signs[i] = kSigns.s[i / 12][i % 12]; m[i] = signs[i] * 0.288675f; }
  std::vector<uint8_t> codes(n);
  auto time = [&](const char* name, auto f) {
    for (int i = 0; i < 1000; ++i) f();
    double best = 1e30;
    for (int r = 0; r < 5; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      const int it = 50000;
      for (int i = 0; i < it; ++i) f();
      double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / it;
      best = ns < best ? ns : best;
    }
    std::printf("%-10s %8.1f ns per row\n", name, best);
  };
  volatile float sink = 0;
  time("memcpy", [&] { std::memcpy(buf.data(), x.data(), n * 4); sink = buf[5]; });
  time("fwht+cpy", [&] { std::memcpy(buf.data(), x.data(), n*4); for (int a = 0; a < kk; ++a) fwht_detail::fwht_contiguous_avx512(buf.data() + a * block, block); sink = buf[7]; });
  time("mix", [&] { k.mix(m.data(), signs.data(), 0.288675f, kk, x.data(), block, 0.0883883f, mixed.data()); sink = mixed[3]; });
  time("mix_spec", [&] { mix_spec(x.data(), block, 0.0883883f, 0.288675f, mixed2.data()); sink = mixed2[3]; });
  int bad = 0; for (int i = 0; i < n; ++i) bad += std::memcmp(&mixed[i], &mixed2[i], 4) != 0 && mixed[i] != 0.0f;
  std::printf("mismatches %d\n", bad);
  float amax = 0;
  time("absmax", [&] { k.finite_abs_max(mixed.data(), n, &amax); sink = amax; });
  const float s = amax * 0.9f / 7;
  time("encode", [&] { sink = k.encode(mixed.data(), n, s, 0.f, -8.f, 7.f, 8, codes.data()); });
}
