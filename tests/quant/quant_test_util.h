#pragma once
// Random matrices, calibration-like inputs and exact reference error measures for the quant tests.
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/rng.h"
#include "common/tensor.h"
#include "quant/gptq.h"

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

// Inputs with a few large-variance directions (the first 4 latent dimensions scaled by
// `dominant`) and strong correlation between columns, as LLM activations have.
inline Tensor correlated_inputs(int64_t n, int64_t dim, uint64_t seed, float dominant) {
  Rng rng(seed);
  const Tensor mix = random_matrix(dim, dim, seed + 1, 1.0f / std::sqrt(static_cast<float>(dim)));
  Tensor x({n, dim});
  std::vector<float> z(dim);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t k = 0; k < dim; ++k) z[k] = static_cast<float>(rng.normal()) * (k < 4 ? dominant : 1.0f);
    for (int64_t j = 0; j < dim; ++j) {
      float s = z[j];
      for (int64_t k = 0; k < dim; ++k) s += mix.at(j, k) * z[k];
      x.at(t, j) = s;
    }
  }
  return x;
}

// GPTQ's Hessian 2 X^T X / N of the rows of x.
inline std::vector<double> hessian_of(const Tensor& x) {
  HessianAccumulator acc(x.cols());
  acc.add(x.data.data(), x.rows(), x.cols());
  return acc.finalize();
}

}  // namespace quarot::test
