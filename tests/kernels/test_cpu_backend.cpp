#include "kernels/cpu/cpu_backend.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/error.h"
#include "common/tensor.h"
#include "kernel_test_util.h"
#include "kernels/cpu/fake_quant.h"
#include "kernels/cpu/fwht.h"

namespace quarot {
namespace {

TEST(CpuBackend, NameSaysWhichPathRuns) {
  for (Isa isa : test::supported_isas()) {
    const auto backend = make_cpu_backend(isa);
    EXPECT_EQ(backend->name().rfind(std::string("cpu-fp32 ") + isa_name(isa), 0), 0u) << backend->name();
  }
  EXPECT_NE(make_cpu_backend()->name().find(isa_name(best_isa())), std::string::npos);
  if (!isa_supported(Isa::kAvx512)) EXPECT_THROW(make_cpu_backend(Isa::kAvx512), Error);
}

// backend.linear() with an online rotation and activation quantization must equal
// rotation -> fake quantization -> double-precision product, composed by hand.
TEST(CpuBackend, LinearEqualsComposedPieces) {
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

  std::vector<float> expected_input = x;
  apply_online_rotation(rotation, expected_input.data(), n, in);
  fake_quant_rows(expected_input.data(), n, in, 4, 0.9f, 16, true);

  for (Isa isa : test::supported_isas()) {
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
