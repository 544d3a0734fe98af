#include "kernels/cpu/vec_ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/cpu/cpu_features.h"

namespace quarot {
namespace {

TEST(VecOps, RmsnormMatchesFormula) {
  const int64_t n = 37;
  const auto x = test::random_floats(n, 1);
  const auto w = test::random_floats(n, 2);
  double mean_sq = 0.0;
  for (float v : x) mean_sq += static_cast<double>(v) * v;
  mean_sq /= n;
  const double inv = 1.0 / std::sqrt(mean_sq + 1e-5);
  std::vector<float> out(n), out_ones(n);
  rmsnorm(x.data(), w.data(), n, 1e-5f, out.data());
  rmsnorm(x.data(), nullptr, n, 1e-5f, out_ones.data());
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_NEAR(out[i], x[i] * inv * w[i], 1e-5);
    EXPECT_NEAR(out_ones[i], x[i] * inv, 1e-5);
  }
  std::vector<float> in_place = x;
  rmsnorm(in_place.data(), w.data(), n, 1e-5f, in_place.data());
  EXPECT_EQ(in_place, out);
}

TEST(VecOps, SoftmaxIsStableAndNormalized) {
  std::vector<float> x = {1000.0f, 1001.0f, 999.0f};  // exp would overflow without the max shift
  softmax_inplace(x.data(), 3);
  const double e0 = std::exp(-1.0), e2 = std::exp(-2.0), sum = e0 + 1.0 + e2;
  EXPECT_NEAR(x[0], e0 / sum, 1e-6);
  EXPECT_NEAR(x[1], 1.0 / sum, 1e-6);
  EXPECT_NEAR(x[2], e2 / sum, 1e-6);
}

TEST(VecOps, SiluMulAvx2MatchesTheDefinition) {
  if (!isa_supported(Isa::kAvx2)) GTEST_SKIP() << "AVX2 not supported here";
  // Lengths with and without a tail of fewer than 8; gates across the exp's range,
  // including where e^-g leaves float (|g| > 88) and the signed zeros.
  for (const int64_t n : {1, 7, 8, 19, 1000}) {
    auto g = test::random_floats(n, 40 + n, -20.0, 20.0);
    const auto u = test::random_floats(n, 41 + n, -3.0, 3.0);
    const float edges[] = {-100.0f, -88.5f, -87.0f, 0.0f, -0.0f, 30.0f, 88.5f, 100.0f};
    for (int64_t i = 0; i < n && i < 8; ++i) g[i * 7 % n] = edges[i];
    std::vector<float> got(n, -5.0f), scalar(n);
    silu_mul_avx2(g.data(), u.data(), n, got.data());
    silu_mul(g.data(), u.data(), n, scalar.data());
    for (int64_t i = 0; i < n; ++i) {
      const double want = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i];
      // A few float roundings (exp within 2 ulp, add, divide, multiply); below 1e-30
      // (g < -88) the value only has to be negligible.
      EXPECT_NEAR(got[i], want, 6e-7 * std::fabs(want) + 1e-30) << "n=" << n << " g=" << g[i];
      EXPECT_NEAR(got[i], scalar[i], 6e-7 * std::fabs(scalar[i]) + 1e-30) << "n=" << n << " g=" << g[i];
    }
  }
}

TEST(VecOps, SiluMulDotAxpyScale) {
  const int64_t n = 19;
  const auto a = test::random_floats(n, 3, -4.0, 4.0);
  const auto b = test::random_floats(n, 4);
  std::vector<float> out(n);
  silu_mul(a.data(), b.data(), n, out.data());
  double ref_dot = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_NEAR(out[i], a[i] / (1.0 + std::exp(-static_cast<double>(a[i]))) * b[i], 1e-6);
    ref_dot += static_cast<double>(a[i]) * b[i];
  }
  EXPECT_NEAR(dot(a.data(), b.data(), n), ref_dot, 1e-5);
  std::vector<float> y = b;
  axpy(0.5f, a.data(), n, y.data());
  for (int64_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(y[i], b[i] + 0.5f * a[i]);
  scale(y.data(), n, -2.0f);
  for (int64_t i = 0; i < n; ++i) EXPECT_FLOAT_EQ(y[i], -2.0f * (b[i] + 0.5f * a[i]));
}

}  // namespace
}  // namespace quarot
