#pragma once
// The orthogonal matrix Q (hidden x hidden) that rotates the residual stream, and the
// two products weight fusion needs, both in double:
//   right_multiply:            W <- W Q      (linears that read the residual, embeddings)
//   left_multiply_transposed:  W <- Q^T W    (linears that write the residual)
// The randomized Hadamard Q = A diag(s) (A = normalized plan_hadamard(n)) is applied in
// O(n (K + log n)) per row; a random orthogonal Q is dense (O(n^2) per row).
#include <cstdint>
#include <string>
#include <vector>

#include "transform/hadamard_transform.h"
#include "transform/matrix_double.h"

namespace quarot {

enum class RotationMode { kNone, kHadamard, kRandom };
// "hadamard" | "random" | "none"; throws Error naming the value otherwise.
RotationMode parse_rotation_mode(const std::string& name);
const char* rotation_mode_name(RotationMode mode);

class ResidualRotation {
 public:
  ResidualRotation(RotationMode mode, int64_t n, uint64_t seed);

  RotationMode mode() const { return mode_; }
  int64_t size() const { return n_; }
  bool exact_hadamard() const { return mode_ == RotationMode::kHadamard && plan_.exact_hadamard; }
  const std::string& description() const { return description_; }

  void right_multiply(MatrixD& w) const;            // w.cols == n
  void left_multiply_transposed(MatrixD& w) const;  // w.rows == n
  std::vector<double> dense() const;                // Q, n x n row-major
  // max |Q Q^T - I| (dense check up to n = 512, else on 48 sampled rows).
  double orthogonality_error() const;

 private:
  // rows <- rows Q, each row of length n (in place).
  void apply_to_rows(double* rows, int64_t n_rows) const;

  RotationMode mode_;
  int64_t n_;
  HadamardPlan plan_;           // kHadamard
  std::vector<double> signs_;   // kHadamard
  std::vector<double> dense_;   // kRandom
  std::string description_;
};

}  // namespace quarot
