// codebook_gemm (CLAQ lookup-table kernels): every instruction-set path this CPU runs
// against a double-precision product on the naive dequantized weights, for decode and
// prefill row counts and the layout's edge cases; and the CPU backend on codebook
// weights, simulated and not.
#include "kernels/cpu/codebook_gemm.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>
#include <vector>

#include "codebook_test_util.h"
#include "common/error.h"
#include "kernel_test_util.h"
#include "kernels/cpu/cpu_backend.h"

namespace quarot {
namespace {

using test::CodebookCase;
using test::random_codebook;

struct Shape {
  int64_t rows, cols;
  std::vector<int> widths;
};

const std::vector<Shape>& shapes() {
  static const std::vector<Shape> s = {
      {1, 1, {2}},           {5, 7, {2, 3, 4}},      {64, 16, {4}},       {65, 17, {2, 3, 4}},
      {130, 33, {1, 2, 3, 4, 5, 6, 7, 8}}, {200, 96, {2, 3, 4}}, {33, 300, {3}}, {192, 576, {2, 3, 4}},
      {97, 64, {2}},
  };
  return s;
}

// |y - ref| <= (cols + 8) * 2^-23 * sum_c |w x|: FP32 accumulation in any order, plus
// one rounding per outlier correction, each at most 2^-24 of a term.
void expect_close(const std::vector<float>& y, const std::vector<double>& ref, const std::vector<double>& mag,
                  int64_t cols, const std::string& what) {
  ASSERT_EQ(y.size(), ref.size());
  for (size_t i = 0; i < y.size(); ++i) {
    const double tol = (cols + 8) * std::ldexp(1.0, -23) * mag[i] + 1e-30;
    ASSERT_LE(std::fabs(y[i] - ref[i]), tol) << what << " at " << i << ": " << y[i] << " vs " << ref[i];
  }
}

void reference(const std::vector<float>& w, int64_t rows, int64_t cols, const std::vector<float>& x, int64_t n,
               const float* bias, std::vector<double>& ref, std::vector<double>& mag) {
  ref.assign(n * rows, 0.0);
  mag.assign(n * rows, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < rows; ++r) {
      double s = bias != nullptr ? bias[r] : 0.0, m = bias != nullptr ? std::fabs(bias[r]) : 0.0;
      for (int64_t c = 0; c < cols; ++c) {
        const double t = static_cast<double>(w[r * cols + c]) * x[i * cols + c];
        s += t;
        m += std::fabs(t);
      }
      ref[i * rows + r] = s;
      mag[i * rows + r] = m;
    }
}

TEST(CodebookGemm, EveryIsaMatchesTheFormula) {
  uint64_t seed = 100;
  for (const Shape& s : shapes()) {
    const CodebookCase cc = random_codebook(s.rows, s.cols, s.widths, seed++);
    const WeightEncoding e = cc.encode();
    const CodebookGemmWeight packed = pack_codebook_weight(e);
    const std::vector<float> w = cc.naive();
    const std::vector<float> bias = test::random_floats(s.rows, seed++);
    for (int64_t n : {1, 2, 3, 4, 5, 7, 8, 9, 17, 40}) {
      const std::vector<float> x = test::random_floats(n * s.cols, seed++);
      for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
        std::vector<double> ref, mag;
        reference(w, s.rows, s.cols, x, n, b, ref, mag);
        for (Isa isa : test::supported_isas()) {
          std::vector<float> y(n * s.rows, 1e30f);
          codebook_gemm(packed, x.data(), n, b, y.data(), isa);
          expect_close(y, ref, mag, s.cols,
                       std::string(isa_name(isa)) + " " + std::to_string(s.rows) + "x" + std::to_string(s.cols) +
                           " n=" + std::to_string(n) + (b ? " bias" : ""));
        }
      }
    }
  }
}

// Outliers change the result by (value - centroid) * x exactly where they sit: a
// weight with and without them differs by that product alone.
TEST(CodebookGemm, OutliersAreApplied) {
  CodebookCase cc = random_codebook(70, 40, {2, 3, 4}, 7, 0.0);
  const WeightEncoding plain = cc.encode();
  cc.outliers = {{0, 0, 3.0f}, {69, 39, -2.5f}, {64, 5, 1.25f}};
  const WeightEncoding with = cc.encode();
  const std::vector<float> wp = plain.dequantize(), wo = with.dequantize();
  std::vector<float> x(40, 0.0f);
  x[0] = 1.0f;
  x[39] = 2.0f;
  x[5] = -1.0f;
  for (Isa isa : test::supported_isas()) {
    for (int64_t n : {1, 12}) {
      std::vector<float> xs;
      for (int64_t i = 0; i < n; ++i) xs.insert(xs.end(), x.begin(), x.end());
      std::vector<float> yp(n * 70), yo(n * 70);
      codebook_gemm(pack_codebook_weight(plain), xs.data(), n, nullptr, yp.data(), isa);
      codebook_gemm(pack_codebook_weight(with), xs.data(), n, nullptr, yo.data(), isa);
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_NEAR(yo[i * 70 + 0] - yp[i * 70 + 0], (3.0f - wp[0]) * 1.0f, 1e-5) << isa_name(isa);
        EXPECT_NEAR(yo[i * 70 + 69] - yp[i * 70 + 69], (-2.5f - wp[69 * 40 + 39]) * 2.0f, 1e-5) << isa_name(isa);
        EXPECT_NEAR(yo[i * 70 + 64] - yp[i * 70 + 64], (1.25f - wp[64 * 40 + 5]) * -1.0f, 1e-5) << isa_name(isa);
        EXPECT_EQ(yo[i * 70 + 1], yp[i * 70 + 1]) << isa_name(isa);
      }
    }
  }
  EXPECT_EQ(wo[0], 3.0f);
}

TEST(CodebookGemm, ResultsDoNotDependOnThreadCount) {
  const CodebookCase cc = random_codebook(300, 130, {2, 3, 4}, 11);
  const CodebookGemmWeight packed = pack_codebook_weight(cc.encode());
  const int saved = omp_get_max_threads();
  for (int64_t n : {1, 6, 20}) {
    const std::vector<float> x = test::random_floats(n * 130, 12);
    for (Isa isa : test::supported_isas()) {
      std::vector<float> y1(n * 300), y2(n * 300);
      omp_set_num_threads(1);
      codebook_gemm(packed, x.data(), n, nullptr, y1.data(), isa);
      omp_set_num_threads(3);
      codebook_gemm(packed, x.data(), n, nullptr, y2.data(), isa);
      EXPECT_EQ(y1, y2) << isa_name(isa) << " n=" << n;
    }
  }
  omp_set_num_threads(saved);
}

TEST(CodebookGemm, RejectsBadCalls) {
  const CodebookCase cc = random_codebook(8, 8, {2}, 3);
  const CodebookGemmWeight packed = pack_codebook_weight(cc.encode());
  std::vector<float> x(8), y(8), wf(64);
  EXPECT_THROW(pack_codebook_weight(f32_weight(wf.data(), 8, 8)), Error);
  EXPECT_THROW(codebook_gemm(packed, x.data(), -1, nullptr, y.data(), Isa::kScalar), Error);
  EXPECT_THROW(codebook_gemm(packed, nullptr, 1, nullptr, y.data(), Isa::kScalar), Error);
  EXPECT_THROW(codebook_gemm(CodebookGemmWeight{}, x.data(), 1, nullptr, y.data(), Isa::kScalar), Error);
  codebook_gemm(packed, nullptr, 0, nullptr, nullptr, Isa::kScalar);  // nothing to do
  for (Isa isa : test::all_isas())
    if (!isa_supported(isa)) {
      EXPECT_THROW(codebook_gemm(packed, x.data(), 1, nullptr, y.data(), isa), Error);
    }
}

// The backend runs codebook weights through the kernels (not simulated) or as FP32
// dequantized weights (simulated); both give the formula's product.
TEST(CodebookGemm, CpuBackendRunsCodebookWeights) {
  const CodebookCase cc = random_codebook(150, 96, {2, 3, 4}, 21);
  const WeightEncoding e = cc.encode();
  const std::vector<float> w = cc.naive();
  for (Isa isa : test::supported_isas()) {
    const auto fast = make_cpu_backend(CpuBackendOptions{.simulate = false, .isa = isa_name(isa)});
    const auto sim = make_cpu_backend(CpuBackendOptions{.simulate = true, .isa = isa_name(isa)});
    const auto pf = fast->pack(e), ps = sim->pack(e);
    EXPECT_EQ(pf->bytes, e.stored_bytes());
    EXPECT_EQ(ps->bytes, 150 * 96 * 4);
    for (int64_t n : {1, 4, 16}) {
      const std::vector<float> x = test::random_floats(n * 96, 30 + n);
      std::vector<double> ref, mag;
      reference(w, 150, 96, x, n, nullptr, ref, mag);
      std::vector<float> yf(n * 150), ys(n * 150);
      LinearOp op;
      op.weight = pf.get();
      fast->linear(op, x.data(), n, yf.data());
      op.weight = ps.get();
      sim->linear(op, x.data(), n, ys.data());
      expect_close(yf, ref, mag, 96, std::string("backend ") + isa_name(isa));
      expect_close(ys, ref, mag, 96, std::string("simulated ") + isa_name(isa));
    }
  }
}

}  // namespace
}  // namespace quarot
