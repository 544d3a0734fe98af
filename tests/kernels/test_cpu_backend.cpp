#include "kernels/cpu/cpu_backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/tensor.h"
#include "kernel_test_util.h"

namespace quarot {
namespace {

TEST(CpuBackend, NameSaysWhichPathRuns) {
  for (Isa isa : test::supported_isas()) {
    const auto backend = make_cpu_backend(isa);
    EXPECT_EQ(backend->name().rfind(std::string("cpu-fp32 ") + isa_name(isa), 0), 0u) << backend->name();
  }
  EXPECT_NE(make_cpu_backend()->name().find(isa_name(best_isa())), std::string::npos);
  if (!isa_supported(Isa::kAvx512)) {
    EXPECT_THROW(make_cpu_backend(Isa::kAvx512), Error);
  }
}

class CpuBackendPath : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam())) GTEST_SKIP() << "this CPU cannot run the " << isa_name(GetParam()) << " path";
  }
};

INSTANTIATE_TEST_SUITE_P(Isa, CpuBackendPath, ::testing::Values(Isa::kScalar, Isa::kAvx2, Isa::kAvx512),
                         [](const ::testing::TestParamInfo<Isa>& i) { return std::string(isa_name(i.param)); });

// backend.linear() with an online rotation and activation quantization must equal
// rotation -> fake quantization -> double-precision product, composed by hand.
TEST_P(CpuBackendPath, LinearEqualsComposedPieces) {
  const int64_t n = 5, in = 48, out = 29;  // in = k * p * inner = 3 * 8 * 2
  OnlineRotation rotation;
  rotation.k = 3;
  rotation.p = 8;
  rotation.inner = 2;
  rotation.m = test::random_orthogonal(3, 11);
  Tensor weight({out, in});
  weight.data = test::random_floats(out * in, 12);
  const auto x = test::random_floats(n * in, 13, -2.0, 2.0);
  const auto bias = test::random_floats(out, 14);

  // The expected input, built from the definitions (not from the library's FWHT or
  // fake quantizer): a row as [k, p, inner] is multiplied by M (x) H_p / sqrt(p) over
  // its first two axes, then each group of 16 is put on the symmetric 4-bit grid
  // s = 0.9 max|x| / 7, q = clamp(round-half-even(x / s), -8, 7), x' = s q.
  const std::vector<double> hp = test::sylvester_matrix(rotation.p);
  std::vector<float> expected_input(n * in);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t a = 0; a < rotation.k; ++a)
      for (int64_t b = 0; b < rotation.p; ++b)
        for (int64_t c = 0; c < rotation.inner; ++c) {
          double acc = 0.0;
          for (int64_t a2 = 0; a2 < rotation.k; ++a2)
            for (int64_t b2 = 0; b2 < rotation.p; ++b2)
              acc += rotation.m[a * rotation.k + a2] * hp[b * rotation.p + b2] / std::sqrt(double(rotation.p)) *
                     x[i * in + (a2 * rotation.p + b2) * rotation.inner + c];
          expected_input[i * in + (a * rotation.p + b) * rotation.inner + c] = static_cast<float>(acc);
        }
  for (int64_t g = 0; g < n * in; g += 16) {
    float amax = 0.0f;
    for (int64_t j = g; j < g + 16; ++j) amax = std::max(amax, std::fabs(expected_input[j]));
    const float s = 0.9f * amax / 7.0f;
    for (int64_t j = g; j < g + 16; ++j)
      expected_input[j] = s == 0.0f ? 0.0f : s * std::clamp(std::nearbyint(expected_input[j] / s), -8.0f, 7.0f);
  }

  const Isa isa = GetParam();
  const auto backend = make_cpu_backend(isa);
  const auto packed = backend->pack(weight);
  EXPECT_EQ(packed->out_features, out);
  EXPECT_EQ(packed->in_features, in);
  LinearOp op;
  op.weight = packed.get();
  op.bias = bias.data();
  op.input_rotation = &rotation;
  op.act.bits = 4;
  op.act.clip_ratio = 0.9f;
  op.act.group = 16;
  const std::vector<float> x_before = x;
  std::vector<float> y(n * out);
  backend->linear(op, x.data(), n, y.data());
  EXPECT_EQ(x, x_before) << "linear() must not modify its input";
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t o = 0; o < out; ++o) {
      double ref = bias[o], magnitude = std::fabs(bias[o]);
      for (int64_t k = 0; k < in; ++k) {
        const double term = static_cast<double>(expected_input[i * in + k]) * weight.at(o, k);
        ref += term;
        magnitude += std::fabs(term);
      }
      EXPECT_NEAR(y[i * out + o], ref, 1e-5 * magnitude) << isa_name(isa) << " (" << i << ", " << o << ")";
    }
  }
}

TEST(CpuBackend, PlainLinearMatchesProduct) {
  const int64_t n = 3, in = 20, out = 7;
  Tensor weight({out, in});
  weight.data = test::random_floats(out * in, 21);
  const auto x = test::random_floats(n * in, 22);
  const auto backend = make_cpu_backend();
  const auto packed = backend->pack(weight);
  LinearOp op;
  op.weight = packed.get();
  std::vector<float> y(n * out);
  backend->linear(op, x.data(), n, y.data());
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t o = 0; o < out; ++o) {
      double ref = 0.0;
      for (int64_t k = 0; k < in; ++k) ref += static_cast<double>(x[i * in + k]) * weight.at(o, k);
      EXPECT_NEAR(y[i * out + o], ref, 1e-5);
    }
  }
}

TEST(CpuBackend, RejectsMismatchedInputs) {
  const auto backend = make_cpu_backend();
  EXPECT_THROW(backend->pack(Tensor({4})), Error);
  Tensor weight({4, 8}, 1.0f);
  const auto packed = backend->pack(weight);
  OnlineRotation wrong;
  wrong.p = 4;  // size 4, but rows have 8 values
  LinearOp op;
  op.weight = packed.get();
  op.input_rotation = &wrong;
  std::vector<float> x(8, 1.0f), y(4);
  EXPECT_THROW(backend->linear(op, x.data(), 1, y.data()), Error);
  OnlineRotation identity;  // default: a no-op for any width
  op.input_rotation = &identity;
  EXPECT_NO_THROW(backend->linear(op, x.data(), 1, y.data()));
  for (float v : y) EXPECT_FLOAT_EQ(v, 8.0f);
  LinearOp no_weight;
  EXPECT_THROW(backend->linear(no_weight, x.data(), 1, y.data()), Error);
}

}  // namespace
}  // namespace quarot
