#pragma once
// Random matrices and exact reference error measures for the quant tests.
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/rng.h"
#include "common/tensor.h"

namespace quarot::test {

inline Tensor random_matrix(int64_t rows, int64_t cols, uint64_t seed, float stddev = 1.0f) {
  Rng rng(seed);
  Tensor t({rows, cols});
  for (float& v : t.data) v = static_cast<float>(rng.normal()) * stddev;
  return t;
}

// sum |a - b|^p in double with std::pow (independent of the library's fast pow).
inline double lp_error(const float* a, const float* b, int64_t n, double p) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += std::pow(std::fabs(static_cast<double>(a[i]) - b[i]), p);
  return s;
}

// ||X A^T - X B^T||_F^2 for X [n, k], A and B [m, k].
inline double output_error(const Tensor& x, const Tensor& a, const Tensor& b) {
  double s = 0.0;
  for (int64_t t = 0; t < x.rows(); ++t) {
    for (int64_t o = 0; o < a.rows(); ++o) {
      double d = 0.0;
      for (int64_t k = 0; k < x.cols(); ++k) d += static_cast<double>(x.at(t, k)) * (a.at(o, k) - b.at(o, k));
      s += d * d;
    }
  }
  return s;
}

}  // namespace quarot::test
