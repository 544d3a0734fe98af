#include "transform/residual_rotation.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "common/error.h"
#include "common/rng.h"
#include "transform/random_orthogonal.h"

namespace quarot {

RotationMode parse_rotation_mode(const std::string& name) {
  if (name == "hadamard") return RotationMode::kHadamard;
  if (name == "random") return RotationMode::kRandom;
  if (name == "none") return RotationMode::kNone;
  fail("unknown rotation '{}' (expected hadamard, random or none)", name);
}

const char* rotation_mode_name(RotationMode mode) {
  switch (mode) {
    case RotationMode::kNone: return "none";
    case RotationMode::kHadamard: return "hadamard";
    case RotationMode::kRandom: return "random";
  }
  return "?";
}

ResidualRotation::ResidualRotation(RotationMode mode, int64_t n, uint64_t seed) : mode_(mode), n_(n) {
  if (n < 1) fail("residual rotation: dimension must be positive, got {}", n);
  switch (mode) {
    case RotationMode::kNone:
      description_ = "none";
      break;
    case RotationMode::kHadamard: {
      // Same seed use as randomized_hadamard(), so dense() reproduces that matrix.
      plan_ = plan_hadamard(n, seed);
      Rng rng(seed);
      signs_.resize(n);
      for (double& s : signs_) s = rng.sign();
      description_ = "randomized " + plan_.description;
      break;
    }
    case RotationMode::kRandom:
      dense_ = random_orthogonal(n, seed);
      description_ = fmt::format("random orthogonal {}", n);
      break;
  }
}

void ResidualRotation::apply_to_rows(double* rows, int64_t n_rows) const {
  const int64_t n = n_;
  switch (mode_) {
    case RotationMode::kNone:
      return;
    case RotationMode::kHadamard:
      // r Q = (r A) diag(s), and r A (a row) is A^T applied to r as a column.
      apply_rotation_rows(plan_.rotation, rows, n_rows, /*transpose=*/true);
      for (int64_t i = 0; i < n_rows * n; ++i) rows[i] *= signs_[i % n];
      return;
    case RotationMode::kRandom:
#pragma omp parallel if (n_rows * n * n > (int64_t{1} << 20))
    {
      std::vector<double> out(n);
#pragma omp for schedule(static)
      for (int64_t r = 0; r < n_rows; ++r) {
        double* x = rows + r * n;
        std::fill(out.begin(), out.end(), 0.0);
        for (int64_t i = 0; i < n; ++i) {
          const double xi = x[i];
          const double* qrow = dense_.data() + i * n;
          for (int64_t c = 0; c < n; ++c) out[c] += xi * qrow[c];
        }
        std::copy(out.begin(), out.end(), x);
      }
    }
      return;
  }
}

void ResidualRotation::right_multiply(MatrixD& w) const {
  if (w.cols != n_) fail("residual rotation: matrix has {} columns, expected {}", w.cols, n_);
  apply_to_rows(w.data.data(), w.rows);
}

void ResidualRotation::left_multiply_transposed(MatrixD& w) const {
  if (w.rows != n_) fail("residual rotation: matrix has {} rows, expected {}", w.rows, n_);
  if (mode_ == RotationMode::kNone) return;
  // Q^T W = (W^T Q)^T.
  MatrixD t = w.transposed();
  apply_to_rows(t.data.data(), t.rows);
  w = t.transposed();
}

std::vector<double> ResidualRotation::dense() const {
  std::vector<double> eye(n_ * n_, 0.0);
  for (int64_t i = 0; i < n_; ++i) eye[i * n_ + i] = 1.0;
  apply_to_rows(eye.data(), n_);  // row i of I Q = row i of Q
  return eye;
}

double ResidualRotation::orthogonality_error() const {
  if (n_ <= 512) return quarot::orthogonality_error(dense(), n_);
  // Rows of Q at distinct random indices (one per stratum); their Gram matrix is a
  // principal block of Q Q^T, so this samples the dense check exactly.
  constexpr int64_t kProbes = 48;
  const int64_t stratum = n_ / kProbes;
  Rng rng(0x0b5e7eULL);
  std::vector<double> rows(kProbes * n_, 0.0);
  for (int64_t p = 0; p < kProbes; ++p)
    rows[p * n_ + p * stratum + static_cast<int64_t>(rng.below(stratum))] = 1.0;
  apply_to_rows(rows.data(), kProbes);
  double worst = 0.0;
  for (int64_t a = 0; a < kProbes; ++a) {
    for (int64_t b = a; b < kProbes; ++b) {
      double dot = 0.0;
      for (int64_t c = 0; c < n_; ++c) dot += rows[a * n_ + c] * rows[b * n_ + c];
      worst = std::max(worst, std::abs(dot - (a == b ? 1.0 : 0.0)));
    }
  }
  return worst;
}

}  // namespace quarot
