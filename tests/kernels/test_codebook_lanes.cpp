// The GEMV's repacked codebook indices (kernels/cpu/codebook_lanes.h) against the
// file's stream, and every SIMD lookup-table GEMV against the scalar reference on the
// same packed weight, for 1..8 activation rows and the layout's edge shapes.
#include "kernels/cpu/codebook_lanes.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "codebook_test_util.h"
#include "common/half.h"
#include "kernel_test_util.h"
#include "kernels/cpu/codebook_gemm.h"

namespace quarot {
namespace {

using test::CodebookCase;
using test::random_codebook;

// Every index and table entry of widths 1..4 where the contract puts it; unused slots
// and rows past the matrix hold index 0 and zero tables.
TEST(CodebookLanes, HoldTheStreamsIndicesAndTables) {
  uint64_t seed = 500;
  for (const auto& [rows, cols, widths] : std::vector<std::tuple<int64_t, int64_t, std::vector<int>>>{
           {1, 1, {2}}, {70, 45, {1, 2, 3, 4}}, {130, 77, {1, 2, 3, 4, 5, 6, 7, 8}}, {64, 10, {3}}, {5, 33, {4}}}) {
    const CodebookCase cc = random_codebook(rows, cols, widths, seed++);
    const WeightEncoding e = cc.encode();
    const CodebookLayout layout(rows, cols, e.col_bits, "test");
    const CodebookLanes l = make_codebook_lanes(e, layout);
    const auto* stream = static_cast<const uint8_t*>(e.data);
    std::vector<int> seen(cols, 0);
    for (int b = 1; b <= kCodebookLaneMaxBits; ++b) {
      const int fields = codebook_lane_fields(b), stride = codebook_lane_table_stride(b);
      EXPECT_EQ(l.slot_start[b + 1] - l.slot_start[b], (l.group_start[b + 1] - l.group_start[b]) * fields);
      EXPECT_LT(l.slot_start[b + 1] - l.slot_start[b], layout.width_count[b] + fields);
      for (int64_t slot = l.slot_start[b]; slot < l.slot_start[b + 1]; ++slot) {
        const int64_t rel = slot - l.slot_start[b];
        const int64_t g = l.group_start[b] + rel / fields;
        const int shift = b * static_cast<int>(rel % fields);
        const int32_t k = l.slot_position[slot];
        const float* table = l.tables.data() + l.table_start[b] + rel * stride;
        for (int64_t r = 0; r < layout.stripes * kCodebookStripeRows; ++r) {
          const uint32_t word = l.words.data()[((r / 64) * l.groups_per_stripe + g) * 64 + r % 64];
          const unsigned idx = (word >> shift) & ((1u << b) - 1);
          const unsigned want = k < 0 || r >= rows ? 0u : static_cast<unsigned>(layout.index_at(stream, r, layout.order[k]));
          ASSERT_EQ(idx, want) << "width " << b << " slot " << slot << " row " << r;
        }
        for (int m = 0; m < stride; ++m) {
          const float want = k < 0 ? 0.0f : fp16_to_fp32(e.centroids[layout.centroid_offset(k) + m % (1 << b)]);
          ASSERT_EQ(table[m], want) << "width " << b << " slot " << slot << " entry " << m;
        }
        if (k >= 0) {
          EXPECT_EQ(layout.bits_at(k), b);
          ++seen[layout.order[k]];
        }
      }
    }
    for (int64_t c = 0; c < cols; ++c) EXPECT_EQ(seen[c], e.col_bits[c] <= kCodebookLaneMaxBits ? 1 : 0) << c;
    for (int64_t i = l.words.size() - kCodebookLanePadWords; i < l.words.size(); ++i) EXPECT_EQ(l.words.data()[i], 0u);
  }
}

// Both kernels sum the same K = cols products (plus one correction per outlier, plus
// the bias) in position order, each a recursive FP32 sum; fused or not, each result is
// within gamma_m * mag of the exact sum of those terms (Higham, inner products:
// gamma_m = m u / (1 - m u), u = 2^-24, m = K + outliers + 1 roundings in sequence),
// where mag = sum |terms|. Two such results differ by at most 2 gamma_m mag (the
// outlier deltas are the same FP32 numbers on both sides; 1% slack for the products'
// own rounding being counted in m).
TEST(CodebookLanes, SimdGemvMatchesScalarReference) {
  struct Case {
    int64_t rows, cols;
    std::vector<int> widths;
    double outliers;
  };
  const std::vector<Case> cases = {
      {1, 1, {2}, 0.0},         {8, 16, {2}, 0.0},          {31, 10, {3}, 0.0},       {33, 11, {3}, 0.02},
      {64, 8, {4}, 0.0},        {65, 9, {4}, 0.02},         {130, 33, {2, 3, 4}, 0.01}, {97, 17, {1, 2, 3, 4}, 0.01},
      {200, 100, {2, 3, 4}, 0.01}, {129, 45, {1, 2, 3, 4, 5, 6, 7, 8}, 0.01}, {192, 576, {2, 4}, 0.005},
  };
  std::vector<Isa> simd;
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512})
    if (isa_supported(isa)) simd.push_back(isa);
  if (simd.empty()) GTEST_SKIP() << "no SIMD codebook kernel runs on this CPU";
  uint64_t seed = 900;
  for (const Case& c : cases) {
    CodebookCase cc = random_codebook(c.rows, c.cols, c.widths, seed++, c.outliers);
    const WeightEncoding e = cc.encode();
    const CodebookGemmWeight packed = pack_codebook_weight(e);
    const std::vector<float> w_final = cc.naive();
    CodebookCase plain = cc;
    plain.outliers.clear();
    const std::vector<float> w_cent = plain.naive();
    std::vector<int64_t> row_outliers(c.rows, 0);
    for (const auto& o : cc.outliers) ++row_outliers[o.row];
    const std::vector<float> bias = test::random_floats(c.rows, seed++);
    for (int64_t n = 1; n <= kCodebookLutMaxRows; ++n) {
      const std::vector<float> x = test::random_floats(n * c.cols, seed++);
      std::vector<float> ref(n * c.rows);
      codebook_gemm(packed, x.data(), n, bias.data(), ref.data(), Isa::kScalar, CodebookPath::kLut);
      for (Isa isa : simd) {
        std::vector<float> y(n * c.rows, 1e30f);
        codebook_gemm(packed, x.data(), n, bias.data(), y.data(), isa, CodebookPath::kLut);
        for (int64_t i = 0; i < n; ++i)
          for (int64_t r = 0; r < c.rows; ++r) {
            double mag = std::fabs(bias[r]);
            for (int64_t k = 0; k < c.cols; ++k) {
              const double xv = x[i * c.cols + k];
              mag += std::fabs(w_cent[r * c.cols + k] * xv) +
                     std::fabs((static_cast<double>(w_final[r * c.cols + k]) - w_cent[r * c.cols + k]) * xv);
            }
            const double m = static_cast<double>(c.cols + row_outliers[r] + 1);
            const double u = std::ldexp(1.0, -24);
            const double tol = 2.0 * (m * u / (1.0 - m * u)) * mag * 1.01;
            const double got = y[i * c.rows + r], want = ref[i * c.rows + r];
            ASSERT_LE(std::fabs(got - want), tol)
                << isa_name(isa) << " " << c.rows << "x" << c.cols << " n=" << n << " row " << i << " out " << r
                << ": " << got << " vs " << want;
          }
      }
    }
  }
}

}  // namespace
}  // namespace quarot
