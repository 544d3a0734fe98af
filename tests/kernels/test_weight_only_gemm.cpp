#include "kernels/cpu/weight_only_gemm.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/half.h"
#include "common/rng.h"
#include "kernel_test_util.h"
#include "kernels/cpu/weight_only_gemm_kernels.h"

namespace quarot {
namespace {

// A weight description the tests build encodings from.
struct WeightCase {
  WeightKind kind;
  int bits = 0;  // int only
  bool symmetric = true;
  int64_t group = 0;
  std::string name() const {
    if (kind == WeightKind::kF16) return "f16";
    return "int" + std::to_string(bits) + (symmetric ? "sym" : "asym") + "g" + std::to_string(group);
  }
};

// Random encoding of shape [rows, cols]; halves keep a few F16 subnormals in play.
WeightEncoding make_weight(const WeightCase& wc, int64_t rows, int64_t cols, uint64_t seed,
                           std::vector<uint16_t>& halves) {
  Rng rng(seed);
  if (wc.kind == WeightKind::kF16) {
    halves.resize(rows * cols);
    for (auto& h : halves) {
      const double v = rng.uniform() < 0.02 ? (rng.uniform() - 0.5) * 1e-6 : 2.0 * rng.uniform() - 1.0;
      h = fp32_to_fp16(static_cast<float>(v));
    }
    return f16_weight(halves.data(), rows, cols);
  }
  const int64_t ng = wc.group > 0 ? cols / wc.group : 1;
  const int top = (1 << wc.bits) - 1;
  std::vector<uint8_t> codes(rows * cols);
  for (auto& c : codes) c = static_cast<uint8_t>(rng.below(top + 1));
  std::vector<float> scales(rows * ng), zeros;
  for (auto& s : scales) s = static_cast<float>(0.01 + 0.1 * rng.uniform());
  if (!wc.symmetric) {
    zeros.resize(rows * ng);
    for (auto& z : zeros) z = static_cast<float>(rng.below(top + 1));
  }
  return make_int_grid_weight(wc.bits, wc.symmetric, wc.group, rows, cols, codes, std::move(scales), std::move(zeros));
}

// Worst-case error of an FP32 sum of k products (any order, with or without FMA)
// plus one bias addition: gamma_{k+1} = (k+1)u / (1 - (k+1)u) times sum |w x| + |b|.
double rounding_bound(int64_t k) {
  const double u = std::ldexp(1.0, -24);
  return (k + 1) * u / (1.0 - (k + 1) * u);
}

void expect_matches_reference(const WeightEncoding& w, const std::vector<float>& x, int64_t n,
                              const std::vector<float>& bias, const std::vector<float>& y, const std::string& label) {
  const std::vector<float> wd = w.dequantize();
  const double gamma = rounding_bound(w.cols);
  double err_sq = 0.0, ref_sq = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t r = 0; r < w.rows; ++r) {
      double ref = 0.0, magnitude = 0.0;
      for (int64_t c = 0; c < w.cols; ++c) {
        const double t = static_cast<double>(wd[r * w.cols + c]) * x[i * w.cols + c];
        ref += t;
        magnitude += std::fabs(t);
      }
      if (!bias.empty()) {
        ref += bias[r];
        magnitude += std::fabs(bias[r]);
      }
      const double got = y[i * w.rows + r];
      ASSERT_LE(std::fabs(got - ref), gamma * magnitude) << label << " at (" << i << ", " << r << ")";
      err_sq += (got - ref) * (got - ref);
      ref_sq += ref * ref;
    }
  }
  ASSERT_GT(ref_sq, 0.0) << label;  // the data exercise the product (a zero output would fail above)
  EXPECT_LE(std::sqrt(err_sq / ref_sq), 1e-5) << label;
}

class WeightOnlyPath : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam())) GTEST_SKIP() << "this CPU cannot run the " << isa_name(GetParam()) << " path";
  }
};

INSTANTIATE_TEST_SUITE_P(Isa, WeightOnlyPath, ::testing::ValuesIn(test::all_isas()),
                         [](const ::testing::TestParamInfo<Isa>& i) { return std::string(isa_name(i.param)); });

std::vector<WeightCase> weight_cases(int64_t cols) {
  std::vector<WeightCase> cases = {{WeightKind::kF16}};
  // Groups: per row; multiples of 8 with an even (32) and odd (72) number of 8-column
  // chunks where cols allows (96: six 16-column AVX-512 chunks, one 4-chain step and a
  // remainder); and sizes that are not multiples of 8 (chunks straddle
  // groups). groups[1] and groups[2] are used below for the 3- and 5-bit cases.
  const std::vector<int64_t> groups = cols % 288 == 0 ? std::vector<int64_t>{0, 32, 36, 72, 96}
                                                      : std::vector<int64_t>{0, 20, cols / 4};
  for (int bits : {4, 8})
    for (bool sym : {true, false})
      for (int64_t g : groups) cases.push_back({WeightKind::kIntGrid, bits, sym, g});
  cases.push_back({WeightKind::kIntGrid, 2, false, 0});
  cases.push_back({WeightKind::kIntGrid, 3, true, groups[1]});
  cases.push_back({WeightKind::kIntGrid, 5, false, groups[2]});
  return cases;
}

TEST_P(WeightOnlyPath, MatchesDoubleReference) {
  const Isa isa = GetParam();
  const int64_t rows = 37;
  // 100 and 60: a ragged last chunk of 4 columns after an even / odd number of chunks.
  for (int64_t cols : {576, 100, 60}) {
    for (const WeightCase& wc : weight_cases(cols)) {
      std::vector<uint16_t> halves;
      const WeightEncoding w = make_weight(wc, rows, cols, 11 + cols, halves);
      for (int64_t n : {1, 2, 5, 8, 9, 64}) {
        for (bool with_bias : {false, true}) {
          const auto x = test::random_floats(n * cols, 100 + n);
          const auto bias = with_bias ? test::random_floats(rows, 7) : std::vector<float>{};
          std::vector<float> y(n * rows, std::numeric_limits<float>::quiet_NaN());
          weight_only_gemm(w, x.data(), n, with_bias ? bias.data() : nullptr, y.data(), isa);
          expect_matches_reference(w, x, n, bias, y,
                                   std::string(isa_name(isa)) + " " + wc.name() + " cols=" + std::to_string(cols) +
                                       " n=" + std::to_string(n) + (with_bias ? " bias" : ""));
        }
      }
    }
  }
}

// With one-hot activations every output is a single weight times 1 plus exact zeros,
// so it must equal dequantize_rows' value bit for bit (the exactness contract),
// including the columns of a ragged last chunk.
TEST_P(WeightOnlyPath, UsesExactlyTheDequantizedWeights) {
  const Isa isa = GetParam();
  const int64_t rows = 37, cols = 100;
  for (const WeightCase& wc : weight_cases(cols)) {
    std::vector<uint16_t> halves;
    const WeightEncoding w = make_weight(wc, rows, cols, 5, halves);
    const std::vector<float> wd = w.dequantize();
    for (int64_t n : {1, 8, 9, 40}) {
      std::vector<float> x(n * cols, 0.0f);
      for (int64_t i = 0; i < n; ++i) x[i * cols + (i * 37 + 99) % cols] = 1.0f;
      std::vector<float> y(n * rows);
      weight_only_gemm(w, x.data(), n, nullptr, y.data(), isa);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t r = 0; r < rows; ++r)
          ASSERT_EQ(y[i * rows + r], wd[r * cols + (i * 37 + 99) % cols])
              << isa_name(isa) << " " << wc.name() << " n=" << n << " at (" << i << ", " << r << ")";
    }
  }
}

TEST_P(WeightOnlyPath, WritesNothingOutsideTheOutput) {
  const Isa isa = GetParam();
  const int64_t rows = 37, cols = 100;
  std::vector<uint16_t> halves;
  const WeightEncoding w = make_weight({WeightKind::kIntGrid, 4, false, 20}, rows, cols, 9, halves);
  for (int64_t n : {3, 13}) {
    const auto x = test::random_floats(n * cols, 4);
    std::vector<float> y(n * rows + 64, -7.0f);
    weight_only_gemm(w, x.data(), n, nullptr, y.data() + 32, isa);
    for (int64_t j = 0; j < 32; ++j) {
      EXPECT_EQ(y[j], -7.0f);
      EXPECT_EQ(y[32 + n * rows + j], -7.0f);
    }
  }
}

TEST_P(WeightOnlyPath, ResultDoesNotDependOnThreadCount) {
  const int saved = omp_get_max_threads();
  const Isa isa = GetParam();
  // 1203 rows: decode (n = 1) splits them into three runs, the last one ragged.
  const int64_t rows = 1203, cols = 576;
  for (const WeightCase& wc : {WeightCase{WeightKind::kF16}, WeightCase{WeightKind::kIntGrid, 8, true, 0},
                               WeightCase{WeightKind::kIntGrid, 4, true, 32}}) {
    std::vector<uint16_t> halves;
    const WeightEncoding w = make_weight(wc, rows, cols, 21, halves);
    for (int64_t n : {1, 5, 70}) {
      const auto x = test::random_floats(n * cols, 3);
      std::vector<float> one(n * rows), many(n * rows);
      omp_set_num_threads(1);
      weight_only_gemm(w, x.data(), n, nullptr, one.data(), isa);
      omp_set_num_threads(3);
      weight_only_gemm(w, x.data(), n, nullptr, many.data(), isa);
      EXPECT_EQ(one, many) << isa_name(isa) << " " << wc.name() << " n=" << n;
    }
  }
  omp_set_num_threads(saved);
}

// The SIMD path and the scalar reference differ only by summation order.
TEST(WeightOnlyGemm, Avx2AgreesWithScalar) {
  if (!isa_supported(Isa::kAvx2)) GTEST_SKIP() << "this CPU cannot run the avx2 path";
  const int64_t rows = 37, cols = 576;
  for (const WeightCase& wc : weight_cases(cols)) {
    std::vector<uint16_t> halves;
    const WeightEncoding w = make_weight(wc, rows, cols, 31, halves);
    for (int64_t n : {1, 2, 5, 8, 9, 64}) {
      const auto x = test::random_floats(n * cols, 41);
      std::vector<float> a(n * rows), b(n * rows);
      weight_only_gemm(w, x.data(), n, nullptr, a.data(), Isa::kScalar);
      weight_only_gemm(w, x.data(), n, nullptr, b.data(), Isa::kAvx2);
      const std::vector<float> wd = w.dequantize();
      for (int64_t i = 0; i < n; ++i)
        for (int64_t r = 0; r < rows; ++r) {
          double magnitude = 0.0;
          for (int64_t c = 0; c < cols; ++c) magnitude += std::fabs(double(wd[r * cols + c]) * x[i * cols + c]);
          ASSERT_LE(std::fabs(double(a[i * rows + r]) - b[i * rows + r]), 2 * rounding_bound(cols) * magnitude)
              << wc.name() << " n=" << n << " at (" << i << ", " << r << ")";
        }
    }
  }
}

// Decode's one-activation-row kernel (several rows at once: the lm_head at F16 or
// 8 bits) gives each row exactly the one-row kernel's result, for every stored
// format (per-row and grouped scales, symmetric and not, groups straddling the
// 8-column chunks) on every shape of ragged rows and columns, and starting at any
// row (the GEMV hands each thread runs that begin mid-matrix).
TEST(WeightOnlyGemm, RowBlocksMatchTheOneRowKernel) {
  using weight_only_detail::RowView;
  std::vector<const weight_only_detail::WeightOnlyKernels*> tables = {&weight_only_detail::weight_only_kernels_scalar()};
  if (isa_supported(Isa::kAvx2)) tables.push_back(&weight_only_detail::weight_only_kernels_avx2());
  // AVX-512: its F16 rows of 16-column multiples take a 16-lane kernel in rows1 (where
  // wide_f16_rows()) and the AVX2 one in dot_row, which must agree bit for bit.
  if (isa_supported(Isa::kAvx512)) tables.push_back(&weight_only_detail::weight_only_kernels_avx512());
  for (int64_t cols : {1, 7, 8, 15, 16, 17, 24, 32, 40, 100, 576, 1000}) {
    std::vector<WeightCase> cases = {{WeightKind::kF16}};
    for (int bits : {8, 4, 3})
      for (bool sym : {true, false})
        for (int64_t g : {int64_t{0}, int64_t{8}, int64_t{20}, int64_t{40}})
          if (g == 0 || cols % g == 0) cases.push_back({WeightKind::kIntGrid, bits, sym, g});
    for (const WeightCase& wc : cases) {
      const int64_t rows = 37;
      std::vector<uint16_t> halves;
      const WeightEncoding w = make_weight(wc, rows, cols, 51 + cols, halves);
      const auto x = test::random_floats(cols, 61 + cols);
      const std::vector<float> wd = w.dequantize();
      auto view = [&](int64_t r) { return weight_only_detail::row_view(w, r); };
      for (const auto* k : tables) {
        // The AVX-512 nibble kernels take the activations in split order (weight_only_gemm_kernels.h).
        std::vector<float> xk = x;
        if (k->splits_nibbles && weight_only_detail::split_nibble_row(view(0)))
          weight_only_detail::split_nibble_columns(x.data(), 1, cols, xk.data());
        for (int64_t start : {0, 1, 5}) {
          for (int64_t count : {1, 3, 4, 5, 8, 32}) {
            std::vector<float> block(count, -1.0f), single(count, -2.0f);
            k->rows1(view(start), w.row_bytes(), count, xk.data(), block.data());
            for (int64_t r = 0; r < count; ++r) k->dot_row(view(start + r), xk.data(), 1, &single[r]);
            ASSERT_EQ(block, single) << wc.name() << " cols=" << cols << " start=" << start << " rows=" << count;
            // ... and that result is the product (a kernel that skipped rows or
            // columns would match itself but not this).
            for (int64_t r = 0; r < count; ++r) {
              double ref = 0.0, magnitude = 0.0;
              for (int64_t c = 0; c < cols; ++c) {
                const double t = double(wd[(start + r) * cols + c]) * x[c];
                ref += t;
                magnitude += std::fabs(t);
              }
              ASSERT_LE(std::fabs(block[r] - ref), rounding_bound(cols) * magnitude)
                  << wc.name() << " cols=" << cols << " row " << start + r;
            }
          }
        }
      }
    }
  }
}

TEST(WeightOnlyGemm, RejectsBadInput) {
  std::vector<float> wf(4 * 8, 0.5f), x(8, 1.0f), y(4);
  EXPECT_THROW(weight_only_gemm(f32_weight(wf.data(), 4, 8), x.data(), 1, nullptr, y.data(), Isa::kScalar), Error);
  std::vector<uint16_t> halves(4 * 8, fp32_to_fp16(0.5f));
  const WeightEncoding h = f16_weight(halves.data(), 4, 8);
  EXPECT_THROW(weight_only_gemm(h, x.data(), -1, nullptr, y.data(), Isa::kScalar), Error);
  EXPECT_THROW(weight_only_gemm(h, nullptr, 1, nullptr, y.data(), Isa::kScalar), Error);
  WeightEncoding empty;
  empty.kind = WeightKind::kF16;
  EXPECT_THROW(weight_only_gemm(empty, x.data(), 1, nullptr, y.data(), Isa::kScalar), Error);
  WeightEncoding bad_bits = make_int_grid_weight(4, true, 0, 4, 8, std::vector<uint8_t>(32, 3), std::vector<float>(4, 1.0f), {});
  bad_bits.bits = 9;
  EXPECT_THROW(weight_only_gemm(bad_bits, x.data(), 1, nullptr, y.data(), Isa::kScalar), Error);
  for (Isa isa : test::all_isas())
    if (!isa_supported(isa)) {
      EXPECT_THROW(weight_only_gemm(h, x.data(), 1, nullptr, y.data(), isa), Error);
    }
  // n = 0 is a no-op, not an error.
  EXPECT_NO_THROW(weight_only_gemm(h, nullptr, 0, nullptr, nullptr, Isa::kScalar));
}

}  // namespace
}  // namespace quarot
