#pragma once
// Helpers for the kernel tests: seeded random data, double-precision references
// and the list of instruction-set paths this CPU can run.
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/rng.h"
#include "kernels/cpu/cpu_features.h"

namespace quarot::test {

inline std::vector<float> random_floats(int64_t count, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Rng rng(seed);
  std::vector<float> v(count);
  for (auto& x : v) x = static_cast<float>(lo + (hi - lo) * rng.uniform());
  return v;
}

inline std::vector<Isa> supported_isas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni, Isa::kAmx}) {
    if (isa_supported(isa)) isas.push_back(isa);
  }
  return isas;
}

// Sylvester Hadamard H_n (unnormalized), row-major n x n, built from its recursive
// definition rather than from the bit-parity formula the transform relies on.
inline std::vector<double> sylvester_matrix(int64_t n) {
  std::vector<double> h = {1.0};
  for (int64_t size = 1; size < n; size *= 2) {
    std::vector<double> next(4 * size * size);
    for (int64_t r = 0; r < size; ++r) {
      for (int64_t c = 0; c < size; ++c) {
        const double v = h[r * size + c];
        next[r * 2 * size + c] = v;
        next[r * 2 * size + c + size] = v;
        next[(r + size) * 2 * size + c] = v;
        next[(r + size) * 2 * size + c + size] = -v;
      }
    }
    h = std::move(next);
  }
  return h;
}

// Every instruction-set path, supported here or not (tests skip the others by name).
inline std::vector<Isa> all_isas() { return {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni, Isa::kAmx}; }

// A random k x k orthogonal matrix: Gram-Schmidt on Gaussian columns, in double.
inline std::vector<float> random_orthogonal(int64_t k, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> q(k * k);
  for (auto& v : q) v = rng.normal();
  for (int64_t i = 0; i < k; ++i) {  // rows as vectors
    for (int64_t j = 0; j < i; ++j) {
      double d = 0.0;
      for (int64_t t = 0; t < k; ++t) d += q[i * k + t] * q[j * k + t];
      for (int64_t t = 0; t < k; ++t) q[i * k + t] -= d * q[j * k + t];
    }
    double norm = 0.0;
    for (int64_t t = 0; t < k; ++t) norm += q[i * k + t] * q[i * k + t];
    norm = std::sqrt(norm);
    for (int64_t t = 0; t < k; ++t) q[i * k + t] /= norm;
  }
  return std::vector<float>(q.begin(), q.end());
}

}  // namespace quarot::test
