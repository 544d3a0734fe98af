#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "common/error.h"
#include "common/half.h"
#include "common/rng.h"
#include "quant/claq.h"
#include "quant/codebook_matrix.h"
#include "quant/gptq.h"
#include "quant/rtn.h"
#include "quant_test_util.h"

namespace quarot {
namespace {

using test::output_error;
using test::correlated_inputs;
using test::hessian_of;
using test::random_matrix;

std::vector<double> identity(int64_t n) {
  std::vector<double> h(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i) h[i * n + i] = 1.0;
  return h;
}

float fp16(float v) { return fp16_to_fp32(fp32_to_fp16(v)); }

// Heavy tails: 2% of the weights 8x larger, and every column its own scale, so
// per-column codebooks have something to adapt to that a per-row grid cannot.
Tensor heavy_tailed_layer(int64_t rows, int64_t cols, uint64_t seed) {
  Rng rng(seed);
  Tensor w({rows, cols});
  std::vector<float> scale(cols);
  for (float& s : scale) s = static_cast<float>(0.5 + 1.5 * rng.uniform());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      w.at(r, c) = static_cast<float>(rng.normal()) * scale[c] * (rng.uniform() < 0.02 ? 8.0f : 1.0f);
  return w;
}

ClaqOptions claq_opts(double bits, double outliers = 0.0) {
  ClaqOptions o;
  o.bits = bits;
  o.outlier_fraction = outliers;
  return o;
}

double mean_bits(const std::vector<uint8_t>& b) {
  return std::accumulate(b.begin(), b.end(), 0.0) / static_cast<double>(b.size());
}

TEST(Claq, WidthsFollowThePaper) {
  EXPECT_EQ(claq_widths(2.12).low, 2);
  EXPECT_EQ(claq_widths(2.12).high, 4);
  EXPECT_EQ(claq_widths(3.12).low, 3);
  EXPECT_EQ(claq_widths(3.12).high, 4);
  EXPECT_EQ(claq_widths(3.0).high, 3);
  EXPECT_EQ(claq_widths(4.5).low, 4);
  EXPECT_EQ(claq_widths(4.5).high, 5);
  EXPECT_EQ(claq_widths(8.0).low, 8);
  EXPECT_EQ(claq_widths(8.0).high, 8);
}

TEST(Claq, BudgetIsMetToOneColumn) {
  const Tensor w = heavy_tailed_layer(32, 301, 1);
  const std::vector<int64_t> ranking = claq_column_ranking(w, 13.0);
  for (double budget : {2.0, 2.05, 2.12, 2.5, 3.0, 3.12, 3.9, 5.3, 8.0}) {
    const std::vector<uint8_t> bits = claq_column_bits(ranking, budget);
    const ClaqWidths wd = claq_widths(budget);
    // Rounding the high-column count moves the mean by at most half a column's step.
    EXPECT_NEAR(mean_bits(bits), budget, (wd.high - wd.low) / (2.0 * 301) + 1e-12) << budget;
    for (uint8_t b : bits) EXPECT_TRUE(b == wd.low || b == wd.high) << budget;
  }
  // The same through the quantizer, with the storage accounting.
  const CodebookMatrix q = quantize_claq(w, identity(301), claq_opts(2.12));
  EXPECT_NEAR(q.storage_bits().index_width_per_weight(), 2.12, 2.0 / (2.0 * 301) + 1e-12);
  // 32 rows are stored in one 64-row stripe: the stream is twice the widths, plus 4 bytes.
  EXPECT_DOUBLE_EQ(q.storage_bits().index, 2.0 * q.storage_bits().index_width + 32.0);
}

TEST(Claq, OutlierRichColumnsRankFirstAndGetTheHighWidth) {
  Tensor w = random_matrix(64, 40, 2, 0.1f);
  // Column 7: five weights far above 13 x mean|W|; column 3: two; column 30: one.
  for (int r = 0; r < 5; ++r) w.at(r * 9, 7) = 9.0f;
  for (int r = 0; r < 2; ++r) w.at(r * 11 + 1, 3) = -9.0f;
  w.at(40, 30) = 9.0f;
  const std::vector<int64_t> ranking = claq_column_ranking(w, 13.0);
  EXPECT_EQ(ranking[0], 7);
  EXPECT_EQ(ranking[1], 3);
  EXPECT_EQ(ranking[2], 30);
  // 2 + 2 * 3/40 -> the top three columns at 4 bits.
  const std::vector<uint8_t> bits = claq_column_bits(ranking, 2.0 + 2.0 * 3.0 / 40.0);
  for (int c = 0; c < 40; ++c) EXPECT_EQ(bits[c], (c == 7 || c == 3 || c == 30) ? 4 : 2) << c;
}

TEST(Claq, OutlierQuotaSplitsTheTotalAsTheDynamicScheme) {
  std::vector<int64_t> ranking(20);
  std::iota(ranking.begin(), ranking.end(), 0);
  ClaqOptions o = claq_opts(3.0, 0.05);  // 100 of 100 x 20
  std::vector<int64_t> quota = claq_outlier_quota(ranking, 100, o);
  // 2 top columns weighted 3.5, 18 weighted 1: 100 * 3.5 / 25 = 14 and 100 / 25 = 4.
  for (int c = 0; c < 20; ++c) EXPECT_EQ(quota[c], c < 2 ? 14 : 4) << c;
  // A share above the column height is capped and the rest re-split, the total kept.
  o.outlier_fraction = 0.1;
  o.outlier_top_share = 0.05;
  o.outlier_top_weight = 100.0;
  quota = claq_outlier_quota(ranking, 100, o);
  EXPECT_EQ(quota[0], 100);
  EXPECT_EQ(std::accumulate(quota.begin(), quota.end(), int64_t{0}), 200);
  for (int c = 1; c < 20; ++c) EXPECT_TRUE(quota[c] == 5 || quota[c] == 6) << c;
  o.outlier_fraction = 0.0;
  quota = claq_outlier_quota(ranking, 100, o);
  EXPECT_EQ(std::accumulate(quota.begin(), quota.end(), int64_t{0}), 0);
}

TEST(Claq, KeepsTheRequestedFractionOfOutliersExactly) {
  Tensor w = random_matrix(64, 40, 4, 0.1f);
  const int planted_cols[] = {2, 9, 17, 33, 38};
  for (int i = 0; i < 5; ++i) w.at(7 * i + 3, planted_cols[i]) = (i % 2 ? -1.0f : 1.0f) * (4.0f + static_cast<float>(i) / 3.0f);
  const ClaqOptions o = claq_opts(2.0, 0.02);
  const CodebookMatrix q = quantize_claq(w, identity(40), o);  // identity: no feedback
  EXPECT_NO_THROW(q.validate("test"));
  ASSERT_EQ(static_cast<int64_t>(q.outliers.size()), std::llround(0.02 * 64 * 40));
  const std::vector<int64_t> quota = claq_outlier_quota(claq_column_ranking(w, 13.0), 64, o);
  std::map<int, int64_t> per_col;
  const Tensor dq = q.dequantize();
  for (const CodebookOutlier& x : q.outliers) {
    ++per_col[x.col];
    EXPECT_EQ(x.value, fp16(w.at(x.row, x.col)));
    EXPECT_EQ(dq.at(x.row, x.col), x.value);
  }
  for (int c = 0; c < 40; ++c) EXPECT_EQ(per_col[c], quota[c]) << c;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(dq.at(7 * i + 3, planted_cols[i]), fp16(w.at(7 * i + 3, planted_cols[i]))) << i;
  // Storage: the outliers cost their value and position.
  // Storage: each outlier its 16-bit column and 16-bit value, plus 32-bit CSR row pointers.
  EXPECT_EQ(q.storage_bits().outlier, 32.0 * (64 + 1) + 32.0 * static_cast<double>(q.outliers.size()));
  // The packed encoding (what the file stores and the kernels run) gives the same weights.
  EXPECT_EQ(q.encode().dequantize(), dq.data);
}

TEST(Claq, StorageBitsCountIndicesCodebooksAndOutliers) {
  CodebookMatrix m;
  m.rows = 10;
  m.cols = 2;
  m.col_bits = {2, 4};
  m.centroids.assign(4 + 16, 0.0f);
  m.indices.assign(20, 0);
  m.outliers = {{0, 1, 1.0f}, {3, 0, 2.0f}};
  EXPECT_NO_THROW(m.validate("m"));
  const CodebookBits b = m.storage_bits();
  // One stripe of 64 rows: 8 * (2 + 4) bytes of indices, then 4 bytes of end padding.
  EXPECT_EQ(b.index_width, 10 * 2 + 10 * 4);
  EXPECT_EQ(b.index, 8.0 * (8 * (2 + 4) + 4));
  EXPECT_EQ(b.codebook, 16.0 * (4 + 16) + 8.0 * 2);  // FP16 centroids and the widths
  EXPECT_EQ(b.outlier, 32.0 * (10 + 1) + 32.0 * 2);
  EXPECT_DOUBLE_EQ(b.effective_per_weight(), (416.0 + 336.0 + 416.0) / 20.0);
  // A model-sized matrix: the overheads vanish and the index bits are the widths.
  CodebookMatrix big;
  big.rows = 576;
  big.cols = 64;
  big.col_bits.assign(64, 3);
  EXPECT_NEAR(big.storage_bits().index_per_weight(), 3.0, 4.0 * 8 / (576.0 * 64));
  m.indices[2 * 2 + 1] = 4;  // row 2, column 1: a 4-bit codebook
  EXPECT_NO_THROW(m.validate("m"));
  m.indices[2 * 2 + 0] = 4;  // row 2, column 0: only 2 bits
  EXPECT_THROW(m.validate("m"), Error);
}

TEST(Claq, BeatsRtnAndGptqAtThreeAndTwoBitsOnAHeavyTailedLayer) {
  // Equal index bits; the codebooks' own storage is not part of this comparison
  // (it is reported separately as effective bits).
  const int64_t rows = 192, cols = 64;
  const Tensor w = heavy_tailed_layer(rows, cols, 7);
  const Tensor x = correlated_inputs(512, cols, 8, 10.0f);
  const std::vector<double> h = hessian_of(x);
  for (int bits : {3, 2}) {
    WeightQuantSpec spec;
    spec.bits = bits;
    const double e_rtn = output_error(x, w, quantize_rtn(w, spec).dequantize());
    const double e_gptq = output_error(x, w, quantize_gptq(w, h, spec, GptqOptions{}).dequantize());
    const double e_claq = output_error(x, w, quantize_claq(w, h, claq_opts(bits)).dequantize());
    // K-means without feedback (identity Hessian) already beats the uniform grid per row.
    const double e_kmeans = output_error(x, w, quantize_claq(w, identity(cols), claq_opts(bits)).dequantize());
    EXPECT_LT(e_claq, e_gptq) << bits;
    EXPECT_LT(e_gptq, e_rtn) << bits;
    EXPECT_LT(e_claq, e_kmeans) << bits;  // the feedback helps
    EXPECT_LT(e_kmeans, e_rtn) << bits;
    // And CLAQ is not lossless: a no-op would pass the comparisons above only with 0 error.
    EXPECT_GT(e_claq, 0.0);
  }
  // Adaptive precision and outlier reservation each help at 2 bits.
  const double e2 = output_error(x, w, quantize_claq(w, h, claq_opts(2.0)).dequantize());
  const double e212 = output_error(x, w, quantize_claq(w, h, claq_opts(2.12)).dequantize());
  const double e2o = output_error(x, w, quantize_claq(w, h, claq_opts(2.0, 0.005)).dequantize());
  EXPECT_LT(e212, e2);
  EXPECT_LT(e2o, e2);
}

TEST(Claq, SameSeedSameCodes) {
  const Tensor w = heavy_tailed_layer(96, 48, 11);
  const std::vector<double> h = hessian_of(correlated_inputs(256, 48, 12, 10.0f));
  ClaqOptions o = claq_opts(2.12, 0.01);
  o.kmeans_restarts = 2;
  o.seed = 5;
  const CodebookMatrix a = quantize_claq(w, h, o);
  const CodebookMatrix b = quantize_claq(w, h, o);
  EXPECT_EQ(a.indices, b.indices);
  EXPECT_EQ(a.centroids, b.centroids);
  EXPECT_EQ(a.col_bits, b.col_bits);
  ASSERT_EQ(a.outliers.size(), b.outliers.size());
  for (size_t i = 0; i < a.outliers.size(); ++i) {
    EXPECT_EQ(a.outliers[i].row, b.outliers[i].row);
    EXPECT_EQ(a.outliers[i].col, b.outliers[i].col);
    EXPECT_EQ(a.outliers[i].value, b.outliers[i].value);
  }
}

TEST(Claq, CodebooksAreFp16AndErrorsAreOfTheRoundedValues) {
  const Tensor w = heavy_tailed_layer(80, 24, 13);
  const CodebookMatrix q = quantize_claq(w, identity(24), claq_opts(3.0));
  EXPECT_NO_THROW(q.validate("q"));
  for (float c : q.centroids) EXPECT_EQ(c, fp16(c));
  // Without feedback every weight maps to its nearest (FP16) centroid.
  const std::vector<int64_t> off = q.offsets();
  const Tensor dq = q.dequantize();
  for (int64_t r = 0; r < 80; ++r)
    for (int64_t c = 0; c < 24; ++c) {
      const float* cb = q.centroids.data() + off[c];
      float best = INFINITY;
      for (int j = 0; j < 8; ++j) best = std::min(best, std::fabs(w.at(r, c) - cb[j]));
      EXPECT_EQ(std::fabs(w.at(r, c) - dq.at(r, c)), best) << r << " " << c;
    }
}

TEST(Claq, ConstantZeroAndDeadColumnsAreExact) {
  Tensor w = random_matrix(50, 12, 14);
  for (int64_t r = 0; r < 50; ++r) {
    w.at(r, 3) = 0.3f;   // constant: one distinct value, fewer than 2^b
    w.at(r, 5) = 0.0f;   // zero
    w.at(r, 8) = r % 2 ? 1.0f : -2.0f;  // two values
  }
  std::vector<double> h = hessian_of(correlated_inputs(128, 12, 15, 10.0f));
  for (int64_t j = 0; j < 12; ++j) h[10 * 12 + j] = h[j * 12 + 10] = 0.0;  // input 10 never fires
  // Identity Hessian: no feedback moves the constant columns before they are quantized.
  ClaqOptions o = claq_opts(3.0);
  const CodebookMatrix q = quantize_claq(w, identity(12), o);
  const Tensor dq = q.dequantize();
  for (int64_t r = 0; r < 50; ++r) {
    EXPECT_EQ(dq.at(r, 3), fp16(0.3f));
    EXPECT_EQ(dq.at(r, 5), 0.0f);
    EXPECT_EQ(dq.at(r, 8), r % 2 ? 1.0f : -2.0f);
  }
  const Tensor dead = quantize_claq(w, h, o).dequantize();
  for (int64_t r = 0; r < 50; ++r) EXPECT_EQ(dead.at(r, 10), 0.0f);
  // An all-zero matrix stays zero (no outliers counted in it either).
  const Tensor zero({16, 8});
  const CodebookMatrix z = quantize_claq(zero, identity(8), claq_opts(2.12, 0.01));
  for (float v : z.dequantize().data) EXPECT_EQ(v, 0.0f);
}

TEST(Claq, RejectsBadInputAndOptions) {
  Tensor w = random_matrix(8, 4, 16);
  const std::vector<double> h = identity(4);
  for (double bits : {1.9, 8.1, std::nan("")}) EXPECT_THROW(quantize_claq(w, h, claq_opts(bits)), Error) << bits;
  for (double f : {-0.01, 0.11}) EXPECT_THROW(quantize_claq(w, h, claq_opts(3.0, f)), Error) << f;
  ClaqOptions o = claq_opts(3.0);
  o.gptq.block = 0;
  EXPECT_THROW(quantize_claq(w, h, o), Error);
  EXPECT_THROW(quantize_claq(w, identity(5), claq_opts(3.0)), Error);  // Hessian size
  std::vector<double> bad_h = h;
  bad_h[5] = std::nan("");
  EXPECT_THROW(quantize_claq(w, bad_h, claq_opts(3.0)), Error);
  w.at(2, 1) = std::nanf("");
  try {
    quantize_claq(w, h, claq_opts(3.0), "layer 0 q_proj");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "layer 0 q_proj: weight holds a non-finite value");
  }
}

}  // namespace
}  // namespace quarot
