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
    // Every row count on the small shapes; the large one (a default-model shape) at a few.
    const std::vector<int64_t> ns = s.rows * s.cols > 50000 ? std::vector<int64_t>{1, 4, 9}
                                                            : std::vector<int64_t>{1, 2, 3, 4, 5, 7, 8, 9, 17, 40};
    for (int64_t n : ns) {
      const std::vector<float> x = test::random_floats(n * s.cols, seed++);
      for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
        std::vector<double> ref, mag;
        reference(w, s.rows, s.cols, x, n, b, ref, mag);
        for (Isa isa : test::supported_isas()) {
          for (CodebookPath path : {CodebookPath::kAuto, CodebookPath::kLut, CodebookPath::kPanels}) {
            if (path == CodebookPath::kLut && n > kCodebookLutMaxRows) continue;
            std::vector<float> y(n * s.rows, 1e30f);
            codebook_gemm(packed, x.data(), n, b, y.data(), isa, path);
            expect_close(y, ref, mag, s.cols,
                         std::string(isa_name(isa)) + " path " + std::to_string(static_cast<int>(path)) + " " +
                             std::to_string(s.rows) + "x" + std::to_string(s.cols) + " n=" + std::to_string(n) +
                             (b ? " bias" : ""));
          }
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
    for (int64_t n : {1, 2, 12}) {
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
  std::vector<float> x9(9 * 8), y9(9 * 8);
  EXPECT_THROW(codebook_gemm(packed, x9.data(), 9, nullptr, y9.data(), Isa::kScalar, CodebookPath::kLut), Error);
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

// codebook_gemm_many gives each product's codebook_gemm result, bit for bit, plus the
// residual added after the bias: for serial (small) and parallel (large) work lists,
// decode and prefill row counts, odd row counts, mixed widths with outliers, and a
// residual that aliases the output.
TEST(CodebookGemm, ManyProductsMatchSeparateCalls) {
  struct Case {
    std::vector<int64_t> rows;
    int64_t cols;
  };
  // 65 + 192 + 33 rows of 96: serial; 3 x ~600 rows of 576 (> 640K weights): parallel.
  const std::vector<Case> cases = {{{65, 192, 33}, 96}, {{576, 600, 97}, 576}, {{1536, 1535}, 576}};
  uint64_t seed = 500;
  for (const Case& c : cases) {
    std::vector<CodebookGemmWeight> packed;
    std::vector<std::vector<float>> bias;
    for (int64_t r : c.rows) {
      packed.push_back(pack_codebook_weight(random_codebook(r, c.cols, {2, 3, 4}, seed++, 0.01).encode()));
      bias.push_back(test::random_floats(r, seed++));
    }
    const int count = static_cast<int>(c.rows.size());
    for (int64_t n : {1, 3, 4, 9}) {
      const std::vector<float> x = test::random_floats(n * c.cols, seed++);
      for (Isa isa : test::supported_isas()) {
        std::vector<std::vector<float>> sep(count), res(count), got(count), aliased(count);
        std::vector<CodebookGemmProduct> prod(count), prod_alias(count);
        for (int j = 0; j < count; ++j) {
          const int64_t size = n * c.rows[j];
          sep[j].assign(size, 0.0f);
          codebook_gemm(packed[j], x.data(), n, j % 2 == 0 ? bias[j].data() : nullptr, sep[j].data(), isa);
          res[j] = test::random_floats(size, seed++);
          got[j].assign(size, 1e30f);
          aliased[j] = res[j];
          const float* b = j % 2 == 0 ? bias[j].data() : nullptr;
          // Product 1 without a residual, the others with one.
          prod[j] = {&packed[j], b, j == 1 ? nullptr : res[j].data(), got[j].data()};
          prod_alias[j] = {&packed[j], b, aliased[j].data(), aliased[j].data()};
        }
        codebook_gemm_many(prod.data(), count, x.data(), n, isa);
        codebook_gemm_many(prod_alias.data(), count, x.data(), n, isa);
        const std::string what = std::string(isa_name(isa)) + " cols=" + std::to_string(c.cols) +
                                 " n=" + std::to_string(n);
        for (int j = 0; j < count; ++j)
          for (size_t i = 0; i < sep[j].size(); ++i) {
            const float want = j == 1 ? sep[j][i] : sep[j][i] + res[j][i];
            ASSERT_EQ(got[j][i], want) << what << " product " << j << " at " << i;
            ASSERT_EQ(aliased[j][i], sep[j][i] + res[j][i]) << what << " aliased, product " << j << " at " << i;
          }
      }
    }
  }
}

TEST(CodebookGemm, ManyProductsDoNotDependOnThreadCount) {
  std::vector<CodebookGemmWeight> packed;
  for (int64_t r : {1536, 1536}) packed.push_back(pack_codebook_weight(random_codebook(r, 576, {2, 4}, r + 3).encode()));
  const int saved = omp_get_max_threads();
  for (int64_t n : {1, 2}) {
    const std::vector<float> x = test::random_floats(n * 576, 77);
    for (Isa isa : test::supported_isas()) {
      std::vector<float> a1(n * 1536), b1(n * 1536), a3(n * 1536), b3(n * 1536);
      CodebookGemmProduct p1[2] = {{&packed[0], nullptr, nullptr, a1.data()}, {&packed[1], nullptr, nullptr, b1.data()}};
      CodebookGemmProduct p3[2] = {{&packed[0], nullptr, nullptr, a3.data()}, {&packed[1], nullptr, nullptr, b3.data()}};
      omp_set_num_threads(1);
      codebook_gemm_many(p1, 2, x.data(), n, isa);
      omp_set_num_threads(3);
      codebook_gemm_many(p3, 2, x.data(), n, isa);
      EXPECT_EQ(a1, a3) << isa_name(isa);
      EXPECT_EQ(b1, b3) << isa_name(isa);
    }
  }
  omp_set_num_threads(saved);
}

TEST(CodebookGemm, ManyRejectsBadCalls) {
  const CodebookGemmWeight a = pack_codebook_weight(random_codebook(8, 8, {2}, 3).encode());
  const CodebookGemmWeight b = pack_codebook_weight(random_codebook(8, 16, {2}, 4).encode());
  std::vector<float> x(16), y1(8), y2(8);
  CodebookGemmProduct mixed[2] = {{&a, nullptr, nullptr, y1.data()}, {&b, nullptr, nullptr, y2.data()}};
  EXPECT_THROW(codebook_gemm_many(mixed, 2, x.data(), 1, Isa::kScalar), Error);
  CodebookGemmProduct no_out[1] = {{&a, nullptr, nullptr, nullptr}};
  EXPECT_THROW(codebook_gemm_many(no_out, 1, x.data(), 1, Isa::kScalar), Error);
  CodebookGemmProduct no_w[1] = {{nullptr, nullptr, nullptr, y1.data()}};
  EXPECT_THROW(codebook_gemm_many(no_w, 1, x.data(), 1, Isa::kScalar), Error);
  std::vector<CodebookGemmProduct> many(kCodebookMaxProducts + 1, CodebookGemmProduct{&a, nullptr, nullptr, y1.data()});
  EXPECT_THROW(codebook_gemm_many(many.data(), static_cast<int>(many.size()), x.data(), 1, Isa::kScalar), Error);
  codebook_gemm_many(mixed, 0, x.data(), 1, Isa::kScalar);  // nothing to do
}

// The backend's linears() on codebook weights (one rotation of x, one product call)
// and linear() with accumulate (the residual added by the GEMV) give exactly what
// separate linear() calls into scratch plus an add give.
TEST(CodebookGemm, CpuBackendSharesCodebookLinears) {
  const int64_t cols = 96;
  std::vector<WeightEncoding> enc;
  std::vector<CodebookCase> cases;
  for (int64_t r : {150, 33, 96}) cases.push_back(random_codebook(r, cols, {2, 3, 4}, 40 + r));
  for (const CodebookCase& c : cases) enc.push_back(c.encode());
  const OnlineRotation hadamard{1, 32, 3, {}};
  for (Isa isa : test::supported_isas()) {
    const auto be = make_cpu_backend(CpuBackendOptions{.simulate = false, .isa = isa_name(isa)});
    std::vector<std::unique_ptr<PackedWeight>> pw;
    for (const WeightEncoding& e : enc) pw.push_back(be->pack(e));
    for (const OnlineRotation* rot : {static_cast<const OnlineRotation*>(nullptr), &hadamard}) {
      for (int64_t n : {1, 2, 7}) {
        const std::vector<float> x = test::random_floats(n * cols, 60 + n);
        std::vector<LinearOp> ops(3);
        std::vector<std::vector<float>> sep(3), got(3), prods(3);
        std::vector<float*> ys(3);
        for (int j = 0; j < 3; ++j) {
          ops[j].weight = pw[j].get();
          ops[j].input_rotation = rot;
          ops[j].accumulate = j == 2;
          const int64_t rows = cases[j].rows;
          // Separate: the plain product, then the residual added by hand.
          std::vector<float> prod(n * rows);
          LinearOp plain = ops[j];
          plain.accumulate = false;
          be->linear(plain, x.data(), n, prod.data());
          const std::vector<float> res = test::random_floats(n * rows, 90 + j);
          sep[j] = prod;
          prods[j] = prod;
          if (j == 2)
            for (int64_t i = 0; i < n * rows; ++i) sep[j][i] = res[i] + prod[i];
          got[j] = j == 2 ? res : std::vector<float>(n * rows, 1e30f);
          ys[j] = got[j].data();
        }
        be->linears(ops.data(), 3, x.data(), n, ys.data());
        const std::string what = std::string(isa_name(isa)) + (rot ? " rotated" : "") + " n=" + std::to_string(n);
        for (int j = 0; j < 3; ++j) EXPECT_EQ(got[j], sep[j]) << what << " op " << j;
        // linear() with accumulate alone: y = res + product, as the residual add gives.
        std::vector<float> y2 = test::random_floats(n * cases[2].rows, 92), want2 = y2;
        for (size_t i = 0; i < want2.size(); ++i) want2[i] = want2[i] + prods[2][i];
        be->linear(ops[2], x.data(), n, y2.data());
        EXPECT_EQ(y2, want2) << what << " linear() accumulate";
      }
    }
  }
}

}  // namespace
}  // namespace quarot
