#pragma once
// Dense symmetric positive-definite linear algebra GPTQ needs, in double precision
// on row-major n x n arrays, blocked for cache and parallelized with OpenMP.
#include <cstdint>
#include <vector>

namespace quarot {

// Overwrites the lower triangle of `a` with L (a = L L^T) and zeroes the upper one.
// Returns false (leaving `a` partly overwritten) when `a` is not positive definite.
bool cholesky_lower_inplace(std::vector<double>& a, int64_t n);

// The inverse of a lower-triangular matrix with a positive diagonal (also lower).
std::vector<double> invert_lower_triangular(const std::vector<double>& l, int64_t n);

// The upper-triangular U with U^T U = h^-1 (GPTQ's "Cholesky of the inverse Hessian"),
// computed without forming h^-1: with J the reversal permutation, J h J = L L^T gives
// h = V V^T for the upper V = J L J, hence h^-1 = (V^-1)^T V^-1 and U = J L^-1 J.
// Returns false when h is not positive definite.
bool upper_cholesky_of_inverse(const std::vector<double>& h, int64_t n, std::vector<double>& u);

}  // namespace quarot
