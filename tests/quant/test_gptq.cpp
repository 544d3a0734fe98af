#include <gtest/gtest.h>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "quant/cholesky.h"
#include "quant/gptq.h"
#include "quant/rtn.h"
#include "quant_test_util.h"
#include "test_support.h"

namespace quarot {
namespace {

using test::output_error;
using test::correlated_inputs;
using test::hessian_of;
using test::random_matrix;

std::vector<double> identity(int64_t n, double scale = 1.0) {
  std::vector<double> h(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i) h[i * n + i] = scale;
  return h;
}

WeightQuantSpec spec_of(int bits, bool sym, int64_t group, bool clip_search) {
  WeightQuantSpec s;
  s.bits = bits;
  s.symmetric = sym;
  s.group = group;
  s.clip_search = clip_search;
  return s;
}

TEST(HessianAccumulator, MatchesDirectFormula) {
  const Tensor x = random_matrix(150, 37, 11);
  HessianAccumulator acc(37);
  acc.add(x.data.data(), 100, 37);
  acc.add(x.data.data() + 100 * 37, 50, 37);
  EXPECT_EQ(acc.rows_seen(), 150);
  const std::vector<double> h = acc.finalize();
  for (int64_t i = 0; i < 37; ++i)
    for (int64_t j = 0; j < 37; ++j) {
      double s = 0.0, magnitude = 0.0;
      for (int64_t t = 0; t < 150; ++t) {
        s += static_cast<double>(x.at(t, i)) * x.at(t, j);
        magnitude += std::fabs(static_cast<double>(x.at(t, i)) * x.at(t, j));
      }
      // FP32 sums of at most kHessianChunk products: error <= chunk * 2^-24 * sum |x_i x_j|.
      const double bound = kHessianChunk * std::ldexp(1.0, -24) * magnitude;
      EXPECT_NEAR(h[i * 37 + j], 2.0 * s / 150.0, 2.0 * bound / 150.0);
    }
}

TEST(HessianAccumulator, ConcurrentAddsGiveTheSameSum) {
  const Tensor x = random_matrix(256, 130, 12);
  HessianAccumulator serial(130), concurrent(130);
  serial.add(x.data.data(), 256, 130);
#pragma omp parallel for num_threads(4)
  for (int chunk = 0; chunk < 8; ++chunk) concurrent.add(x.data.data() + chunk * 32 * 130, 32, 130);
  const auto a = serial.finalize(), b = concurrent.finalize();
  // Chunks of 32 rows instead of 256: the FP32 partial sums differ in rounding only.
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5 * (1 + std::fabs(a[i])));
}

TEST(HessianAccumulator, Errors) {
  HessianAccumulator acc(8);
  EXPECT_THROW(acc.finalize(), Error);
  std::vector<float> row(9, 1.0f);
  EXPECT_THROW(acc.add(row.data(), 1, 9), Error);
  EXPECT_THROW(HessianAccumulator(0), Error);
}

TEST(Cholesky, FactorsInvertsAndUpperOfInverse) {
  const int64_t n = 131;  // crosses several panels
  const Tensor b = random_matrix(n, n, 13);
  std::vector<double> a(n * n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = i == j ? 1.0 : 0.0;
      for (int64_t k = 0; k < n; ++k) s += static_cast<double>(b.at(i, k)) * b.at(j, k) / n;
      a[i * n + j] = s;
    }
  std::vector<double> l = a;
  ASSERT_TRUE(cholesky_lower_inplace(l, n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      if (j > i) {
        ASSERT_EQ(l[i * n + j], 0.0);
        continue;
      }
      double s = 0.0;
      for (int64_t k = 0; k <= j; ++k) s += l[i * n + k] * l[j * n + k];
      ASSERT_NEAR(s, a[i * n + j], 1e-10);
    }
  const std::vector<double> x = invert_lower_triangular(l, n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0.0;
      for (int64_t k = 0; k < n; ++k) s += l[i * n + k] * x[k * n + j];
      ASSERT_NEAR(s, i == j ? 1.0 : 0.0, 1e-10);
    }
  std::vector<double> u;
  ASSERT_TRUE(upper_cholesky_of_inverse(a, n, u));
  // U is upper with a positive diagonal and U^T U A = I.
  std::vector<double> utu(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_GT(u[i * n + i], 0.0);
    for (int64_t j = 0; j < i; ++j) ASSERT_EQ(u[i * n + j], 0.0);
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0.0;
      for (int64_t k = 0; k < n; ++k) s += u[k * n + i] * u[k * n + j];
      utu[i * n + j] = s;
    }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0.0;
      for (int64_t k = 0; k < n; ++k) s += utu[i * n + k] * a[k * n + j];
      ASSERT_NEAR(s, i == j ? 1.0 : 0.0, 1e-9);
    }
  std::vector<double> not_pd = identity(5);
  not_pd[2 * 5 + 2] = -1.0;
  EXPECT_FALSE(cholesky_lower_inplace(not_pd, 5));
}

// With H = I there is no cross-column error feedback: GPTQ is RTN, bit for bit.
TEST(Gptq, IdentityHessianEqualsRtn) {
  const Tensor w = random_matrix(40, 96, 14);
  for (bool sym : {true, false}) {
    for (int64_t group : {0, 32}) {
      for (bool clip : {false, true}) {
        for (bool static_groups : {false, true}) {
          const WeightQuantSpec spec = spec_of(4, sym, group, clip);
          GptqOptions o;
          o.block = 40;  // not a multiple of the group: exercises batch alignment
          o.static_groups = static_groups;
          const QuantizedMatrix g = quantize_gptq(w, identity(96), spec, o);
          const QuantizedMatrix r = quantize_rtn(w, spec);
          EXPECT_EQ(g.codes, r.codes) << sym << group << clip;
          EXPECT_EQ(g.scales, r.scales);
          EXPECT_EQ(g.zeros, r.zeros);
        }
      }
    }
  }
}

// A diagonal Hessian also has no cross terms, whatever the column order: act_order
// must then still give RTN, which checks that codes land in their original columns.
TEST(Gptq, ActOrderWithDiagonalHessianEqualsRtn) {
  const Tensor w = random_matrix(20, 64, 15);
  std::vector<double> h = identity(64);
  Rng rng(16);
  for (int64_t i = 0; i < 64; ++i) h[i * 64 + i] = 0.1 + 10.0 * rng.uniform();
  const WeightQuantSpec spec = spec_of(4, true, 0, true);
  GptqOptions o;
  o.act_order = true;
  const QuantizedMatrix g = quantize_gptq(w, h, spec, o);
  const QuantizedMatrix r = quantize_rtn(w, spec);
  EXPECT_EQ(g.codes, r.codes);
  EXPECT_EQ(g.scales, r.scales);
}

struct GptqCase {
  bool sym;
  int64_t group;
  bool act_order;
  bool static_groups;
};

TEST(Gptq, BeatsRtnOnCorrelatedInputs) {
  const int64_t in = 128, out = 48;
  const Tensor x = correlated_inputs(1024, in, 17, 20.0f);
  const Tensor w = random_matrix(out, in, 18, 0.05f);
  const std::vector<double> h = hessian_of(x);
  const GptqCase cases[] = {{true, 0, false, false}, {false, 0, false, false}, {true, 0, true, false},
                            {true, 32, false, false}, {true, 32, false, true}, {false, 32, true, true}};
  for (const GptqCase& c : cases) {
    const WeightQuantSpec spec = spec_of(4, c.sym, c.group, true);
    GptqOptions o;
    o.act_order = c.act_order;
    o.static_groups = c.static_groups;
    const QuantizedMatrix g = quantize_gptq(w, h, spec, o);
    ASSERT_NO_THROW(g.validate("test", "w"));
    const double e_gptq = output_error(x, w, g.dequantize());
    const double e_rtn = output_error(x, w, quantize_rtn(w, spec).dequantize());
    std::printf("GPTQ / RTN output error, sym %d group %lld act_order %d static %d: %.3f\n", c.sym,
                static_cast<long long>(c.group), c.act_order, c.static_groups, e_gptq / e_rtn);
    // GPTQ without its error feedback is RTN (ratio 1); exactness is checked against the
    // independent implementation in MatchesIndependentPyTorchGptq. Here the ratio shows
    // that the feedback works on every option path: measured 0.056-0.078 on these
    // inputs (4 dominant directions make RTN's error large), bound 0.2.
    EXPECT_LT(e_gptq, 0.2 * e_rtn) << "sym " << c.sym << " group " << c.group << " act_order " << c.act_order
                                   << " static " << c.static_groups;
  }
}

// Against an independent GPTQ: tools/reference/gptq_reference.py (PyTorch, float64,
// written from the paper) on one 16 x 48 layer whose Hessian comes from correlated
// inputs with four dominant directions, committed in tests/reference/gptq_layer.json.
// quarot runs the error feedback in FP32, so a code may differ where the updated weight
// lands within FP32 noise of a rounding boundary (measured: 0 of 768 in each case, on
// AVX2; the bound allows 1% for other summation orders); the proxy
// loss tr((W - Q) H (W - Q)^T) must then still equal the reference's to within 1%, while
// RTN (GPTQ without feedback) is 15-30x worse on this layer (fixture: 2.92 / 1.52 vs
// 0.161 / 0.104 / 0.096).
TEST(Gptq, MatchesIndependentPyTorchGptq) {
  const auto ref = nlohmann::json::parse(test::read_text(test::reference_fixture("gptq_layer.json")));
  const int64_t rows = ref["rows"].get<int64_t>(), cols = ref["cols"].get<int64_t>();
  Tensor w({rows, cols});
  w.data = ref["weight"].get<std::vector<float>>();
  const auto h = ref["hessian"].get<std::vector<double>>();
  ASSERT_EQ(static_cast<int64_t>(h.size()), cols * cols);
  auto proxy_loss = [&](const Tensor& q) {
    double total = 0.0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < cols; ++i)
        for (int64_t j = 0; j < cols; ++j)
          total += (static_cast<double>(w.at(r, i)) - q.at(r, i)) * h[i * cols + j] *
                   (static_cast<double>(w.at(r, j)) - q.at(r, j));
    return total;
  };
  int checked = 0;
  for (const auto& c : ref["cases"]) {
    const WeightQuantSpec spec = spec_of(ref["bits"].get<int>(), c["symmetric"].get<bool>(), c["group"].get<int64_t>(), false);
    GptqOptions o;
    o.block = c["block"].get<int64_t>();
    o.act_order = c["act_order"].get<bool>();
    o.percdamp = ref["percdamp"].get<double>();
    const QuantizedMatrix g = quantize_gptq(w, h, spec, o);
    const auto want = c["codes"].get<std::vector<int>>();
    ASSERT_EQ(want.size(), g.codes.size());
    int64_t mismatches = 0;
    for (size_t i = 0; i < want.size(); ++i) mismatches += want[i] != g.codes[i];
    const double loss = proxy_loss(g.dequantize());
    const double want_loss = c["loss_gptq"].get<double>(), rtn_loss = c["loss_rtn"].get<double>();
    const std::string label = "symmetric " + c["symmetric"].dump() + " group " + c["group"].dump() +
                              " act_order " + c["act_order"].dump();
    std::printf("GPTQ vs PyTorch reference (%s): %lld of %zu codes differ, loss %.6g vs %.6g (RTN %.6g)\n",
                label.c_str(), static_cast<long long>(mismatches), want.size(), loss, want_loss, rtn_loss);
    EXPECT_LE(mismatches, static_cast<int64_t>(want.size()) / 100) << label;
    EXPECT_NEAR(loss, want_loss, 0.01 * want_loss) << label;
    EXPECT_LT(want_loss, 0.8 * rtn_loss) << "the fixture's layer must make GPTQ matter";
    // The grids agree to FP32 rounding (dynamic groups are taken from updated weights).
    const auto want_scales = c["scales"].get<std::vector<double>>();
    ASSERT_EQ(want_scales.size(), g.scales.size());
    for (size_t i = 0; i < want_scales.size(); ++i) EXPECT_NEAR(g.scales[i], want_scales[i], 1e-5 * want_scales[i]) << label;
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

TEST(Gptq, DeadColumnsAreZeroed) {
  const Tensor w = random_matrix(8, 32, 19);
  std::vector<double> h = identity(32);
  h[5 * 32 + 5] = 0.0;
  const QuantizedMatrix g = quantize_gptq(w, h, spec_of(4, false, 0, false), GptqOptions{});
  const Tensor d = g.dequantize();
  for (int64_t r = 0; r < 8; ++r) EXPECT_EQ(d.at(r, 5), 0.0f);
}

TEST(Gptq, Errors) {
  const Tensor w = random_matrix(8, 32, 20);
  const WeightQuantSpec spec = spec_of(4, true, 0, false);
  EXPECT_THROW(quantize_gptq(w, identity(31), spec, GptqOptions{}), Error);
  EXPECT_THROW(quantize_gptq(w, identity(32, -1.0), spec, GptqOptions{}), Error);  // not positive definite
  std::vector<double> nan_h = identity(32);
  nan_h[3] = std::nan("");
  EXPECT_THROW(quantize_gptq(w, nan_h, spec, GptqOptions{}), Error);
  GptqOptions o;
  o.act_order = true;
  EXPECT_THROW(quantize_gptq(w, identity(32), spec_of(4, true, 8, false), o), Error);
  EXPECT_THROW(quantize_gptq(w, identity(32), spec_of(4, true, 5, false), GptqOptions{}), Error);
}

// GCC defines __SANITIZE_*__; clang 14 defines only __SANITIZE_ADDRESS__, and tells
// of ThreadSanitizer through __has_feature.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// Model-sized layers (SmolLM2-135M: 1536 x 576 and 576 x 1536), clip search included.
TEST(Gptq, ModelSizedLayersAreFast) {
  if (kSanitized) GTEST_SKIP() << "timing is meaningless under sanitizers";
  for (auto [out, in] : {std::pair<int64_t, int64_t>{1536, 576}, {576, 1536}}) {
    const Tensor w = random_matrix(out, in, 21, 0.02f);
    const Tensor x = random_matrix(64, in, 22);
    HessianAccumulator acc(in);
    acc.add(x.data.data(), 64, in);
    const std::vector<double> h = acc.finalize();
    const auto t0 = std::chrono::steady_clock::now();
    const QuantizedMatrix g = quantize_gptq(w, h, spec_of(4, true, 0, true), GptqOptions{});
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("GPTQ %ldx%ld: %.3f s on %d threads\n", static_cast<long>(out), static_cast<long>(in), s,
                omp_get_max_threads());
    // ~0.2 s and ~0.5 s on 2 idle cores; the bound only catches an algorithmic blow-up,
    // since CI machines are shared and wall time under contention varies several-fold.
    EXPECT_LT(s, 20.0);
    EXPECT_EQ(g.rows, out);
  }
}

}  // namespace
}  // namespace quarot
