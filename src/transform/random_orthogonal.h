#pragma once
// Seeded random orthogonal matrices for the residual-stream rotation
// (--rotate random|hadamard) and for the fallback factor of hadamard_transform.h.
#include <cstdint>
#include <string>
#include <vector>

namespace quarot {

// Haar-distributed n x n orthogonal matrix (row-major, double): QR of a Gaussian
// matrix by Householder reflections, with the columns of Q multiplied by sign(R_ii)
// so the distribution is uniform (plain QR is biased by its sign convention).
std::vector<double> random_orthogonal(int64_t n, uint64_t seed);

struct RandomizedHadamard {
  std::vector<double> matrix;  // n x n row-major, Q = A diag(s) with A the normalized plan_hadamard(n)
  std::vector<double> signs;   // s, each +-1
  bool exact_hadamard = true;  // false when plan_hadamard(n) had to use a random orthogonal factor
  std::string description;
};

// Randomized Hadamard Q = H diag(s) / sqrt(n) (QuaRot's residual rotation) in dense
// form. When no Hadamard of order n is constructible, H / sqrt(n) is plan_hadamard's
// fallback (random orthogonal K (x) H_{2^m}) and exact_hadamard is false.
RandomizedHadamard randomized_hadamard(int64_t n, uint64_t seed);

// max |Q Q^T - I| (dense, O(n^3): for tests and small n).
double orthogonality_error(const std::vector<double>& q, int64_t n);

}  // namespace quarot
