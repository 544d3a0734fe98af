#include <chrono>
#include <cstdio>
#include <cstring>
#include <cmath>
#include <random>
#include <vector>
#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/act_quant_kernels.h"
#include "kernels/cpu/act_quant_mix.h"
using namespace quarot;
int main() {
  std::mt19937 rng(1); std::normal_distribution<float> nd;
  auto time = [&](const char* name, int it, auto f) {
    for (int i = 0; i < 100; ++i) f();
    double best = 1e30;
    for (int r = 0; r < 7; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < it; ++i) f();
      double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / it;
      best = ns < best ? ns : best;
    }
    std::printf("%-28s %10.1f ns\n", name, best);
  };
  std::vector<float> m12(144), m9(81);
  for (int i = 0; i < 144; ++i) m12[i] = act_quant_detail::kPaley12.s[i / 12][i % 12] * (float)(1 / std::sqrt(12.0));
  for (auto& v : m9) v = nd(rng) * 0.3f;
  std::vector<float> x(1536);
  for (auto& v : x) v = nd(rng);
  QuantizedActivations qa;
  OnlineRotation down{12, 128, 1, m12}, o{9, 1, 64, m9}, none{};
  time("1 row down (12x128)", 20000, [&] { quantize_activations(x.data(), 1, 1536, &down, ActQuantSpec{4, 0.9f, 0, true}, qa, Isa::kAvx512); });
  time("1 row o (9x64)", 20000, [&] { quantize_activations(x.data(), 1, 576, &o, ActQuantSpec{4, 0.9f, 0, true}, qa, Isa::kAvx512); });
  time("1 row plain 576", 20000, [&] { quantize_activations(x.data(), 1, 576, &none, ActQuantSpec{4, 0.9f, 0, true}, qa, Isa::kAvx512); });
  time("1 row plain 576 a8", 20000, [&] { quantize_activations(x.data(), 1, 576, &none, ActQuantSpec{8, 1.0f, 0, true}, qa, Isa::kAvx512); });
}
