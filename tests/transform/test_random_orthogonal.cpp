#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "common/rng.h"
#include "transform/hadamard_transform.h"
#include "transform/random_orthogonal.h"
#include "transform/residual_rotation.h"

namespace quarot {
namespace {

TEST(RandomOrthogonal, IsOrthogonalSeededAndNotTrivial) {
  for (int64_t n : {1, 2, 3, 9, 64, 257}) {
    SCOPED_TRACE(n);
    const auto q = random_orthogonal(n, 42);
    EXPECT_LT(orthogonality_error(q, n), 1e-12);
    EXPECT_EQ(q, random_orthogonal(n, 42));
    if (n > 1) {
      EXPECT_NE(q, random_orthogonal(n, 43));
    }
  }
  // A random rotation spreads mass: no entry of a 64 x 64 one is near +-1.
  const auto q = random_orthogonal(64, 7);
  for (double v : q) EXPECT_LT(std::abs(v), 0.9);
  EXPECT_THROW(random_orthogonal(0, 1), Error);
}

// Haar measure: E[Q_00] = 0 and E[Q_00^2] = 1/n. Plain QR without the sign fix has a
// biased diagonal, which this catches (mean of Q_00 would be ~ -sqrt(2/(pi n)) or so).
TEST(RandomOrthogonal, DiagonalIsUnbiased) {
  const int64_t n = 8, trials = 2000;
  double mean = 0.0, second = 0.0;
  for (int64_t t = 0; t < trials; ++t) {
    const double v = random_orthogonal(n, 1000 + t)[0];
    mean += v;
    second += v * v;
  }
  mean /= trials;
  second /= trials;
  EXPECT_NEAR(mean, 0.0, 0.03);
  EXPECT_NEAR(second, 1.0 / n, 0.02);
}

TEST(RandomizedHadamard, IsHadamardTimesSigns) {
  const int64_t n = 96;  // 12 x 2^3
  const auto rh = randomized_hadamard(n, 3);
  EXPECT_TRUE(rh.exact_hadamard);
  EXPECT_LT(orthogonality_error(rh.matrix, n), 1e-6);
  const auto a = materialize_double(plan_hadamard(n, 3).rotation);
  int negative = 0;
  for (int64_t c = 0; c < n; ++c) {
    ASSERT_TRUE(rh.signs[c] == 1.0 || rh.signs[c] == -1.0);
    negative += rh.signs[c] < 0;
    for (int64_t r = 0; r < n; ++r) {
      ASSERT_NEAR(std::abs(rh.matrix[r * n + c]) * std::sqrt(double(n)), 1.0, 1e-6);
      ASSERT_NEAR(rh.matrix[r * n + c], a[r * n + c] * rh.signs[c], 1e-12);
    }
  }
  EXPECT_GT(negative, n / 4);
  EXPECT_LT(negative, 3 * n / 4);
  EXPECT_FALSE(randomized_hadamard(18, 3).exact_hadamard);  // 9 x 2: fallback
  EXPECT_LT(orthogonality_error(randomized_hadamard(18, 3).matrix, 18), 1e-6);
}

// The structured products of ResidualRotation against plain dense matrix products.
TEST(ResidualRotation, ProductsMatchDenseQ) {
  for (RotationMode mode : {RotationMode::kHadamard, RotationMode::kRandom, RotationMode::kNone}) {
    for (int64_t n : {48, 54}) {
      SCOPED_TRACE(std::string(rotation_mode_name(mode)) + " " + std::to_string(n));
      const ResidualRotation q(mode, n, 9);
      const auto dq = q.dense();
      EXPECT_LT(q.orthogonality_error(), 1e-5);
      if (mode == RotationMode::kHadamard) {
        EXPECT_EQ(dq, randomized_hadamard(n, 9).matrix);
      }
      MatrixD w;
      w.rows = 5;
      w.cols = n;
      Rng rng(1);
      for (int64_t i = 0; i < 5 * n; ++i) w.data.push_back(rng.normal());
      MatrixD right = w;
      q.right_multiply(right);
      for (int64_t r = 0; r < 5; ++r)
        for (int64_t c = 0; c < n; ++c) {
          double want = 0.0;
          for (int64_t i = 0; i < n; ++i) want += w.data[r * n + i] * dq[i * n + c];
          ASSERT_NEAR(right.data[r * n + c], want, 1e-12);
        }
      MatrixD tall = w.transposed();  // n x 5
      MatrixD left = tall;
      q.left_multiply_transposed(left);
      for (int64_t r = 0; r < n; ++r)
        for (int64_t c = 0; c < 5; ++c) {
          double want = 0.0;
          for (int64_t i = 0; i < n; ++i) want += dq[i * n + r] * tall.data[i * 5 + c];
          ASSERT_NEAR(left.data[r * 5 + c], want, 1e-12);
        }
    }
  }
  EXPECT_THROW(parse_rotation_mode("hadamrd"), Error);
  EXPECT_EQ(parse_rotation_mode("random"), RotationMode::kRandom);
}

TEST(ResidualRotation, LargeHadamardIsOrthogonal) {
  const ResidualRotation q(RotationMode::kHadamard, 4096, 1);
  EXPECT_TRUE(q.exact_hadamard());
  EXPECT_LT(q.orthogonality_error(), 1e-5);
  const ResidualRotation q2(RotationMode::kHadamard, 5120, 1);
  EXPECT_LT(q2.orthogonality_error(), 1e-5);
}

}  // namespace
}  // namespace quarot
