#include "quant/cholesky.h"

#include <algorithm>
#include <cmath>

#include "common/threads.h"

namespace quarot {

namespace {

constexpr int64_t kBlock = 48;

inline double dot(const double* a, const double* b, int64_t n) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < n; ++k) s += a[k] * b[k];
  return s;
}

}  // namespace

bool cholesky_lower_inplace(std::vector<double>& a, int64_t n) {
  // Left-looking by column panels: bring a panel up to date with every column left
  // of it (the bulk of the work, rows independent), then factor the panel.
  for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const int64_t j1 = std::min(j0 + kBlock, n);
    if (j0 > 0) {
#pragma omp parallel for schedule(dynamic, 16) num_threads(num_threads()) if (n - j0 > 128)
      for (int64_t i = j0; i < n; ++i) {
        const double* li = a.data() + i * n;
        const int64_t c_end = std::min(j1, i + 1);
        int64_t c = j0;
        // Four dot products per pass: independent accumulator chains hide FMA latency.
        for (; c + 4 <= c_end; c += 4) {
          const double *l0 = a.data() + c * n, *l1 = l0 + n, *l2 = l1 + n, *l3 = l2 + n;
          double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
          for (int64_t k = 0; k < j0; ++k) {
            s0 += li[k] * l0[k];
            s1 += li[k] * l1[k];
            s2 += li[k] * l2[k];
            s3 += li[k] * l3[k];
          }
          a[i * n + c] -= s0;
          a[i * n + c + 1] -= s1;
          a[i * n + c + 2] -= s2;
          a[i * n + c + 3] -= s3;
        }
        for (; c < c_end; ++c) a[i * n + c] -= dot(li, a.data() + c * n, j0);
      }
    }
    // Diagonal block, serially.
    for (int64_t c = j0; c < j1; ++c) {
      double* lc = a.data() + c * n;
      const double d = lc[c] - dot(lc + j0, lc + j0, c - j0);
      if (!(d > 0.0) || !std::isfinite(d)) return false;
      lc[c] = std::sqrt(d);
      for (int64_t i = c + 1; i < j1; ++i) {
        double* li = a.data() + i * n;
        li[c] = (li[c] - dot(li + j0, lc + j0, c - j0)) / lc[c];
      }
    }
    // Rows below the block: forward substitution against the diagonal block.
#pragma omp parallel for schedule(static) num_threads(num_threads()) if (n - j1 > 128)
    for (int64_t i = j1; i < n; ++i) {
      double* li = a.data() + i * n;
      for (int64_t c = j0; c < j1; ++c) {
        const double* lc = a.data() + c * n;
        li[c] = (li[c] - dot(li + j0, lc + j0, c - j0)) / lc[c];
      }
    }
  }
  for (int64_t i = 0; i < n; ++i) std::fill(a.begin() + i * n + i + 1, a.begin() + (i + 1) * n, 0.0);
  return true;
}

std::vector<double> invert_lower_triangular(const std::vector<double>& l, int64_t n) {
  std::vector<double> x(static_cast<size_t>(n * n), 0.0);
  // Column blocks of the inverse are independent: solve L X[:, block] = I[:, block].
  const int64_t n_blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel num_threads(num_threads())
  {
    std::vector<double> t(static_cast<size_t>(n * kBlock));
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < n_blocks; ++b) {
      const int64_t j0 = b * kBlock, w = std::min(kBlock, n - j0);
      for (int64_t i = j0; i < n; ++i) {
        double* acc = t.data() + (i - j0) * kBlock;
        std::fill(acc, acc + kBlock, 0.0);
        if (i < j0 + w) acc[i - j0] = 1.0;
        const double* li = l.data() + i * n;
        for (int64_t k = j0; k < i; ++k) {
          const double f = li[k];
          const double* tk = t.data() + (k - j0) * kBlock;
#pragma omp simd
          for (int64_t c = 0; c < kBlock; ++c) acc[c] -= f * tk[c];
        }
        const double inv_d = 1.0 / li[i];
        for (int64_t c = 0; c < w; ++c) x[i * n + j0 + c] = acc[c] * inv_d;
        for (int64_t c = 0; c < kBlock; ++c) acc[c] *= inv_d;
      }
    }
  }
  return x;
}

bool upper_cholesky_of_inverse(const std::vector<double>& h, int64_t n, std::vector<double>& u) {
  std::vector<double> reversed(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) reversed[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
  if (!cholesky_lower_inplace(reversed, n)) return false;
  const std::vector<double> inv = invert_lower_triangular(reversed, n);
  u.assign(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) u[i * n + j] = inv[(n - 1 - i) * n + (n - 1 - j)];
  return true;
}

}  // namespace quarot
