// The integer lookup-table GEMV for CLAQ weights with 8-bit activations
// (kernels/cpu/codebook_int8.h): the AVX-512 VBMI kernel against the scalar reference
// bit for bit, the reference against the formula written from the natural form, the
// documented table-rounding bound, and the CPU backend's choice of path.
#include <gtest/gtest.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "codebook_test_util.h"
#include "common/error.h"
#include "common/half.h"
#include "kernel_test_util.h"
#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/codebook_gemm.h"
#include "kernels/cpu/codebook_int8.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/fake_quant.h"

namespace quarot {
namespace {

QuantizedActivations quantize8(const std::vector<float>& x, int64_t n, int64_t cols) {
  QuantizedActivations a;
  quantize_activations(x.data(), n, cols, nullptr, ActQuantSpec{8, 1.0f, 0, true}, a, Isa::kScalar);
  return a;
}

float xq(const QuantizedActivations& a, int64_t i, int64_t c) {
  return a.scales[i] * static_cast<float>(a.row(i)[c] - a.offsets[i]);
}

// The int8 weight the path uses at (r, c): s_g * t, or the outlier's stored value.
std::vector<double> int8_weights(const test::CodebookCase& cc, const CodebookInt8Weight& p) {
  std::vector<int64_t> slot(cc.cols, -1);
  for (int64_t s = 0; s < p.slots; ++s)
    if (p.slot_column[s] >= 0) slot[p.slot_column[s]] = s;
  std::vector<double> w(cc.rows * cc.cols);
  for (int64_t r = 0; r < cc.rows; ++r)
    for (int64_t c = 0; c < cc.cols; ++c) {
      const int64_t s = slot[c];
      const int t = p.table_value(s, cc.indices[r * cc.cols + c]);
      w[r * cc.cols + c] = static_cast<double>(p.group_scale[s / p.group] * static_cast<float>(t));
    }
  for (const auto& o : cc.outliers) w[o.row * cc.cols + o.col] = codebook_round(o.value);
  return w;
}

struct Shape {
  int64_t rows, cols;
};

TEST(CodebookInt8, EverySlotHoldsOneColumn) {
  const auto cc = test::random_codebook(40, 301, {1, 2, 3, 4}, 1);
  const WeightEncoding e = cc.encode();
  for (int g : {16, 32, 64}) {
    const CodebookInt8Weight p = pack_codebook_int8(e, g);
    std::vector<int> seen(cc.cols, 0);
    for (int64_t s = 0; s < p.slots; ++s)
      if (p.slot_column[s] >= 0) ++seen[p.slot_column[s]];
    for (int64_t c = 0; c < cc.cols; ++c) EXPECT_EQ(seen[c], 1) << c;
    EXPECT_EQ(p.slots % g, 0);
    for (int cls = 0; cls < kCodebookInt8Classes; ++cls) {
      EXPECT_EQ((p.slot_start[cls + 1] - p.slot_start[cls]) % codebook_int8_chunk_slots(cls), 0);
      // A class holds only columns of its field width.
      for (int64_t s = p.slot_start[cls]; s < p.slot_start[cls + 1]; ++s)
        if (p.slot_column[s] >= 0) {
          const int b = cc.col_bits[p.slot_column[s]];
          EXPECT_EQ(b <= 2 ? b - 1 : 2, cls);
        }
    }
  }
}

TEST(CodebookInt8, TableRoundingIsWithinHalfAStep) {
  const auto cc = test::random_codebook(8, 777, {1, 2, 3, 4}, 2);
  std::vector<int64_t> off(cc.cols + 1, 0);
  for (int64_t c = 0; c < cc.cols; ++c) off[c + 1] = off[c] + (int64_t{1} << cc.col_bits[c]);
  for (int g : {16, 32, 64}) {
    const CodebookInt8Weight p = pack_codebook_int8(cc.encode(), g);
    double worst = 0.0;
    for (int64_t s = 0; s < p.slots; ++s) {
      const int32_t c = p.slot_column[s];
      if (c < 0) continue;
      const float sg = p.group_scale[s / g];
      float col_max = 0.0f;
      for (int v = 0; v < (1 << cc.col_bits[c]); ++v)
        col_max = std::max(col_max, std::fabs(codebook_round(cc.centroids[off[c] + v])));
      EXPECT_GE(sg * 127.0f, col_max * (1.0f - 1e-6f));  // the group's scale covers the column
      for (int v = 0; v < (1 << cc.col_bits[c]); ++v) {
        const double cent = codebook_round(cc.centroids[off[c] + v]);
        const int t = p.table_value(s, v);
        const double err = std::fabs(cent - static_cast<double>(sg) * t);
        EXPECT_LE(err, 0.5 * sg * (1.0 + 1e-5)) << "slot " << s << " entry " << v;
        worst = std::max(worst, err / (0.5 * sg));
      }
    }
    EXPECT_GT(worst, 0.5);  // the bound is tight enough to mean something
  }
}

TEST(CodebookInt8, ReferenceMatchesTheFormula) {
  for (const Shape sh : {Shape{1, 5}, Shape{33, 100}, Shape{70, 257}}) {
    const auto cc = test::random_codebook(sh.rows, sh.cols, {1, 2, 3, 4}, 3 + sh.cols);
    const WeightEncoding e = cc.encode();
    const CodebookInt8Weight p = pack_codebook_int8(e);
    const auto w = int8_weights(cc, p);
    for (int64_t n = 1; n <= 4; ++n) {
      const auto x = test::random_floats(n * sh.cols, 10 + n);
      const QuantizedActivations a = quantize8(x, n, sh.cols);
      std::vector<float> y(n * sh.rows);
      const CodebookInt8Product prod{&p, nullptr, nullptr, y.data()};
      codebook_int8_gemv(&prod, 1, a, true, CodebookInt8Lookup::kColumns);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t r = 0; r < sh.rows; ++r) {
          double want = 0.0, mag = 0.0;
          for (int64_t c = 0; c < sh.cols; ++c) {
            want += w[r * sh.cols + c] * xq(a, i, c);
            mag += std::fabs(w[r * sh.cols + c] * xq(a, i, c));
          }
          EXPECT_NEAR(y[i * sh.rows + r], want, 1e-5 * mag + 1e-7) << sh.rows << "x" << sh.cols << " n=" << n;
        }
    }
  }
}

TEST(CodebookInt8, KernelEqualsReferenceBitForBit) {
  if (!codebook_int8_fast_available()) GTEST_SKIP() << "no AVX-512 VBMI + VNNI here";
  const std::vector<std::vector<int>> widths = {{1, 2, 3, 4}, {2}, {4}, {3}, {1}, {2, 4}};
  int cases = 0;
  for (const Shape sh : {Shape{1, 7}, Shape{31, 64}, Shape{33, 100}, Shape{97, 577}, Shape{130, 1000}})
    for (size_t wi = 0; wi < widths.size(); ++wi) {
      const auto cc = test::random_codebook(sh.rows, sh.cols, widths[wi], 100 * wi + sh.cols, 0.02);
      const WeightEncoding e = cc.encode();
      for (int g : {16, 32, 64}) {
        const CodebookInt8Weight p = pack_codebook_int8(e, g);
        const auto bias = test::random_floats(sh.rows, 7);
        for (int64_t n : {1, 2, 3, 4, 9}) {
          const auto x = test::random_floats(n * sh.cols, 20 + n + g);
          const auto res = test::random_floats(n * sh.rows, 30 + n);
          const QuantizedActivations a = quantize8(x, n, sh.cols);
          for (const CodebookInt8Lookup lookup : {CodebookInt8Lookup::kColumns, CodebookInt8Lookup::kPairs}) {
            std::vector<float> ref = res, fast = res;
            CodebookInt8Product pr{&p, bias.data(), ref.data(), ref.data()};
            codebook_int8_gemv(&pr, 1, a, true, lookup);
            CodebookInt8Product pf{&p, bias.data(), fast.data(), fast.data()};
            codebook_int8_gemv(&pf, 1, a, false, lookup);
            ASSERT_EQ(0, std::memcmp(ref.data(), fast.data(), ref.size() * sizeof(float)))
                << sh.rows << "x" << sh.cols << " widths#" << wi << " group " << g << " n=" << n
                << (lookup == CodebookInt8Lookup::kPairs ? " pair tables" : " column tables");
            ++cases;
          }
        }
      }
    }
  EXPECT_EQ(cases, 5 * 6 * 3 * 5 * 2);
}

// The pair tables' formula (codebook_int8.h "Pair tables"), computed here from the packed
// weight's int8 table values and the activation codes alone: per 2-bit scale group the
// exact pair sums over every (a, b), their max M, m = min(32767, 127 * 32768 / M), the
// rounded (P m + 2^14) >> 15 of the pairs the row uses, and the group's scale times
// RN(32768 / m); the other classes by the column formula. The reference must agree to
// FP32 summation order, for one activation row and (rows one at a time) for several.
struct PairExpectation {
  std::vector<double> y;      // [n, rows]
  std::vector<double> bound;  // [n, rows]: sum over pairs of s_g s_x 16384 / m
  std::vector<double> mag;    // [n, rows]: sum of |terms|
};

PairExpectation pair_formula(const test::CodebookCase& cc, const CodebookInt8Weight& p, const QuantizedActivations& a) {
  const int64_t n = a.rows, g16 = 16;
  std::vector<int64_t> slot(cc.cols, -1);
  for (int64_t s = 0; s < p.slots; ++s)
    if (p.slot_column[s] >= 0) slot[p.slot_column[s]] = s;
  const auto code = [&](int64_t i, int64_t s) {
    const int32_t c = p.slot_column[s];
    return c < 0 ? 0 : static_cast<int32_t>(a.row(i)[c]) - a.offsets[i];
  };
  const auto tval = [&](int64_t s, int v) { return p.slot_column[s] < 0 ? 0 : p.table_value(s, v); };
  const auto idx = [&](int64_t r, int64_t s) {
    const int32_t c = p.slot_column[s];
    return c < 0 ? 0 : static_cast<int>(cc.indices[r * cc.cols + c]);
  };
  PairExpectation e;
  e.y.assign(n * cc.rows, 0.0);
  e.bound.assign(n * cc.rows, 0.0);
  e.mag.assign(n * cc.rows, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t g = 0; g < p.groups(); ++g) {
      const int64_t s0 = g * p.group;
      const double scale = static_cast<double>(p.group_scale[g] * a.scales[i]);
      const bool paired = s0 >= p.slot_start[1] && s0 < p.slot_start[2];
      if (!paired) {
        for (int64_t r = 0; r < cc.rows; ++r)
          for (int64_t s = s0; s < s0 + p.group; ++s) {
            const double term = scale * tval(s, idx(r, s)) * code(i, s);
            e.y[i * cc.rows + r] += term;
            e.mag[i * cc.rows + r] += std::fabs(term);
          }
        continue;
      }
      // The pairs of each 16-slot chunk: (c, c + 4) (low table) and (c + 8, c + 12) (high),
      // each half with its own multiplier.
      for (int64_t h = 0; h < 2; ++h) {
        std::vector<std::pair<int64_t, int64_t>> pairs;
        for (int64_t k0 = s0; k0 < s0 + p.group; k0 += g16)
          for (int64_t c = 0; c < 4; ++c) pairs.push_back({k0 + 8 * h + c, k0 + 8 * h + c + 4});
        const auto sum = [&](const std::pair<int64_t, int64_t>& pr, int va, int vb) {
          return code(i, pr.first) * tval(pr.first, va) + code(i, pr.second) * tval(pr.second, vb);
        };
        int32_t max_abs = 0;
        for (const auto& pr : pairs)
          for (int va = 0; va < 4; ++va)
            for (int vb = 0; vb < 4; ++vb) max_abs = std::max(max_abs, std::abs(sum(pr, va, vb)));
        const int32_t m = max_abs == 0 ? 0 : std::min(32767, 127 * 32768 / max_abs);
        const double pscale =
            m == 0 ? 0.0 : static_cast<double>(p.group_scale[g] * a.scales[i] * (32768.0f / static_cast<float>(m)));
        for (int64_t r = 0; r < cc.rows; ++r)
          for (const auto& pr : pairs) {
            const int32_t v = sum(pr, idx(r, pr.first), idx(r, pr.second));
            const int32_t rounded =
                m == 0 ? 0 : static_cast<int32_t>(std::floor((static_cast<double>(v) * m + 16384.0) / 32768.0));
            e.y[i * cc.rows + r] += pscale * rounded;
            e.mag[i * cc.rows + r] += std::fabs(pscale * rounded);
            if (m > 0) e.bound[i * cc.rows + r] += scale * 16384.0 / m;
          }
      }
    }
  return e;
}

TEST(CodebookInt8, PairTablesFollowTheirFormula) {
  for (const Shape sh : {Shape{1, 5}, Shape{33, 100}, Shape{70, 257}, Shape{40, 600}})
    for (int g : {16, 32, 64}) {
      const auto cc = test::random_codebook(sh.rows, sh.cols, {1, 2, 2, 2, 3, 4}, 5 + sh.cols + g, 0.0);
      const CodebookInt8Weight p = pack_codebook_int8(cc.encode(), g);
      ASSERT_GT(p.slot_start[2], p.slot_start[1]) << "the case must have 2-bit columns";
      for (int64_t n : {1, 3}) {
        const auto x = test::random_floats(n * sh.cols, 60 + n + g);
        const QuantizedActivations a = quantize8(x, n, sh.cols);
        std::vector<float> y(n * sh.rows);
        const CodebookInt8Product prod{&p, nullptr, nullptr, y.data()};
        codebook_int8_gemv(&prod, 1, a, true, CodebookInt8Lookup::kPairs);
        const PairExpectation want = pair_formula(cc, p, a);
        for (int64_t k = 0; k < n * sh.rows; ++k)
          ASSERT_NEAR(y[k], want.y[k], 1e-5 * want.mag[k] + 1e-7) << sh.rows << "x" << sh.cols << " g" << g << " n=" << n;
      }
    }
}

// Pair tables against column tables: each pair's rounding moves the output by at most
// s_g s_x 16384 / m (plus FP32 order), and by a visible fraction of that bound.
TEST(CodebookInt8, PairTablesStayWithinTheirRoundingBound) {
  const auto cc = test::random_codebook(96, 777, {1, 2, 2, 2, 2, 4}, 41, 0.0);
  const CodebookInt8Weight p = pack_codebook_int8(cc.encode());
  double worst = 0.0;
  for (int64_t n : {1, 2}) {
    const auto x = test::random_floats(n * cc.cols, 80 + n);
    const QuantizedActivations a = quantize8(x, n, cc.cols);
    std::vector<float> yp(n * cc.rows), yc(n * cc.rows);
    const CodebookInt8Product pp{&p, nullptr, nullptr, yp.data()}, pc{&p, nullptr, nullptr, yc.data()};
    codebook_int8_gemv(&pp, 1, a, true, CodebookInt8Lookup::kPairs);
    codebook_int8_gemv(&pc, 1, a, true, CodebookInt8Lookup::kColumns);
    const PairExpectation e = pair_formula(cc, p, a);
    for (int64_t k = 0; k < n * cc.rows; ++k) {
      const double d = std::fabs(static_cast<double>(yp[k]) - yc[k]);
      EXPECT_LE(d, e.bound[k] + 2e-5 * e.mag[k]) << "output " << k;
      worst = std::max(worst, d / e.bound[k]);
    }
  }
  EXPECT_GT(worst, 0.05);  // the rounding is there, and the bound not vacuous
}

// Who takes pair tables: an explicit lookup always decides; under the environment's
// setting only products of at least kCodebookInt8PairMinWeights, and "1" only one-row calls.
TEST(CodebookInt8, PairTableChoiceFollowsTheSettingAndSize) {
  using L = CodebookInt8Lookup;
  using S = CodebookInt8PairSetting;
  const int64_t big = kCodebookInt8PairMinWeights, small = kCodebookInt8PairMinWeights - 1;
  EXPECT_EQ(parse_codebook_int8_pair_setting(nullptr), S::kNever);
  EXPECT_EQ(parse_codebook_int8_pair_setting(""), S::kNever);
  EXPECT_EQ(parse_codebook_int8_pair_setting("0"), S::kNever);
  EXPECT_EQ(parse_codebook_int8_pair_setting("1"), S::kOneRow);
  EXPECT_EQ(parse_codebook_int8_pair_setting("all"), S::kAlways);
  for (const char* bad : {"yes", "2", "ALL", " 1"}) {
    try {
      parse_codebook_int8_pair_setting(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("QUAROT_CLAQ_PAIR_TABLES"), std::string::npos) << e.what();
    }
  }
  for (const S s : {S::kNever, S::kOneRow, S::kAlways})
    for (const int64_t n : {1, 4}) {
      EXPECT_TRUE(codebook_int8_takes_pairs(L::kPairs, s, n, 1));
      EXPECT_FALSE(codebook_int8_takes_pairs(L::kColumns, s, n, big));
      EXPECT_FALSE(codebook_int8_takes_pairs(L::kAuto, s, n, small));
    }
  EXPECT_FALSE(codebook_int8_takes_pairs(L::kAuto, S::kNever, 1, big));
  EXPECT_TRUE(codebook_int8_takes_pairs(L::kAuto, S::kOneRow, 1, big));
  EXPECT_FALSE(codebook_int8_takes_pairs(L::kAuto, S::kOneRow, 2, big));
  EXPECT_TRUE(codebook_int8_takes_pairs(L::kAuto, S::kAlways, 7, big));
}

// The vector gather reads codes in 128-byte blocks past a row's end; rows packed tighter
// than quantize_activations' stride (exactly cols bytes, nothing after the last) must
// take the loop and give the same numbers.
TEST(CodebookInt8, TightlyPackedActivationRowsGiveTheSameNumbers) {
  if (!codebook_int8_fast_available()) GTEST_SKIP() << "no AVX-512 VBMI + VNNI here";
  // 513 columns: a 128-byte block read from the last row would run 66 bytes past the
  // buffer, which the AddressSanitizer build of these tests would report.
  const int64_t rows = 70, cols = 513, n = 3;
  const auto cc = test::random_codebook(rows, cols, {1, 2, 3, 4}, 77, 0.02);
  const CodebookInt8Weight p = pack_codebook_int8(cc.encode());
  ASSERT_GT(p.gather_lo.size(), 0u);
  const QuantizedActivations a = quantize8(test::random_floats(n * cols, 5), n, cols);
  QuantizedActivations tight;
  tight.rows = a.rows;
  tight.cols = a.cols;
  tight.group = a.group;
  tight.bits = a.bits;
  tight.symmetric = a.symmetric;
  tight.scales = a.scales;
  tight.offsets = a.offsets;
  tight.code_sums = a.code_sums;
  tight.stride = cols;
  tight.padded_rows = n;
  tight.codes = AlignedBytes(n * cols);
  for (int64_t i = 0; i < n; ++i) std::memcpy(tight.codes.data() + i * cols, a.row(i), cols);
  std::vector<float> ref(n * rows), fast(n * rows);
  CodebookInt8Product pr{&p, nullptr, nullptr, ref.data()};
  codebook_int8_gemv(&pr, 1, a, true);
  CodebookInt8Product pf{&p, nullptr, nullptr, fast.data()};
  codebook_int8_gemv(&pf, 1, tight, false);
  EXPECT_EQ(0, std::memcmp(ref.data(), fast.data(), ref.size() * sizeof(float)));
}

TEST(CodebookInt8, ManyProductsAndThreadCountsGiveTheSameNumbers) {
  if (!codebook_int8_fast_available()) GTEST_SKIP() << "no AVX-512 VBMI + VNNI here";
  const int64_t cols = 576;
  const auto c1 = test::random_codebook(700, cols, {2, 4}, 41);
  const auto c2 = test::random_codebook(190, cols, {3}, 42);
  const CodebookInt8Weight p1 = pack_codebook_int8(c1.encode()), p2 = pack_codebook_int8(c2.encode());
  const auto x = test::random_floats(3 * cols, 43);
  const QuantizedActivations a = quantize8(x, 3, cols);
  std::vector<float> s1(3 * 700), s2(3 * 190);
  CodebookInt8Product one{&p1, nullptr, nullptr, s1.data()};
  codebook_int8_gemv(&one, 1, a);
  one = {&p2, nullptr, nullptr, s2.data()};
  codebook_int8_gemv(&one, 1, a);
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    std::vector<float> m1(s1.size()), m2(s2.size());
    const CodebookInt8Product both[2] = {{&p1, nullptr, nullptr, m1.data()}, {&p2, nullptr, nullptr, m2.data()}};
    codebook_int8_gemv(both, 2, a);
    EXPECT_EQ(m1, s1) << threads;
    EXPECT_EQ(m2, s2) << threads;
  }
  omp_set_num_threads(saved);
}

TEST(CodebookInt8, RejectsBadCalls) {
  const auto cc = test::random_codebook(16, 40, {2}, 5);
  const CodebookInt8Weight p = pack_codebook_int8(cc.encode());
  std::vector<float> y(16);
  const CodebookInt8Product prod{&p, nullptr, nullptr, y.data()};
  const auto x = test::random_floats(5 * 40, 6);
  QuantizedActivations a4;
  quantize_activations(x.data(), 1, 40, nullptr, ActQuantSpec{4, 1.0f, 0, true}, a4, Isa::kScalar);
  EXPECT_THROW(codebook_int8_gemv(&prod, 1, a4, true), Error);  // 4-bit codes
  EXPECT_THROW(codebook_int8_gemv(&prod, 1, quantize8(x, 1, 20), true), Error);  // other width
  EXPECT_THROW(pack_codebook_int8(cc.encode(), 24), Error);
  auto wide = test::random_codebook(16, 40, {5}, 7);
  EXPECT_FALSE(codebook_int8_supports(wide.encode()));
  EXPECT_THROW(pack_codebook_int8(wide.encode()), Error);
  if (!codebook_int8_fast_available()) {
    EXPECT_THROW(codebook_int8_gemv(&prod, 1, quantize8(x, 1, 40)), Error);
  }
}

// The backend: codebook weight + 8-bit symmetric per-token activations -> the integer
// GEMV at every n (bit-identical to calling it on act_quant's codes); other activation
// specs -> the FP32 path; the simulated backend within the table-rounding bound of
// codebook_int8.h.
TEST(CodebookInt8, CpuBackendPicksThePathAndStaysWithinTheBound) {
  const int64_t rows = 150, cols = 256;
  auto cc = test::random_codebook(rows, cols, {1, 2, 3, 4}, 9, 0.01);
  const WeightEncoding e = cc.encode();
  OnlineRotation rot;  // H_64 x 4 blocks
  rot.k = 4;
  rot.p = 64;
  rot.m = test::random_orthogonal(4, 5);
  const auto bias = test::random_floats(rows, 8);
  const auto integer = make_cpu_backend(CpuBackendOptions{.simulate = false, .isa = ""});
  const auto simulated = make_cpu_backend(CpuBackendOptions{.simulate = true, .isa = ""});
  const auto wi = integer->pack(e), ws = simulated->pack(e);
  const CodebookInt8Weight p = pack_codebook_int8(e);
  const auto w = int8_weights(cc, p);
  // The backend follows a forced QUAROT_ISA (best_isa), not the hardware alone.
  const bool fast = codebook_int8_fast_available() && best_isa() >= Isa::kAvx512Vnni;
  for (int64_t n : {1, 3, 4, 6, 37}) {
    const auto x = test::random_floats(n * cols, 50 + n);
    LinearOp op;
    op.bias = bias.data();
    op.input_rotation = &rot;
    op.act = ActQuantSpec{8, 1.0f, 0, true};
    std::vector<float> yi(n * rows), ys(n * rows);
    op.weight = wi.get();
    integer->linear(op, x.data(), n, yi.data());
    op.weight = ws.get();
    simulated->linear(op, x.data(), n, ys.data());
    // The codes the backend quantized: rotate + quantize as it does.
    QuantizedActivations a;
    quantize_activations(x.data(), n, cols, &rot, op.act, a, best_isa());
    if (fast) {
      std::vector<float> direct(n * rows);
      const CodebookInt8Product prod{&p, bias.data(), nullptr, direct.data()};
      codebook_int8_gemv(&prod, 1, a);
      EXPECT_EQ(yi, direct) << "n=" << n << ": the backend did not take the integer path";
    }
    // 4-bit activations: not this path (the FP32 kernels on fake-quantized x).
    if (n == 3 && fast) {
      LinearOp op4 = op;
      op4.act = ActQuantSpec{4, 1.0f, 0, true};
      op4.weight = wi.get();
      std::vector<float> y4(n * rows), y4s(n * rows);
      integer->linear(op4, x.data(), n, y4.data());
      op4.weight = ws.get();
      simulated->linear(op4, x.data(), n, y4s.data());
      for (int64_t k = 0; k < n * rows; ++k) EXPECT_NEAR(y4[k], y4s[k], 1e-4 * (1.0 + std::fabs(y4s[k])));
    }
    // Bound: |x'| times half a table step per weight, plus FP32 summation slack.
    std::vector<int64_t> slot(cols);
    for (int64_t s = 0; s < p.slots; ++s)
      if (p.slot_column[s] >= 0) slot[p.slot_column[s]] = s;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t r = 0; r < rows; ++r) {
        double bound = 0.0, mag = std::fabs(bias[r]);
        for (int64_t c = 0; c < cols; ++c) {
          bound += std::fabs(xq(a, i, c)) * 0.5 * p.group_scale[slot[c] / p.group];
          mag += std::fabs(w[r * cols + c] * xq(a, i, c));
        }
        const double d = std::fabs(static_cast<double>(yi[i * rows + r]) - ys[i * rows + r]);
        EXPECT_LE(d, bound + 1e-5 * mag) << "n=" << n << " row " << r;
      }
  }
}

}  // namespace
}  // namespace quarot

namespace quarot {
namespace {

// linears() on q/k/v-like ops (one input, one rotation, 8-bit activations) and a fused
// residual (accumulate) give exactly what separate linear() calls and an add give.
TEST(CodebookInt8, CpuBackendLinearsMatchSeparateCalls) {
  const int64_t cols = 128;
  const auto backend = make_cpu_backend(CpuBackendOptions{.simulate = false, .isa = ""});
  const auto ca = test::random_codebook(96, cols, {2, 4}, 61), cb = test::random_codebook(40, cols, {3}, 62),
             cc = test::random_codebook(70, cols, {1, 2}, 63, 0.0);
  const auto pa = backend->pack(ca.encode()), pb = backend->pack(cb.encode()), pc = backend->pack(cc.encode());
  OnlineRotation rot;
  rot.k = 2;
  rot.p = 64;
  rot.m = test::random_orthogonal(2, 64);
  for (int64_t n : {1, 4, 7}) {
    const auto x = test::random_floats(n * cols, 70 + n);
    LinearOp ops[3];
    const PackedWeight* ws[3] = {pa.get(), pb.get(), pc.get()};
    const int64_t rows[3] = {96, 40, 70};
    std::vector<float> together[3], separate[3];
    for (int i = 0; i < 3; ++i) {
      ops[i].weight = ws[i];
      ops[i].input_rotation = &rot;
      ops[i].act = ActQuantSpec{8, 1.0f, 0, true};
      together[i] = test::random_floats(n * rows[i], 80 + i);  // the residual
      separate[i].assign(n * rows[i], 0.0f);
    }
    ops[2].accumulate = true;
    std::vector<float> residual = together[2];
    float* ys[3] = {together[0].data(), together[1].data(), together[2].data()};
    backend->linears(ops, 3, x.data(), n, ys);
    for (int i = 0; i < 3; ++i) {
      LinearOp one = ops[i];
      one.accumulate = false;
      backend->linear(one, x.data(), n, separate[i].data());
    }
    for (size_t k = 0; k < residual.size(); ++k) separate[2][k] += residual[k];
    for (int i = 0; i < 3; ++i) EXPECT_EQ(together[i], separate[i]) << "op " << i << " n=" << n;
  }
}

// rmsnorm_linears and swiglu_linear on CLAQ weights with 8-bit activations: the integer
// lookup path normalizes / gates each row inside the activation quantizer, and must give
// the bits of the separate calls (rmsnorm or swiglu, then linears), accumulating or not.
TEST(CodebookInt8, CpuBackendFusedNormAndGatingEqualTheSeparateCalls) {
  const int64_t cols = 192;
  const auto backend = make_cpu_backend(CpuBackendOptions{.simulate = false, .isa = ""});
  const auto ca = test::random_codebook(64, cols, {2, 3}, 91), cb = test::random_codebook(48, cols, {1, 4}, 92);
  const auto pa = backend->pack(ca.encode()), pb = backend->pack(cb.encode());
  OnlineRotation rot;
  rot.k = 3;
  rot.p = 64;
  rot.m = test::random_orthogonal(3, 93);
  const auto norm_w = test::random_floats(cols, 94, 0.5, 1.5);
  for (int64_t n : {1, 5}) {
    const auto x = test::random_floats(n * cols, 95 + n, -3.0, 3.0);
    const auto up = test::random_floats(n * cols, 96 + n, -2.0, 2.0);
    LinearOp ops[2];
    ops[0].weight = pa.get();
    ops[1].weight = pb.get();
    for (LinearOp& op : ops) {
      op.input_rotation = &rot;
      op.act = ActQuantSpec{8, 1.0f, 0, true};
    }
    ops[1].accumulate = true;
    const auto residual = test::random_floats(n * 48, 97 + n);
    std::vector<float> h(n * cols), want0(n * 64), want1 = residual, got0(n * 64), got1 = residual;
    backend->rmsnorm(x.data(), norm_w.data(), n, cols, 1e-5f, h.data());
    float* const want_ys[2] = {want0.data(), want1.data()};
    backend->linears(ops, 2, h.data(), n, want_ys);
    std::vector<float> scratch(n * cols);
    float* const got_ys[2] = {got0.data(), got1.data()};
    backend->rmsnorm_linears(x.data(), norm_w.data(), cols, 1e-5f, ops, 2, n, scratch.data(), got_ys);
    EXPECT_EQ(got0, want0) << "n=" << n << " rmsnorm_linears";
    EXPECT_EQ(got1, want1) << "n=" << n << " rmsnorm_linears (accumulating)";
    std::vector<float> gated(n * cols), want = residual, got = residual, gate = x;
    backend->swiglu(x.data(), up.data(), n * cols, gated.data());
    backend->linear(ops[1], gated.data(), n, want.data());
    backend->swiglu_linear(ops[1], gate.data(), up.data(), n, got.data());
    EXPECT_EQ(got, want) << "n=" << n << " swiglu_linear";
    EXPECT_NE(got, residual) << "n=" << n;
  }
}

}  // namespace
}  // namespace quarot
