#include "kernels/cpu/fake_quant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/error.h"
#include "kernel_test_util.h"

namespace quarot {
namespace {

TEST(FakeQuant, SymmetricHandComputed) {
  // 4 bits: qmax = 7, s = 7 / 7 = 1; 3.5 rounds half to even -> 4.
  std::vector<float> x = {1.0f, -2.0f, 3.5f, 7.0f};
  fake_quant_sym(x.data(), 4, 4, 1.0f);
  EXPECT_EQ(x, (std::vector<float>{1.0f, -2.0f, 4.0f, 7.0f}));
  // Half to even both ways: 0.5 -> 0, -1.5 -> -2, 2.5 -> 2.
  x = {0.5f, -1.5f, 2.5f, 7.0f};
  fake_quant_sym(x.data(), 4, 4, 1.0f);
  EXPECT_EQ(x, (std::vector<float>{0.0f, -2.0f, 2.0f, 7.0f}));
  // The negative extreme may use -qmax - 1: 3 bits, qmax = 3, s = 8 / 3.
  x = {-8.0f, 8.0f};
  fake_quant_sym(x.data(), 2, 3, 1.0f);
  EXPECT_FLOAT_EQ(x[0], -8.0f);
  EXPECT_FLOAT_EQ(x[1], 8.0f);
}

TEST(FakeQuant, ClipRatioShrinksTheScaleAndSaturates) {
  // clip 0.5: s = 0.5 * 7 / 7 = 0.5, 7 / 0.5 = 14 clamps to 7 -> 3.5.
  std::vector<float> x = {1.0f, -2.0f, 3.5f, 7.0f};
  fake_quant_sym(x.data(), 4, 4, 0.5f);
  EXPECT_EQ(x, (std::vector<float>{1.0f, -2.0f, 3.5f, 3.5f}));
  // On random data, clipping lowers the error of the values it does not saturate.
  const auto data = test::random_floats(256, 9);
  std::vector<float> full = data, clipped = data;
  fake_quant_sym(full.data(), 256, 4, 1.0f);
  fake_quant_sym(clipped.data(), 256, 4, 0.8f);
  float amax = 0.0f;
  for (float v : data) amax = std::max(amax, std::fabs(v));
  double err_full = 0.0, err_clipped = 0.0;
  for (int i = 0; i < 256; ++i) {
    // Saturation at s * qmax = clip * amax above, s * (-qmax - 1) below.
    EXPECT_LE(clipped[i], 0.8f * amax * (1.0f + 1e-6f));
    EXPECT_GE(clipped[i], -0.8f * amax * 8.0f / 7.0f * (1.0f + 1e-6f));
    if (std::fabs(data[i]) < 0.7f * amax) {
      err_full += std::pow(full[i] - data[i], 2);
      err_clipped += std::pow(clipped[i] - data[i], 2);
    }
  }
  EXPECT_LT(err_clipped, err_full);
}

TEST(FakeQuant, AsymmetricHandComputed) {
  // 2 bits: qmax = 3, lo = -1, hi = 2, s = 1, z = 1; 0.5 -> round(0.5) = 0 -> 0.
  std::vector<float> x = {-1.0f, 0.0f, 0.5f, 2.0f};
  fake_quant_asym(x.data(), 4, 2, 1.0f);
  EXPECT_EQ(x, (std::vector<float>{-1.0f, 0.0f, 0.0f, 2.0f}));
  // All positive: lo = min(min x, 0) = 0, so z = 0 and s = 3 / 15.
  x = {1.0f, 2.0f, 3.0f};
  fake_quant_asym(x.data(), 3, 4, 1.0f);
  const float s = 3.0f / 15.0f;
  EXPECT_FLOAT_EQ(x[0], s * 5.0f);
  EXPECT_FLOAT_EQ(x[1], s * 10.0f);
  EXPECT_FLOAT_EQ(x[2], s * 15.0f);
}

TEST(FakeQuant, AsymmetricZeroPointKeepsZeroExact) {
  // lo = -0.3, hi = 2.7, s = 0.2, z = round(1.5) = 2: zero maps to q = z -> exactly 0.
  std::vector<float> x = {-0.3f, 0.0f, 1.0f, 2.7f};
  fake_quant_asym(x.data(), 4, 4, 1.0f);
  EXPECT_EQ(x[1], 0.0f);
  const float s = (2.7f - (-0.3f)) / 15.0f;
  for (float v : x) {
    const float steps = v / s;
    EXPECT_NEAR(steps, std::nearbyint(steps), 1e-4) << "on the quantization grid";
  }
  EXPECT_NEAR(x[3], 2.7f, s / 2 + 1e-6f);
  EXPECT_NEAR(x[0], -0.3f, s / 2 + 1e-6f);
}

TEST(FakeQuant, RoundTripErrorIsAtMostHalfAStep) {
  for (int bits : {2, 4, 8}) {
    const auto data = test::random_floats(1000, 40 + bits, -3.0, 5.0);
    std::vector<float> sym = data, asym = data;
    fake_quant_sym(sym.data(), 1000, bits, 1.0f);
    fake_quant_asym(asym.data(), 1000, bits, 1.0f);
    float amax = 0.0f, lo = 0.0f, hi = 0.0f;
    for (float v : data) {
      amax = std::max(amax, std::fabs(v));
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    const float s_sym = amax / static_cast<float>((1 << (bits - 1)) - 1);
    const float s_asym = (hi - lo) / static_cast<float>((1 << bits) - 1);
    for (int i = 0; i < 1000; ++i) {
      EXPECT_LE(std::fabs(sym[i] - data[i]), s_sym / 2 * (1 + 1e-5f)) << bits << " bits";
      EXPECT_LE(std::fabs(asym[i] - data[i]), s_asym / 2 * (1 + 1e-5f) + 1e-6f) << bits << " bits";
    }
  }
}

TEST(FakeQuant, QuantizingTwiceChangesNothing) {
  for (bool symmetric : {true, false}) {
    std::vector<float> once = test::random_floats(4 * 64, symmetric ? 1 : 2, -2.0, 3.0);
    fake_quant_rows(once.data(), 4, 64, 4, 1.0f, 16, symmetric);
    std::vector<float> twice = once;
    fake_quant_rows(twice.data(), 4, 64, 4, 1.0f, 16, symmetric);
    for (size_t i = 0; i < once.size(); ++i) EXPECT_NEAR(twice[i], once[i], 1e-6f * (1 + std::fabs(once[i])));
  }
}

TEST(FakeQuant, ZeroGroupStaysZero) {
  std::vector<float> x(2 * 8, 0.0f);
  for (int i = 8; i < 16; ++i) x[i] = static_cast<float>(i);
  fake_quant_rows(x.data(), 2, 8, 4, 1.0f, 0, true);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(x[i], 0.0f);
  std::vector<float> z(5, 0.0f);
  fake_quant_asym(z.data(), 5, 4, 0.9f);
  for (float v : z) EXPECT_EQ(v, 0.0f);
}

TEST(FakeQuant, GroupsAreQuantizedIndependently) {
  const auto data = test::random_floats(3 * 24, 77);
  std::vector<float> grouped = data;
  fake_quant_rows(grouped.data(), 3, 24, 3, 0.9f, 8, false);
  std::vector<float> by_hand = data;
  for (int g = 0; g < 9; ++g) fake_quant_asym(by_hand.data() + 8 * g, 8, 3, 0.9f);
  EXPECT_EQ(grouped, by_hand);
}

TEST(FakeQuant, NanPropagatesWithoutTouchingOtherRows) {
  std::vector<float> x = {1.0f, NAN, 2.0f, 3.0f, 1.0f, -2.0f, 3.5f, 7.0f};
  fake_quant_rows(x.data(), 2, 4, 4, 1.0f, 0, true);
  EXPECT_TRUE(std::isnan(x[1]));
  EXPECT_EQ(std::vector<float>(x.begin() + 4, x.end()), (std::vector<float>{1.0f, -2.0f, 4.0f, 7.0f}));
  std::vector<float> y = {NAN, 1.0f};
  fake_quant_asym(y.data(), 2, 4, 1.0f);
  EXPECT_TRUE(std::isnan(y[0]));
}

TEST(FakeQuant, RejectsBadArguments) {
  std::vector<float> x(12, 1.0f);
  EXPECT_THROW(fake_quant_sym(x.data(), 12, 1, 1.0f), Error);
  EXPECT_THROW(fake_quant_sym(x.data(), 12, 17, 1.0f), Error);
  EXPECT_THROW(fake_quant_sym(x.data(), 12, 4, 0.0f), Error);
  EXPECT_THROW(fake_quant_rows(x.data(), 2, 6, 4, 1.0f, 4, true), Error);  // 4 does not divide 6
  EXPECT_THROW(fake_quant_rows(x.data(), 2, 6, 4, 1.0f, -1, true), Error);
}

}  // namespace
}  // namespace quarot
