#pragma once
// Plans the orthogonal transform QuaRot applies to a dimension n: n = K * 2^m with
// the normalized (H_K (x) H_{2^m}) / sqrt(n), where H_K is a Hadamard matrix
// (hadamard_matrices.h) and H_{2^m} runs as a fast Walsh-Hadamard transform.
// When no Hadamard matrix exists for any admissible K (odd n, 9 heads, ...), the
// K factor is a seeded random orthogonal matrix instead; the plan says so.
//
// Convention (kernels/backend.h): a row of length n = k * p * inner is viewed as
// [k, p, inner] and y[a, b, c] = sum M[a, a'] Hn[b, b'] x[a', b', c]; as a matrix,
// y = A x with A = M (x) Hn (x) I_inner. materialize() returns that A.
#include <cstdint>
#include <string>
#include <vector>

#include "common/tensor.h"
#include "kernels/backend.h"

namespace quarot {

inline constexpr uint64_t kDefaultRotationSeed = 0x5eed0fa11bacULL;

struct HadamardPlan {
  OnlineRotation rotation;   // inner = 1; M = H_K / sqrt(K) (or random orthogonal), p = 2^m
  bool exact_hadamard = true;
  std::string description;   // "hadamard 12 x 2^7", "random orthogonal 9 (no Hadamard of order 9 exists) x 2^6"
  int64_t size() const { return rotation.size(); }
};

// Throws Error when n < 1 or the non-power-of-two part has no Hadamard matrix and is
// too large for a dense random fallback (> 4096). `fallback_seed` seeds that fallback.
HadamardPlan plan_hadamard(int64_t n, uint64_t fallback_seed = kDefaultRotationSeed);

// The dense n x n matrix A (y = A x). Intended for small n (tests, dense fusion).
Tensor materialize(const OnlineRotation& rotation);
std::vector<double> materialize_double(const OnlineRotation& rotation);

// Double-precision reference: replaces each of the n_rows rows x (length rotation.size(),
// contiguous) by A x, or by A^T x when `transpose`. Used to fuse rotations into weights:
// for W [out, in], applying it to W's rows computes W A^T (transpose: W A).
void apply_rotation_rows(const OnlineRotation& rotation, double* rows, int64_t n_rows, bool transpose = false);

// max |M M^T - I| of the dense factor (the Sylvester factor is exact), in double.
double orthogonality_error(const OnlineRotation& rotation);

}  // namespace quarot
