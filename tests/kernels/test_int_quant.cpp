#include "kernels/cpu/int_quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/error.h"
#include "kernel_test_util.h"
#include "kernels/cpu/fake_quant.h"

namespace quarot {
namespace {

TEST(IntQuant, SymmetricDequantizesToFakeQuant) {
  for (int bits : {2, 4, 8}) {
    const auto x = test::random_floats(300, bits, -3.0, 2.0);
    std::vector<int8_t> q(x.size());
    const float s = quantize_sym(x.data(), 300, bits, 0.9f, q.data());
    std::vector<float> fake = x;
    fake_quant_sym(fake.data(), 300, bits, 0.9f);
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_EQ(s * static_cast<float>(q[i]), fake[i]) << bits << " bits, index " << i;
      EXPECT_GE(q[i], -(1 << (bits - 1)));
      EXPECT_LE(q[i], (1 << (bits - 1)) - 1);
    }
  }
}

TEST(IntQuant, AsymmetricDequantizesToFakeQuant) {
  for (int bits : {1, 4, 8}) {
    const auto x = test::random_floats(300, 10 + bits, -1.0, 4.0);
    std::vector<uint8_t> q(x.size());
    const AsymQuantParams p = quantize_asym(x.data(), 300, bits, 1.0f, q.data());
    std::vector<float> fake = x;
    fake_quant_asym(fake.data(), 300, bits, 1.0f);
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_EQ(p.scale * (static_cast<float>(q[i]) - static_cast<float>(p.zero)), fake[i]) << bits << " bits";
      EXPECT_LE(q[i], (1 << bits) - 1);
    }
  }
}

TEST(IntQuant, ZeroGroupAndNonFiniteInput) {
  std::vector<float> zeros(4, 0.0f);
  std::vector<int8_t> q(4, 5);
  EXPECT_EQ(quantize_sym(zeros.data(), 4, 4, 1.0f, q.data()), 0.0f);
  EXPECT_EQ(q, std::vector<int8_t>(4, 0));
  std::vector<float> bad = {1.0f, NAN};
  EXPECT_THROW(quantize_sym(bad.data(), 2, 4, 1.0f, q.data()), Error);
  std::vector<uint8_t> uq(2);
  bad[1] = INFINITY;
  EXPECT_THROW(quantize_asym(bad.data(), 2, 4, 1.0f, uq.data()), Error);
}

}  // namespace
}  // namespace quarot
