#include "transform/random_orthogonal.h"

#include <cmath>

#include "common/error.h"
#include "common/rng.h"
#include "transform/hadamard_transform.h"

namespace quarot {

std::vector<double> random_orthogonal(int64_t n, uint64_t seed) {
  if (n < 1) fail("random_orthogonal: size must be positive, got {}", n);
  if (n > 16384) fail("random_orthogonal: size {} is too large for a dense rotation", n);
  Rng rng(seed);
  // Work on the transpose (column j of the Gaussian stored as row j) so each
  // Householder step touches contiguous memory.
  std::vector<double> a(n * n);
  for (double& v : a) v = rng.normal();
  std::vector<double> diag(n);
  std::vector<double> reflectors(n * n, 0.0);  // reflector j stored in row j (entries j..n-1)
  for (int64_t j = 0; j < n; ++j) {
    double* col = a.data() + j * n;
    double norm2 = 0.0;
    for (int64_t i = j; i < n; ++i) norm2 += col[i] * col[i];
    const double norm = std::sqrt(norm2);
    // alpha = -sign(x_0) ||x|| avoids cancellation; R_jj = alpha.
    const double alpha = col[j] >= 0.0 ? -norm : norm;
    double* v = reflectors.data() + j * n;
    for (int64_t i = j; i < n; ++i) v[i] = col[i];
    v[j] -= alpha;
    double vnorm2 = 0.0;
    for (int64_t i = j; i < n; ++i) vnorm2 += v[i] * v[i];
    diag[j] = alpha;
    if (vnorm2 == 0.0) continue;  // column already in place: H_j = I
    const double inv = 1.0 / std::sqrt(vnorm2);
    for (int64_t i = j; i < n; ++i) v[i] *= inv;
    // Apply H_j = I - 2 v v^T to the remaining columns.
#pragma omp parallel for schedule(static) if ((n - j) * (n - j) > (1 << 20))
    for (int64_t c = j + 1; c < n; ++c) {
      double* other = a.data() + c * n;
      double dot = 0.0;
      for (int64_t i = j; i < n; ++i) dot += v[i] * other[i];
      for (int64_t i = j; i < n; ++i) other[i] -= 2.0 * dot * v[i];
    }
  }
  // Q = H_0 H_1 ... H_{n-1}; column c of Q is H_0 (H_1 (... H_{n-1} e_c)).
  std::vector<double> qt(n * n, 0.0);  // row c = column c of Q
  for (int64_t c = 0; c < n; ++c) qt[c * n + c] = 1.0;
#pragma omp parallel for schedule(static) if (n > 256)
  for (int64_t c = 0; c < n; ++c) {
    double* col = qt.data() + c * n;
    for (int64_t j = n - 1; j >= 0; --j) {
      const double* v = reflectors.data() + j * n;
      double dot = 0.0;
      for (int64_t i = j; i < n; ++i) dot += v[i] * col[i];
      if (dot == 0.0) continue;
      for (int64_t i = j; i < n; ++i) col[i] -= 2.0 * dot * v[i];
    }
  }
  // Sign fix: Q <- Q diag(sign(R_jj)) makes the factorization unique, hence Haar.
  std::vector<double> q(n * n);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < n; ++c) q[r * n + c] = qt[c * n + r] * (diag[c] < 0.0 ? -1.0 : 1.0);
  return q;
}

RandomizedHadamard randomized_hadamard(int64_t n, uint64_t seed) {
  const HadamardPlan plan = plan_hadamard(n, seed);
  RandomizedHadamard out;
  out.exact_hadamard = plan.exact_hadamard;
  out.description = "randomized " + plan.description;
  Rng rng(seed);
  out.signs.resize(n);
  for (double& s : out.signs) s = rng.sign();
  out.matrix = materialize_double(plan.rotation);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < n; ++c) out.matrix[r * n + c] *= out.signs[c];
  return out;
}

double orthogonality_error(const std::vector<double>& q, int64_t n) {
  double worst = 0.0;
#pragma omp parallel for reduction(max : worst) schedule(dynamic, 8) if (n > 128)
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i; j < n; ++j) {
      double dot = 0.0;
      for (int64_t c = 0; c < n; ++c) dot += q[i * n + c] * q[j * n + c];
      worst = std::max(worst, std::abs(dot - (i == j ? 1.0 : 0.0)));
    }
  }
  return worst;
}

}  // namespace quarot
