// Plans for the dimensions of real models: each must be orthogonal, follow the
// backend.h convention (checked against the kernels' float implementation), and say
// whether it is an exact Hadamard transform.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "common/rng.h"
#include "kernels/cpu/fwht.h"
#include "transform/hadamard_matrices.h"
#include "transform/hadamard_transform.h"

namespace quarot {
namespace {

struct ExpectedPlan {
  int64_t n, k, p;
  bool exact;
};

// Hand-derived: the largest 2^m with a constructible K = n / 2^m.
const ExpectedPlan kModelDims[] = {
    {64, 1, 64, true},          {576, 36, 16, true},      {1536, 12, 128, true},
    {2048, 1, 2048, true},      {4096, 1, 4096, true},    {5120, 20, 256, true},
    {11008, 344, 32, true},     {13824, 108, 128, true},  {14336, 28, 512, true},
    {28672, 28, 1024, true},    {9, 9, 1, false},         {160, 20, 8, true},
    {90, 45, 2, false},         {156, 39, 4, false},      {344, 344, 1, true},
    // 156 and 172 have no construction here; with a spare factor 2 the doubled Paley
    // order takes over: 1248 = 312 x 4, 2752 = 344 x 8.
    {1248, 312, 4, true},       {2752, 344, 8, true},
};

std::vector<double> random_rows(int64_t rows, int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> x(rows * n);
  for (double& v : x) v = rng.normal();
  return x;
}

double dot(const double* a, const double* b, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

TEST(PlanHadamard, ModelDimensionsPlanAsExpected) {
  for (const auto& e : kModelDims) {
    SCOPED_TRACE(e.n);
    const HadamardPlan plan = plan_hadamard(e.n);
    EXPECT_EQ(plan.rotation.k, e.k);
    EXPECT_EQ(plan.rotation.p, e.p);
    EXPECT_EQ(plan.rotation.inner, 1);
    EXPECT_EQ(plan.size(), e.n);
    EXPECT_EQ(plan.exact_hadamard, e.exact);
    EXPECT_EQ(plan.rotation.m.size(), static_cast<size_t>(e.k == 1 ? 0 : e.k * e.k));
    if (e.exact) {
      EXPECT_EQ(plan.description.rfind("hadamard", 0), 0u) << plan.description;
      // The dense factor is +-1/sqrt(K) entrywise.
      for (float v : plan.rotation.m) EXPECT_NEAR(std::abs(v), 1.0 / std::sqrt(double(e.k)), 1e-7);
    } else {
      EXPECT_NE(plan.description.find("random orthogonal"), std::string::npos) << plan.description;
      EXPECT_NE(plan.description.find("no Hadamard"), std::string::npos);
    }
    EXPECT_LT(orthogonality_error(plan.rotation), 1e-5);
  }
  EXPECT_THROW(plan_hadamard(0), Error);
  EXPECT_THROW(plan_hadamard(10007), Error);  // prime above the dense fallback limit
}

// Small plans: A A^T = I entrywise on the materialized matrix.
TEST(PlanHadamard, MaterializedSmallPlansAreOrthogonal) {
  for (int64_t n : {1, 2, 9, 12, 20, 64, 90, 160, 344}) {
    SCOPED_TRACE(n);
    const HadamardPlan plan = plan_hadamard(n);
    const Tensor a = materialize(plan.rotation);
    ASSERT_EQ(a.shape, (std::vector<int64_t>{n, n}));
    double worst = 0.0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0.0;
        for (int64_t c = 0; c < n; ++c) s += double(a.at(i, c)) * double(a.at(j, c));
        worst = std::max(worst, std::abs(s - (i == j ? 1.0 : 0.0)));
      }
    EXPECT_LT(worst, 1e-5);
    if (plan.exact_hadamard) {
      // An exact plan is sqrt(n) * A = a Hadamard matrix: every entry +-1/sqrt(n).
      for (float v : a.data) ASSERT_NEAR(std::abs(v) * std::sqrt(double(n)), 1.0, 1e-5);
    }
  }
}

// Every model dimension: inner products of random vectors are preserved, and A^T undoes A.
TEST(PlanHadamard, LargePlansPreserveInnerProducts) {
  for (const auto& e : kModelDims) {
    SCOPED_TRACE(e.n);
    const HadamardPlan plan = plan_hadamard(e.n);
    constexpr int64_t kRows = 4;
    const auto x = random_rows(kRows, e.n, 11);
    auto y = x;
    apply_rotation_rows(plan.rotation, y.data(), kRows);
    for (int64_t a = 0; a < kRows; ++a)
      for (int64_t b = a; b < kRows; ++b) {
        const double want = dot(&x[a * e.n], &x[b * e.n], e.n);
        const double got = dot(&y[a * e.n], &y[b * e.n], e.n);
        EXPECT_NEAR(got, want, 1e-5 * e.n);  // |x|^2 ~ n: relative 1e-5
      }
    auto back = y;
    apply_rotation_rows(plan.rotation, back.data(), kRows, /*transpose=*/true);
    double worst = 0.0;
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(back[i] - x[i]));
    EXPECT_LT(worst, 1e-5);
  }
}

// The double reference and the kernels' float online rotation implement one convention.
TEST(PlanHadamard, MatchesKernelOnlineRotation) {
  for (int64_t n : {12, 64, 90, 576, 1536, 11008}) {
    SCOPED_TRACE(n);
    OnlineRotation rot = plan_hadamard(n).rotation;
    const auto x = random_rows(3, n, 5);
    auto ref = x;
    apply_rotation_rows(rot, ref.data(), 3);
    std::vector<float> f(x.begin(), x.end());
    apply_online_rotation(rot, f.data(), 3, n);
    for (size_t i = 0; i < f.size(); ++i) ASSERT_NEAR(f[i], ref[i], 2e-5) << i;
  }
  // With inner > 1 (the across-heads layout: 9 heads of 8).
  OnlineRotation heads = plan_hadamard(9).rotation;
  heads.inner = 8;
  const auto x = random_rows(2, 72, 6);
  auto ref = x;
  apply_rotation_rows(heads, ref.data(), 2);
  std::vector<float> f(x.begin(), x.end());
  apply_online_rotation(heads, f.data(), 2, 72);
  for (size_t i = 0; i < f.size(); ++i) ASSERT_NEAR(f[i], ref[i], 2e-5) << i;
}

// materialize() must equal (H_K (x) H_p) / sqrt(n) built independently from the integer
// Hadamard matrices, in the [k, p] row layout of backend.h.
TEST(PlanHadamard, MaterializeIsTheKroneckerProduct) {
  const int64_t n = 48;  // 12 x 2^2
  const HadamardPlan plan = plan_hadamard(n);
  ASSERT_EQ(plan.rotation.k, 12);
  const HadamardMatrix hk = *find_hadamard(12), hp = sylvester_hadamard(4);
  const Tensor a = materialize(plan.rotation);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < n; ++c) {
      const double want = hk.at(r / 4, c / 4) * hp.at(r % 4, c % 4) / std::sqrt(48.0);
      ASSERT_NEAR(a.at(r, c), want, 1e-6);
    }
}

TEST(PlanHadamard, FallbackIsSeeded) {
  EXPECT_EQ(plan_hadamard(9, 1).rotation.m, plan_hadamard(9, 1).rotation.m);
  EXPECT_NE(plan_hadamard(9, 1).rotation.m, plan_hadamard(9, 2).rotation.m);
}

TEST(ApplyRotation, RejectsMalformedRotation) {
  OnlineRotation bad;
  bad.k = 3;
  bad.m = {1.0f};
  std::vector<double> x(3);
  EXPECT_THROW(apply_rotation_rows(bad, x.data(), 1), Error);
  bad = OnlineRotation{};
  bad.p = 6;
  std::vector<double> y(6);
  EXPECT_THROW(apply_rotation_rows(bad, y.data(), 1), Error);
}

}  // namespace
}  // namespace quarot
