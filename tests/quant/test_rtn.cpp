#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "kernels/cpu/fast_math.h"
#include "quant/rtn.h"
#include "quant_test_util.h"

namespace quarot {
namespace {

using test::lp_error;
using test::random_matrix;

TEST(FastMath, PowMatchesStdPow) {
  double worst = 0.0;
  for (double x = 1e-6; x < 1e4; x *= 1.0137) {
    for (float p : {2.4f, 2.0f, 1.0f}) {
      const double want = std::pow(x, static_cast<double>(p));
      const double got = detail::fast_pow_abs(static_cast<float>(x), p);
      worst = std::max(worst, std::fabs(got - want) / want);
      EXPECT_EQ(detail::fast_pow_abs(-static_cast<float>(x), p), detail::fast_pow_abs(static_cast<float>(x), p));
    }
  }
  EXPECT_LT(worst, 3e-6);
  EXPECT_LT(detail::fast_pow_abs(0.0f, 2.4f), 1e-37f);
}

WeightQuantSpec plain_spec(int bits, bool sym, int64_t group = 0) {
  WeightQuantSpec s;
  s.bits = bits;
  s.symmetric = sym;
  s.group = group;
  s.clip_search = false;
  return s;
}

// Without clipping every weight lies inside its grid, so rounding moves it by at most half a step.
TEST(Rtn, ErrorIsAtMostHalfAStep) {
  const Tensor w = random_matrix(24, 96, 1);
  for (int bits : {2, 3, 4, 8}) {
    for (bool sym : {true, false}) {
      for (int64_t group : {0, 32}) {
        const QuantizedMatrix q = quantize_rtn(w, plain_spec(bits, sym, group));
        ASSERT_NO_THROW(q.validate("test", "w"));
        const Tensor d = q.dequantize();
        for (int64_t r = 0; r < w.rows(); ++r)
          for (int64_t c = 0; c < w.cols(); ++c)
            ASSERT_LE(std::fabs(w.at(r, c) - d.at(r, c)), q.params(r, c).scale * 0.5f * (1 + 1e-5f))
                << "bits " << bits << " sym " << sym << " group " << group << " at " << r << "," << c;
      }
    }
  }
}

// Scales follow the documented formulas, computed here independently per row/group.
TEST(Rtn, ScalesFollowTheFormulas) {
  const Tensor w = random_matrix(8, 64, 2);
  const int bits = 4;
  const QuantizedMatrix sym = quantize_rtn(w, plain_spec(bits, true, 16));
  const QuantizedMatrix asym = quantize_rtn(w, plain_spec(bits, false, 16));
  ASSERT_EQ(sym.scales.size(), 8u * 4u);
  ASSERT_TRUE(sym.zeros.empty());
  ASSERT_EQ(asym.zeros.size(), 8u * 4u);
  for (int64_t r = 0; r < 8; ++r) {
    for (int64_t g = 0; g < 4; ++g) {
      float amax = 0.0f, lo = 0.0f, hi = 0.0f;
      for (int64_t c = g * 16; c < g * 16 + 16; ++c) {
        amax = std::max(amax, std::fabs(w.at(r, c)));
        lo = std::min(lo, w.at(r, c));
        hi = std::max(hi, w.at(r, c));
      }
      EXPECT_FLOAT_EQ(sym.scales[r * 4 + g], amax / 7.0f);
      const float s = (hi - lo) / 15.0f;
      EXPECT_FLOAT_EQ(asym.scales[r * 4 + g], s);
      EXPECT_EQ(asym.zeros[r * 4 + g], std::nearbyint(-lo / s));
    }
  }
  // Symmetric integers stay in [-qmax-1, qmax] = [-8, 7]; the row maximum maps to +-7.
  for (int64_t r = 0; r < 8; ++r)
    for (int64_t c = 0; c < 64; ++c) {
      EXPECT_GE(sym.integer_value(r, c), -8);
      EXPECT_LE(sym.integer_value(r, c), 7);
    }
}

// Weights already on a grid (power-of-two steps, the extremes present) come back exactly.
TEST(Rtn, ExactOnGridValues) {
  Rng rng(3);
  const int64_t rows = 6, cols = 40;
  for (int bits : {3, 4, 8}) {
    const int qmax = (1 << (bits - 1)) - 1;
    Tensor w({rows, cols});
    std::vector<int> ints(rows * cols);
    for (int64_t r = 0; r < rows; ++r) {
      const float step = std::ldexp(1.0f, -4 - static_cast<int>(r));
      for (int64_t c = 0; c < cols; ++c) {
        int q = static_cast<int>(rng.below(2 * qmax + 1)) - qmax;
        if (c == 0) q = (r % 2 == 0) ? qmax : -qmax;  // pins max|w| to qmax * step
        ints[r * cols + c] = q;
        w.at(r, c) = step * static_cast<float>(q);
      }
    }
    const QuantizedMatrix q = quantize_rtn(w, plain_spec(bits, true));
    EXPECT_EQ(q.dequantize().data, w.data) << bits;
    for (int64_t i = 0; i < rows * cols; ++i) EXPECT_EQ(q.integer_value(i / cols, i % cols), ints[i]);

    // Asymmetric: w = step * (code - z) with codes spanning [0, 2^b - 1].
    const int top = (1 << bits) - 1;
    Tensor wa({rows, cols});
    for (int64_t r = 0; r < rows; ++r) {
      const float step = std::ldexp(1.0f, -3 - static_cast<int>(r));
      const int z = static_cast<int>(rng.below(top + 1));
      for (int64_t c = 0; c < cols; ++c) {
        int code = static_cast<int>(rng.below(top + 1));
        if (c == 0) code = 0;
        if (c == 1) code = top;
        wa.at(r, c) = step * static_cast<float>(code - z);
      }
    }
    const QuantizedMatrix qa = quantize_rtn(wa, plain_spec(bits, false));
    EXPECT_EQ(qa.dequantize().data, wa.data) << bits;
  }
}

TEST(Rtn, GroupsAreIndependent) {
  Tensor w = random_matrix(4, 64, 4);
  const QuantizedMatrix before = quantize_rtn(w, plain_spec(4, true, 16));
  w.at(2, 5) = 100.0f;  // an outlier in group 0 of row 2
  const QuantizedMatrix after = quantize_rtn(w, plain_spec(4, true, 16));
  for (int64_t i = 0; i < 16; ++i) {
    if (i == 2 * 4 + 0) {
      EXPECT_FLOAT_EQ(after.scales[i], 100.0f / 7.0f);
    } else {
      EXPECT_EQ(after.scales[i], before.scales[i]) << i;
    }
  }
}

TEST(Rtn, ZeroRowsStayZero) {
  Tensor w({3, 8}, 0.0f);
  w.at(1, 3) = 0.5f;
  for (bool sym : {true, false}) {
    const QuantizedMatrix q = quantize_rtn(w, plain_spec(4, sym));
    ASSERT_NO_THROW(q.validate("t", "w"));
    const Tensor d = q.dequantize();
    for (int64_t c = 0; c < 8; ++c) {
      EXPECT_EQ(d.at(0, c), 0.0f);
      EXPECT_EQ(d.at(2, c), 0.0f);
    }
  }
}

// The clip search picks the best candidate of its grid: never worse than no clipping,
// and as good as an exhaustive double-precision search over the same candidates.
TEST(Rtn, ClipSearchNeverWorseAndMatchesBruteForce) {
  Rng rng(5);
  const int64_t rows = 40, cols = 128;
  Tensor w({rows, cols});
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      // Heavy tails in half the rows (Student-t like), where clipping pays off.
      const double z = rng.normal();
      w.at(r, c) = static_cast<float>(r % 2 == 0 ? z : z / std::sqrt(0.05 + rng.uniform()));
    }
  int strictly_better = 0;
  for (int bits : {3, 4}) {
    for (bool sym : {true, false}) {
      for (int64_t group : {0, 32}) {
        WeightQuantSpec spec = plain_spec(bits, sym, group);
        const Tensor plain = quantize_rtn(w, spec).dequantize();
        spec.clip_search = true;
        const QuantizedMatrix searched_q = quantize_rtn(w, spec);
        const Tensor searched = searched_q.dequantize();
        const int64_t gs = group > 0 ? group : cols;
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t g0 = 0; g0 < cols; g0 += gs) {
            const float* x = w.row(r) + g0;
            const double e_plain = lp_error(x, plain.row(r) + g0, gs, 2.4);
            const double e_search = lp_error(x, searched.row(r) + g0, gs, 2.4);
            EXPECT_LE(e_search, e_plain * (1 + 1e-5));
            if (e_search < e_plain * 0.999) ++strictly_better;
            // Brute force over the same shrink factors, with exact arithmetic in the error.
            float lo = 0.0f, hi = 0.0f;
            for (int64_t i = 0; i < gs; ++i) {
              lo = std::min(lo, x[i]);
              hi = std::max(hi, x[i]);
            }
            double best = 1e300;
            for (int i = 0; i < 80; ++i) {
              const QuantParams p = quant_params_for_clip(lo, hi, 1.0f - i / 100.0f, bits, sym);
              std::vector<float> d(gs);
              for (int64_t k = 0; k < gs; ++k) d[k] = dequantize_code(quantize_to_code(x[k], p, bits), p);
              best = std::min(best, lp_error(x, d.data(), gs, 2.4));
            }
            EXPECT_LE(e_search, best * (1 + 1e-5));
          }
        }
      }
    }
  }
  EXPECT_GT(strictly_better, 20);
}

TEST(Rtn, RejectsBadSpecs) {
  const Tensor w = random_matrix(4, 30, 6);
  EXPECT_THROW(quantize_rtn(w, plain_spec(4, true, 8)), Error);  // 8 does not divide 30
  EXPECT_THROW(quantize_rtn(w, plain_spec(1, true)), Error);
  EXPECT_THROW(quantize_rtn(w, plain_spec(9, true)), Error);
  EXPECT_THROW(quantize_rtn(Tensor({30}), plain_spec(4, true)), Error);
  Tensor with_nan = w;
  with_nan.at(1, 2) = std::nanf("");
  EXPECT_THROW(quantize_rtn(with_nan, plain_spec(4, true)), Error);
}

TEST(QuantizedMatrix, ValidateCatchesCorruption) {
  const Tensor w = random_matrix(4, 16, 7);
  QuantizedMatrix q = quantize_rtn(w, plain_spec(4, false));
  ASSERT_NO_THROW(q.validate("f", "w"));
  QuantizedMatrix bad = q;
  bad.scales[1] = std::nanf("");
  EXPECT_THROW(bad.validate("f", "w"), Error);
  bad = q;
  bad.codes[3] = 16;
  EXPECT_THROW(bad.validate("f", "w"), Error);
  bad = q;
  bad.zeros[0] = 2.5f;
  EXPECT_THROW(bad.validate("f", "w"), Error);
  bad = q;
  bad.scales.pop_back();
  EXPECT_THROW(bad.validate("f", "w"), Error);
}

TEST(Packing, Int4LowNibbleFirst) {
  const std::vector<uint8_t> codes = {1, 2, 15, 0, 7};
  const std::vector<uint8_t> packed = pack_codes(codes, 4);
  EXPECT_EQ(packed, (std::vector<uint8_t>{0x21, 0x0f, 0x07}));
  EXPECT_EQ(unpack_codes(packed.data(), 3, 5, 4, "t"), codes);
  EXPECT_THROW(unpack_codes(packed.data(), 2, 5, 4, "t"), Error);
}

TEST(Packing, RoundTripAllWidths) {
  Rng rng(8);
  for (int bits = 2; bits <= 8; ++bits) {
    for (int64_t n : {0, 1, 2, 33, 1000}) {
      std::vector<uint8_t> codes(n);
      for (auto& c : codes) c = static_cast<uint8_t>(rng.below(1u << bits));
      const std::vector<uint8_t> packed = pack_codes(codes, bits);
      EXPECT_EQ(static_cast<int64_t>(packed.size()), packed_size(n, bits));
      EXPECT_EQ(static_cast<int64_t>(packed.size()), bits <= 4 ? (n + 1) / 2 : n);
      EXPECT_EQ(unpack_codes(packed.data(), static_cast<int64_t>(packed.size()), n, bits, "t"), codes);
    }
  }
}

}  // namespace
}  // namespace quarot
