// The kCodebook weight encoding: dequantization against the naive formula, the
// stored layout's size, views, and rejection of bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "codebook_test_util.h"
#include "common/error.h"
#include "common/half.h"
#include "kernels/weight_encoding.h"

namespace quarot {
namespace {

using test::CodebookCase;
using test::random_codebook;

void expect_error(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing '" << part << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(CodebookEncoding, RoundTripMatchesNaiveFormula) {
  struct Shape {
    int64_t rows, cols;
    std::vector<int> widths;
  };
  const std::vector<Shape> shapes = {{1, 1, {2}},          {1, 7, {2, 3, 4}},       {63, 5, {3}},
                                     {64, 16, {2, 3, 4}},  {65, 17, {2, 3, 4}},     {130, 33, {1, 2, 3, 4, 5, 6, 7, 8}},
                                     {200, 96, {2, 3, 4}}, {3, 300, {4, 8}}};
  uint64_t seed = 1;
  for (const auto& s : shapes) {
    const CodebookCase cc = random_codebook(s.rows, s.cols, s.widths, seed++);
    const WeightEncoding e = cc.encode();
    ASSERT_NO_THROW(e.validate("w"));
    const std::vector<float> want = cc.naive();
    const std::vector<float> got = e.dequantize();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_EQ(got[i], want[i]) << s.rows << "x" << s.cols << " at " << i;
    // A window of rows alone gives the same values.
    if (s.rows > 2) {
      std::vector<float> part((s.rows - 2) * s.cols);
      e.dequantize_rows(1, s.rows - 2, part.data());
      for (size_t i = 0; i < part.size(); ++i) ASSERT_EQ(part[i], want[s.cols + i]);
    }
    // index_at reads back every index.
    const CodebookLayout l(e.rows, e.cols, e.col_bits, "w");
    for (int64_t r = 0; r < s.rows; ++r)
      for (int64_t c = 0; c < s.cols; ++c)
        ASSERT_EQ(l.index_at(static_cast<const uint8_t*>(e.data), r, c), cc.indices[r * s.cols + c]);
  }
}

TEST(CodebookEncoding, ValuesAreRoundedToHalf) {
  EXPECT_EQ(codebook_round(0.5f), 0.5f);
  EXPECT_EQ(codebook_round(-3.0f), -3.0f);
  const float r = codebook_round(0.1f);
  EXPECT_NE(r, 0.1f);
  EXPECT_LE(std::fabs(r - 0.1f), 0.1f * std::ldexp(1.0f, -11));  // half has 11 significant bits
  CodebookCase cc = random_codebook(4, 3, {2}, 7, 0.0);
  cc.centroids[0] = 0.1f;
  cc.indices[0] = 0;
  cc.outliers = {{1, 1, 1.0f / 3.0f}};
  const std::vector<float> w = cc.encode().dequantize();
  EXPECT_EQ(w[0], r);
  EXPECT_EQ(w[1 * 3 + 1], fp16_to_fp32(fp32_to_fp16(1.0f / 3.0f)));
  EXPECT_NE(w[1 * 3 + 1], 1.0f / 3.0f);
}

TEST(CodebookEncoding, StoredBytesCountEverything) {
  // 130 rows -> 3 stripes of 64; widths 2, 3, 4 on 3 columns.
  CodebookCase cc = random_codebook(130, 3, {2}, 3, 0.0);
  cc.col_bits = {4, 2, 3};
  cc.centroids.assign(16 + 4 + 8, 0.25f);
  for (int64_t r = 0; r < 130; ++r) cc.indices[r * 3 + 0] = r % 16, cc.indices[r * 3 + 1] = r % 4, cc.indices[r * 3 + 2] = r % 8;
  const WeightEncoding plain = cc.encode();
  const int64_t indices = 3 * 8 * (2 + 3 + 4) + kCodebookIndexPadBytes;
  const int64_t want = 3 /*widths*/ + 2 * 28 /*centroids*/ + indices;
  EXPECT_EQ(plain.stored_bytes(), want);
  EXPECT_DOUBLE_EQ(plain.effective_bits(), want * 8.0 / (130 * 3));
  cc.outliers = {{0, 0, 1.0f}, {129, 2, -1.0f}};
  const WeightEncoding with = cc.encode();
  EXPECT_EQ(with.stored_bytes(), want + 4 * 131 + 2 * 4);
  EXPECT_EQ(with.n_outliers, 2);
  EXPECT_EQ(with.bits, 4);
}

TEST(CodebookEncoding, LayoutGroupsColumnsByWidth) {
  const std::vector<uint8_t> bits = {3, 2, 4, 2, 3, 2};
  const CodebookLayout l(10, 6, bits.data(), "w");
  EXPECT_EQ(l.order, (std::vector<int32_t>{1, 3, 5, 0, 4, 2}));
  for (int64_t c = 0; c < 6; ++c) EXPECT_EQ(l.order[l.position[c]], c);
  EXPECT_EQ(l.stripe_bytes, 8 * (3 + 2 + 4 + 2 + 3 + 2));
  EXPECT_EQ(l.slice_offset(0), 0);
  EXPECT_EQ(l.slice_offset(3), 3 * 16);       // after three 2-bit slices
  EXPECT_EQ(l.slice_offset(5), 3 * 16 + 2 * 24);
  EXPECT_EQ(l.centroid_offset(3), 3 * 4);
  EXPECT_EQ(l.centroid_offset(5), 3 * 4 + 2 * 8);
  EXPECT_EQ(l.centroid_count, 3 * 4 + 2 * 8 + 16);
}

TEST(CodebookEncoding, RejectsBadInput) {
  const CodebookCase good = random_codebook(8, 4, {2, 3}, 5, 0.0);
  auto with = [&](auto edit) {
    CodebookCase cc = good;
    edit(cc);
    return [cc] { (void)cc.encode(); };
  };
  expect_error(with([](CodebookCase& c) { c.col_bits[1] = 0; }), "outside 1..8");
  expect_error(with([](CodebookCase& c) { c.col_bits[1] = 9; }), "outside 1..8");
  expect_error(with([](CodebookCase& c) { c.col_bits.pop_back(); }), "bit widths for 4 columns");
  expect_error(with([](CodebookCase& c) { c.centroids.push_back(0.0f); }), "centroids given");
  expect_error(with([](CodebookCase& c) { c.indices.pop_back(); }), "indices for a 8x4");
  expect_error(with([](CodebookCase& c) { c.indices[5] = 200; }), "exceeds the column's");
  expect_error(with([](CodebookCase& c) { c.centroids[2] = std::numeric_limits<float>::quiet_NaN(); }), "not finite");
  expect_error(with([](CodebookCase& c) { c.centroids[2] = 1e6f; }), "overflows FP16");
  expect_error(with([](CodebookCase& c) { c.outliers = {{1, 1, 0.5f}, {1, 1, 0.25f}}; }), "two outliers");
  expect_error(with([](CodebookCase& c) { c.outliers = {{8, 0, 0.5f}}; }), "outside the 8x4");
  expect_error(with([](CodebookCase& c) { c.outliers = {{0, -1, 0.5f}}; }), "outside the 8x4");
  expect_error(with([](CodebookCase& c) { c.outliers = {{0, 0, std::numeric_limits<float>::infinity()}}; }),
               "not finite");
  expect_error([] { (void)make_codebook_weight(0, 4, {}, {}, {}, {}); }, "empty weight shape");
  expect_error(
      [] {
        (void)make_codebook_weight(1, kCodebookMaxCols + 1, std::vector<uint8_t>(kCodebookMaxCols + 1, 1), {}, {}, {});
      },
      "exceed the limit");
}

TEST(CodebookEncoding, ValidateCatchesCorruptViews) {
  CodebookCase cc = random_codebook(70, 5, {2, 4}, 9, 0.02);
  const WeightEncoding e = cc.encode();
  ASSERT_GT(e.n_outliers, 4);
  auto buf = std::make_shared<std::vector<uint8_t>>();
  // Copies of the arrays that the test can damage.
  const CodebookLayout l(e.rows, e.cols, e.col_bits, "w");
  std::vector<uint8_t> bits(e.col_bits, e.col_bits + e.cols);
  std::vector<uint16_t> cent(e.centroids, e.centroids + l.centroid_count);
  std::vector<uint32_t> ptr(e.outlier_row_ptr, e.outlier_row_ptr + e.rows + 1);
  std::vector<uint16_t> cols(e.outlier_cols, e.outlier_cols + e.n_outliers);
  std::vector<uint16_t> vals(e.outlier_values, e.outlier_values + e.n_outliers);
  auto view = [&] {
    return codebook_weight_view(e.rows, e.cols, bits.data(), cent.data(), static_cast<const uint8_t*>(e.data),
                                e.n_outliers, ptr.data(), cols.data(), vals.data(), e.owner);
  };
  ASSERT_NO_THROW(view().validate("w"));
  EXPECT_EQ(view().dequantize(), e.dequantize());
  cent[3] = 0x7c00;  // +inf
  expect_error([&] { view().validate("w"); }, "centroid 3 is not finite");
  cent[3] = e.centroids[3];
  vals[1] = 0x7e00;  // NaN
  expect_error([&] { view().validate("w"); }, "outlier 1 value is not finite");
  vals[1] = e.outlier_values[1];
  ptr[e.rows] += 1;
  expect_error([&] { view().validate("w"); }, "row pointers");
  ptr[e.rows] -= 1;
  std::swap(ptr[1], ptr[2]);
  if (ptr[1] != ptr[2]) expect_error([&] { view().validate("w"); }, "out of order");
  std::swap(ptr[1], ptr[2]);
  cols[0] = 7;
  expect_error([&] { view().validate("w"); }, "column 7 is out of range");
  cols[0] = e.outlier_cols[0];
  bits[0] = 0;
  expect_error([&] { view().validate("w"); }, "outside 1..8");
  bits[0] = e.col_bits[0];
  WeightEncoding wrong_bits = view();
  wrong_bits.bits = 8;
  expect_error([&] { wrong_bits.validate("w"); }, "widest column");
  WeightEncoding no_outliers = view();
  no_outliers.outlier_cols = nullptr;
  expect_error([&] { no_outliers.validate("w"); }, "no outlier arrays");
}

}  // namespace
}  // namespace quarot
