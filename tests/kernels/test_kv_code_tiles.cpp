// Decode attention's code-domain tile kernels (kv_code_tiles.h) against a
// double-precision evaluation of their formula on a real quantized store: every
// path (the scalar reference and each ISA kernel) must be within a float-rounding
// bound derived from the sums' magnitudes. The layouts cover 4-bit (two codes per
// byte, the even/odd split of the AVX2 kernels) and 8-bit codes, one group per head
// and smaller groups, head dims that are and are not multiples of 32, query counts
// around the kernels' block of 3 and row counts around their block of 4.
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/cpu/kv_code_tiles.h"
#include "kernels/cpu/kv_store_q.h"

namespace quarot {
namespace {

struct Layout {
  int64_t head_dim, group;
  int bits;
  bool symmetric;
};
// Named fields (gtest's default prints the raw bytes, padding included).
void PrintTo(const Layout& l, std::ostream* os) {
  *os << "hd " << l.head_dim << " group " << l.group << " bits " << l.bits << (l.symmetric ? " sym" : " asym");
}

struct Fixture {
  QuantKvLayout l;
  QuantKvLayerStore store;
  int64_t rows;
  explicit Fixture(const Layout& c, int64_t rows_)
      : l{2, c.head_dim, c.group, c.bits, c.symmetric, 0.95f}, store(l, rows_ + 3), rows(rows_) {
    // Rows with a nonzero mean, so (c - z) matters (a kernel dropping z fails).
    auto x = test::random_floats((rows + 3) * l.row_dim(), 7, -0.6, 1.4);
    store.append(x.data(), rows + 3, 0, false);
  }
  // Head 1, starting at position 2 (an offset into the store, not its start).
  kv_detail::CodeRows code_rows() const {
    return {store.codes(1, 2), store.params(1, 2), rows, l.head_dim, l.group_size(), l.packed()};
  }
  // value[j][d] as exact doubles: s * (c - z).
  std::vector<double> values() const {
    const int64_t hd = l.head_dim, gs = l.group_size(), groups = hd / gs, cb = l.code_bytes_per_head();
    std::vector<double> v(static_cast<size_t>(rows * hd));
    for (int64_t j = 0; j < rows; ++j) {
      const uint8_t* c = store.codes(1, 2) + j * cb;
      const float* p = store.params(1, 2) + j * 2 * groups;
      for (int64_t d = 0; d < hd; ++d) {
        const int code = l.packed() ? (c[d / 2] >> (4 * (d % 2))) & 0x0f : c[d];
        v[j * hd + d] = double(p[2 * (d / gs)]) * (code - double(p[2 * (d / gs) + 1]));
      }
    }
    return v;
  }
};

// Float evaluation of a sum of n products, in any order, is within
// (n + 2) * 2^-24 * sum |terms| of the exact value (products, sums, one scaling).
double bound(int64_t n, double abs_sum) { return (n + 2) * std::ldexp(1.0, -24) * abs_sum; }

class CodeTilesTest : public ::testing::TestWithParam<Layout> {};

TEST_P(CodeTilesTest, ScoresMatchTheFormulaOnEveryPath) {
  const Layout c = GetParam();
  const int64_t hd = c.head_dim, ld = 131;
  const float scale = 0.125f;
  for (const int64_t rows : {1, 3, 4, 5, 37, 128}) {
    const Fixture f(c, rows);
    const auto v = f.values();
    for (const int64_t nq : {1, 2, 3, 4, 7}) {
      const auto q = test::random_floats(nq * hd, 11 + nq, -2.0, 2.0);
      for (Isa isa : test::supported_isas()) {
        const kv_detail::CodeTileKernels* k = kv_detail::code_tile_kernels_for(isa, hd, f.l.group_size());
        if (k == nullptr) continue;
        std::vector<float> got(static_cast<size_t>(nq * ld), -9.0f);
        std::vector<float> work(static_cast<size_t>(kv_detail::work_floats(nq, rows, hd)));
        k->scores(q.data(), nq, f.code_rows(), scale, got.data(), ld, work.data());
        for (int64_t i = 0; i < nq; ++i)
          for (int64_t j = 0; j < rows; ++j) {
            double want = 0.0, abs_sum = 0.0;
            for (int64_t d = 0; d < hd; ++d) {
              want += double(q[i * hd + d]) * v[j * hd + d];
              abs_sum += std::fabs(double(q[i * hd + d]) * v[j * hd + d]);
            }
            ASSERT_NEAR(got[i * ld + j], want * scale, bound(hd, abs_sum * scale))
                << isa_name(isa) << " rows " << rows << " nq " << nq << " i " << i << " j " << j;
          }
        // Nothing past the rows is written.
        for (int64_t i = 0; i < nq; ++i)
          for (int64_t j = rows; j < ld; ++j) ASSERT_EQ(got[i * ld + j], -9.0f) << isa_name(isa);
      }
    }
  }
}

TEST_P(CodeTilesTest, WeightedSumMatchesTheFormulaOnEveryPath) {
  const Layout c = GetParam();
  const int64_t hd = c.head_dim, ld = 133;
  for (const int64_t rows : {0, 1, 3, 4, 5, 37, 128}) {
    const Fixture f(c, rows);
    const auto v = f.values();
    for (const int64_t nq : {1, 2, 3, 4, 7}) {
      const auto p = test::random_floats(nq * ld, 21 + nq, 0.0, 1.0);
      for (Isa isa : test::supported_isas()) {
        const kv_detail::CodeTileKernels* k = kv_detail::code_tile_kernels_for(isa, hd, f.l.group_size());
        if (k == nullptr) continue;
        std::vector<float> got(static_cast<size_t>(nq * hd + 5), -9.0f);
        std::vector<float> work(static_cast<size_t>(kv_detail::work_floats(nq, rows, hd)));
        k->weighted_sum(p.data(), nq, ld, f.code_rows(), got.data(), work.data());
        for (int64_t i = 0; i < nq; ++i)
          for (int64_t d = 0; d < hd; ++d) {
            double want = 0.0, abs_sum = 0.0;
            for (int64_t j = 0; j < rows; ++j) {
              want += double(p[i * ld + j]) * v[j * hd + d];
              abs_sum += std::fabs(double(p[i * ld + j]) * v[j * hd + d]);
            }
            ASSERT_NEAR(got[i * hd + d], want, bound(rows, abs_sum))
                << isa_name(isa) << " rows " << rows << " nq " << nq << " i " << i << " d " << d;
          }
        for (int64_t e = nq * hd; e < nq * hd + 5; ++e) ASSERT_EQ(got[e], -9.0f) << isa_name(isa);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, CodeTilesTest,
                         ::testing::Values(Layout{64, 0, 4, false},    // SmolLM2 recipe: one group per head
                                           Layout{128, 32, 4, false},  // groups of 32
                                           Layout{128, 0, 4, true},    // symmetric
                                           Layout{64, 0, 8, false},    // one code per byte
                                           Layout{128, 16, 8, true},   // bytes, groups of 16
                                           Layout{48, 16, 4, false},   // head_dim % 32 == 16: the half block
                                           Layout{80, 0, 8, true},     // bytes, 80 = 2 * 32 + 16
                                           Layout{64, 8, 4, false},    // groups of 8: scalar only
                                           Layout{20, 10, 4, true}));  // odd shapes: scalar only

TEST(CodeTiles, Avx2TakesOnlyLayoutsOfWholeSixteens) {
  EXPECT_NE(kv_detail::code_tile_kernels_for(Isa::kScalar, 20, 10), nullptr);
  EXPECT_EQ(kv_detail::code_tile_kernels_for(Isa::kScalar, 64, 64), &kv_detail::code_tile_kernels_scalar());
  EXPECT_EQ(kv_detail::code_tile_kernels_for(Isa::kAvx2, 64, 64), &kv_detail::code_tile_kernels_avx2());
  EXPECT_EQ(kv_detail::code_tile_kernels_for(Isa::kAvx2, 64, 8), nullptr);
  EXPECT_EQ(kv_detail::code_tile_kernels_for(Isa::kAvx2, 40, 40), nullptr);
}

}  // namespace
}  // namespace quarot
