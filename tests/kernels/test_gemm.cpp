#include "kernels/cpu/gemm.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/error.h"
#include "kernel_test_util.h"

namespace quarot {
namespace {

struct GemmCase {
  int64_t n, out, in;
  bool with_bias;
};

// Checks y against a double-precision product: each element within 1e-5 of the
// magnitude sum_k |x_k w_k| + |b| (the scale of its rounding error), and the whole
// result within 1e-5 relative Frobenius error.
void expect_matches_reference(const std::vector<float>& y, const std::vector<float>& x, const std::vector<float>& w,
                              const std::vector<float>& bias, const GemmCase& c, const char* isa) {
  double err_sq = 0.0, ref_sq = 0.0;
  for (int64_t i = 0; i < c.n; ++i) {
    for (int64_t o = 0; o < c.out; ++o) {
      double ref = 0.0, magnitude = 0.0;
      for (int64_t k = 0; k < c.in; ++k) {
        const double term = static_cast<double>(x[i * c.in + k]) * w[o * c.in + k];
        ref += term;
        magnitude += std::fabs(term);
      }
      if (c.with_bias) {
        ref += bias[o];
        magnitude += std::fabs(bias[o]);
      }
      const double got = y[i * c.out + o];
      ASSERT_LE(std::fabs(got - ref), 1e-5 * magnitude + 1e-30)
          << isa << " n=" << c.n << " out=" << c.out << " in=" << c.in << " at (" << i << ", " << o << ")";
      err_sq += (got - ref) * (got - ref);
      ref_sq += ref * ref;
    }
  }
  EXPECT_LT(std::sqrt(err_sq / ref_sq), 1e-5) << isa;
}

// One instance per instruction-set path; a path this CPU cannot run is a visible skip
// (not silently dropped), so a run on an AVX2-only machine says AVX-512 went untested.
class GemmPath : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam())) GTEST_SKIP() << "this CPU cannot run the " << isa_name(GetParam()) << " path";
  }
};

INSTANTIATE_TEST_SUITE_P(Isa, GemmPath, ::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512),
                         [](const ::testing::TestParamInfo<Isa>& i) { return std::string(isa_name(i.param)); });

TEST_P(GemmPath, MatchesDoubleReference) {
  const std::vector<GemmCase> cases = {
      {1, 37, 191, false},  {1, 576, 576, true},  {3, 191, 37, true},   {17, 37, 191, false},
      {17, 576, 576, true}, {64, 191, 576, true}, {64, 33, 300, false}, {150, 45, 513, true},
      {2, 1, 1, true},      {7, 16, 16, false},   {9, 32, 257, true},
  };
  const Isa isa = GetParam();
  for (const GemmCase& c : cases) {
    const auto x = test::random_floats(c.n * c.in, 10 + c.n);
    const auto w = test::random_floats(c.out * c.in, 20 + c.out);
    const auto bias = test::random_floats(c.out, 30 + c.out);
    const GemmWeight packed = pack_gemm_weight(w.data(), c.out, c.in, isa);
    std::vector<float> y(c.n * c.out, -12345.0f);
    gemm(packed, x.data(), c.n, c.with_bias ? bias.data() : nullptr, y.data());
    expect_matches_reference(y, x, w, bias, c, isa_name(isa));
  }
}

TEST_P(GemmPath, WritesNothingOutsideTheOutput) {
  // Ragged panels run on padded scratch; guard values around y must survive.
  const Isa isa = GetParam();
  const int64_t n = 5, out = 19, in = 23;
  const auto x = test::random_floats(n * in, 1);
  const auto w = test::random_floats(out * in, 2);
  std::vector<float> buffer(n * out + 64, 777.0f);
  const GemmWeight packed = pack_gemm_weight(w.data(), out, in, isa);
  gemm(packed, x.data(), n, nullptr, buffer.data() + 32);
  for (int i = 0; i < 32; ++i) {
    EXPECT_EQ(buffer[i], 777.0f) << isa_name(isa);
    EXPECT_EQ(buffer[32 + n * out + i], 777.0f) << isa_name(isa);
  }
}

TEST_P(GemmPath, ResultDoesNotDependOnThreadCount) {
  const int saved = omp_get_max_threads();
  const Isa isa = GetParam();
  for (int64_t n : {1, 40, 300}) {
    const int64_t out = 200, in = 600;
    const auto x = test::random_floats(n * in, 3);
    const auto w = test::random_floats(out * in, 4);
    const GemmWeight packed = pack_gemm_weight(w.data(), out, in, isa);
    std::vector<float> one(n * out), many(n * out);
    omp_set_num_threads(1);
    gemm(packed, x.data(), n, nullptr, one.data());
    omp_set_num_threads(3);
    gemm(packed, x.data(), n, nullptr, many.data());
    EXPECT_EQ(one, many) << isa_name(isa) << " n=" << n;
  }
  omp_set_num_threads(saved);
}

TEST(Gemm, RejectsBadShapes) {
  const std::vector<float> w(4, 1.0f);
  EXPECT_THROW(pack_gemm_weight(w.data(), 0, 4, Isa::kScalar), Error);
  EXPECT_THROW(pack_gemm_weight(w.data(), 2, -1, Isa::kScalar), Error);
  if (!isa_supported(Isa::kAvx512)) {
    EXPECT_THROW(pack_gemm_weight(w.data(), 2, 2, Isa::kAvx512), Error);
  }
  const GemmWeight packed = pack_gemm_weight(w.data(), 2, 2, Isa::kScalar);
  std::vector<float> y(2);
  EXPECT_THROW(gemm(packed, w.data(), -1, nullptr, y.data()), Error);
  EXPECT_THROW(gemm(GemmWeight{}, w.data(), 1, nullptr, y.data()), Error);
}

}  // namespace
}  // namespace quarot
