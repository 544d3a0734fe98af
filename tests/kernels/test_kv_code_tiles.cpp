// Decode attention's code-domain tile kernels (kv_code_tiles.h) against a
// double-precision evaluation of their formula on a real quantized store: every
// path (the scalar reference and each ISA kernel) must be within a float-rounding
// bound derived from the sums' magnitudes. The layouts cover 4-bit (two codes per
// byte, the even/odd split of the AVX2 kernels) and 8-bit codes, one group per head
// and smaller groups, head dims that are and are not multiples of 32, query counts
// around the kernels' block of 3 and row counts around their block of 4.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ostream>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/cpu/cpu_features.h"
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

// The integer decode kernels (kv_code_tiles.h, "Integer products for decode"): the scalar
// reference against the integer formula evaluated here independently (16-bit query and
// weight codes, exact integer sums, the float epilogue), and the AVX-512 VNNI kernels against the
// reference bit for bit, on 4-bit one-group-per-head stores (asymmetric: zero points
// vary per row, two set far outside 0..15; symmetric: z = 8), row counts around the
// kernels' blocks of 16 (scores) and 4 (values), query counts around their block of 3.
struct Int8Case {
  int64_t head_dim;
  bool symmetric;
};
void PrintTo(const Int8Case& c, std::ostream* os) { *os << "hd " << c.head_dim << (c.symmetric ? " sym" : " asym"); }

class CodeTilesInt8Test : public ::testing::TestWithParam<Int8Case> {};

TEST_P(CodeTilesInt8Test, ReferenceFollowsTheFormulaAndVnniEqualsIt) {
  const Int8Case c = GetParam();
  const int64_t hd = c.head_dim, ld = 133;
  const float scale = 0.125f;
  const kv_detail::CodeTileKernels& ref = kv_detail::code_tile_kernels_int8_scalar();
  const kv_detail::CodeTileKernels* fast =
      kv_detail::code_tile_kernels_int8_for(best_isa(), hd, hd, /*packed=*/true);
  if (cpu_features().has_avx512_vbmi_vnni() && best_isa() >= Isa::kAvx512Vnni) {
    ASSERT_NE(fast, nullptr);
  } else {
    RecordProperty("vnni", "absent: the reference alone");
  }
  // Layouts the kernels do not take.
  EXPECT_EQ(kv_detail::code_tile_kernels_int8_for(best_isa(), hd, hd / 2, true), nullptr);
  EXPECT_EQ(kv_detail::code_tile_kernels_int8_for(best_isa(), hd, hd, false), nullptr);
  EXPECT_EQ(kv_detail::code_tile_kernels_int8_for(Isa::kAvx2, hd, hd, true), nullptr);
  for (const int64_t rows : {1, 2, 3, 4, 5, 15, 16, 17, 33, 127, 128}) {
    const Fixture f(Layout{hd, 0, 4, c.symmetric}, rows);
    kv_detail::CodeRows k = f.code_rows();
    // The stores keep asymmetric zero points in 0..15; the kernels take any integer one.
    std::vector<float> params(k.params, k.params + 2 * rows);
    if (!c.symmetric && rows >= 3) {
      params[1] = -37.0f;
      params[5] = 52.0f;
    }
    k.params = params.data();
    const int64_t cb = hd / 2;
    const auto code = [&](int64_t j, int64_t d) { return (k.codes[j * cb + d / 2] >> (4 * (d % 2))) & 0x0f; };
    for (const int64_t nq : {1, 2, 3, 4, 7}) {
      auto q = test::random_floats(nq * hd, 31 + nq, -2.0, 2.0);
      if (nq == 2) std::fill_n(q.begin() + hd, hd, 0.0f);  // an all-zero query: codes 0, scores 0
      std::vector<float> work(static_cast<size_t>(kv_detail::work_floats(nq, rows, hd)));
      // Scores: the formula.
      std::vector<float> want(static_cast<size_t>(nq * ld), -3.0f);
      for (int64_t i = 0; i < nq; ++i) {
        float m = 0.0f;
        for (int64_t d = 0; d < hd; ++d) m = std::max(m, std::fabs(q[i * hd + d]));
        const float qmax = float(kv_detail::kCodeTileQueryMax);
        std::vector<int> q16(static_cast<size_t>(hd));
        int total = 0;
        for (int64_t d = 0; d < hd; ++d) {
          q16[d] = m > 0.0f ? static_cast<int>(std::lrint(q[i * hd + d] * (qmax / m))) : 0;
          total += q16[d];
        }
        for (int64_t j = 0; j < rows; ++j) {
          long dot = 0;
          for (int64_t d = 0; d < hd; ++d) dot += long{q16[d]} * code(j, d);
          const float s = k.params[2 * j], z = k.params[2 * j + 1];
          want[i * ld + j] = std::fma(-z, float(total), float(dot)) * (s * (scale * (m / qmax)));
        }
      }
      std::vector<float> got(want.size(), -3.0f);
      ref.scores(q.data(), nq, k, scale, got.data(), ld, work.data());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << rows << " rows, nq " << nq;
      if (fast != nullptr) {
        std::vector<float> vec(want.size(), -3.0f);
        fast->scores(q.data(), nq, k, scale, vec.data(), ld, work.data());
        EXPECT_EQ(std::memcmp(vec.data(), want.data(), vec.size() * sizeof(float)), 0)
            << "scores, " << rows << " rows, nq " << nq;
      }
      // Weighted sums of nonnegative weights (a softmax's numerators), one query all zero.
      auto p = test::random_floats(nq * ld, 41 + nq, 0.0, 1.0);
      if (nq == 3) std::fill_n(p.begin() + ld, ld, 0.0f);
      std::vector<float> want_o(static_cast<size_t>(nq * hd));
      const int32_t wmax_code = kv_detail::kCodeTileWeightMax;
      for (int64_t i = 0; i < nq; ++i) {
        float wmax = 0.0f;
        for (int64_t j = 0; j < rows; ++j) wmax = std::max(wmax, p[i * ld + j] * k.params[2 * j]);
        std::vector<long> u(static_cast<size_t>(rows), 0);
        double corr = 0.0;
        for (int64_t j = 0; j < rows && wmax > 0.0f; ++j) {
          u[j] = std::min(long{wmax_code}, std::lrint(p[i * ld + j] * k.params[2 * j] * (float(wmax_code) / wmax)));
          corr += double(u[j]) * k.params[2 * j + 1];
        }
        for (int64_t d = 0; d < hd; ++d) {
          long acc = 0;
          for (int64_t j = 0; j < rows; ++j) acc += u[j] * code(j, d);
          want_o[i * hd + d] = wmax > 0.0f ? (float(acc) - float(corr)) * (wmax / float(wmax_code)) : 0.0f;
        }
      }
      std::vector<float> got_o(want_o.size(), -3.0f);
      ref.weighted_sum(p.data(), nq, ld, k, got_o.data(), work.data());
      EXPECT_EQ(std::memcmp(got_o.data(), want_o.data(), got_o.size() * sizeof(float)), 0)
          << rows << " rows, nq " << nq;
      if (fast != nullptr) {
        std::vector<float> vec(want_o.size(), -3.0f);
        fast->weighted_sum(p.data(), nq, ld, k, vec.data(), work.data());
        EXPECT_EQ(std::memcmp(vec.data(), want_o.data(), vec.size() * sizeof(float)), 0)
            << "weighted sum, " << rows << " rows, nq " << nq;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, CodeTilesInt8Test,
                         ::testing::Values(Int8Case{64, false},    // SmolLM2 recipe
                                           Int8Case{128, false},   // 7B-class heads: two 64-element segments
                                           Int8Case{64, true},     // symmetric, z = 8
                                           Int8Case{192, false}));  // three segments

}  // namespace
}  // namespace quarot
