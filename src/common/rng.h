#pragma once
// Seeded randomness. std::mt19937_64 is specified bit-exactly by the standard, but
// the std:: distributions are not, so quarot draws its own uniforms/normals/signs
// from the raw engine: the same seed gives the same rotation on every compiler.
#include <cmath>
#include <cstdint>
#include <random>

namespace quarot {

class Rng {
 public:
  explicit Rng(uint64_t seed) : eng_(seed) {}
  uint64_t next_u64() { return eng_(); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(eng_() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n) { return n == 0 ? 0 : eng_() % n; }
  float sign() { return (eng_() >> 63) ? -1.0f : 1.0f; }
  // Standard normal by Box-Muller.
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = r * std::sin(2.0 * M_PI * u2);
    has_spare_ = true;
    return r * std::cos(2.0 * M_PI * u2);
  }

 private:
  std::mt19937_64 eng_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace quarot
