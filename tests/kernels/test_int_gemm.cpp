#include "kernels/cpu/int_gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/rng.h"
#include "common/threads.h"
#include "kernel_test_util.h"
#include "kernels/cpu/vec_ops.h"

namespace quarot {
namespace {

// A weight as a quantized file holds it, plus the plain codes for the reference.
struct TestWeight {
  int64_t rows = 0, cols = 0, group = 0;
  int bits = 0;
  bool symmetric = true;
  std::vector<int> codes;
  std::vector<uint8_t> packed;
  std::vector<float> scales, zeros;

  int64_t g() const { return group == 0 ? cols : group; }
  int zero(int64_t n, int64_t grp) const {
    return symmetric ? 1 << (bits - 1) : static_cast<int>(zeros[n * (cols / g()) + grp]);
  }
  IntWeightSource source() const {
    return IntWeightSource{rows, cols, bits, group, packed.data(), scales.data(), symmetric ? nullptr : zeros.data()};
  }
};

void pack_codes(TestWeight& w) {
  const int64_t count = w.rows * w.cols;
  if (w.bits <= 4) {
    w.packed.assign((count + 1) / 2, 0);
    for (int64_t i = 0; i < count; ++i) w.packed[i / 2] |= static_cast<uint8_t>(w.codes[i] << (4 * (i % 2)));
  } else {
    w.packed.assign(count, 0);
    for (int64_t i = 0; i < count; ++i) w.packed[i] = static_cast<uint8_t>(w.codes[i]);
  }
}

TestWeight make_weight(int64_t rows, int64_t cols, int bits, int64_t group, bool symmetric, uint64_t seed) {
  TestWeight w;
  w.rows = rows;
  w.cols = cols;
  w.bits = bits;
  w.group = group;
  w.symmetric = symmetric;
  Rng rng(seed);
  const int levels = 1 << bits;
  w.codes.resize(rows * cols);
  for (auto& c : w.codes) c = static_cast<int>(rng.below(levels));
  const int64_t groups = cols / w.g();
  w.scales.resize(rows * groups);
  for (auto& s : w.scales) s = static_cast<float>(0.005 + 0.02 * rng.uniform());
  if (!symmetric) {
    w.zeros.resize(rows * groups);
    for (auto& z : w.zeros) z = static_cast<float>(rng.below(levels));
  }
  pack_codes(w);
  return w;
}

QuantizedActivations make_activations(int64_t rows, int64_t cols, int bits, int64_t group, bool symmetric,
                                      uint64_t seed) {
  auto x = test::random_floats(rows * cols, seed, -1.0, 1.0);
  for (int64_t r = 0; r < rows; ++r) x[r * cols + (r * 13) % cols] *= 8.0f;  // an outlier per row
  QuantizedActivations a;
  quantize_activations(x.data(), rows, cols, nullptr, ActQuantSpec{bits, 1.0f, group, symmetric}, a, Isa::kScalar);
  return a;
}

struct Reference {
  std::vector<float> y;          // the contract's epilogue on exact integer dots
  std::vector<double> exact;     // FP64 product of the dequantized operands (+ bias + residual)
  std::vector<double> tolerance; // float rounding bound of the epilogue
};

Reference reference(const TestWeight& w, const QuantizedActivations& a, const float* bias, const float* residual) {
  const int64_t M = a.rows, N = w.rows, K = w.cols;
  const int64_t kb = std::min(a.group, w.g());
  const int64_t nb = K / kb;
  Reference r;
  r.y.resize(M * N);
  r.exact.resize(M * N);
  r.tolerance.resize(M * N);
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      float f = 0.0f;
      double exact = 0.0, magnitude = 0.0;
      for (int64_t b = 0; b < nb; ++b) {
        const int64_t ga = b * kb / a.group, gw = b * kb / w.g();
        const int64_t offset = a.offsets[m * a.groups() + ga];
        const int64_t zero = w.zero(n, gw);
        int64_t d = 0;
        for (int64_t k = b * kb; k < (b + 1) * kb; ++k) d += (a.row(m)[k] - offset) * (w.codes[n * K + k] - zero);
        const float sa = a.scales[m * a.groups() + ga];
        const float sw = w.scales[n * (K / w.g()) + gw];
        f = std::fma(sa * sw, static_cast<float>(d), f);
        const double term = static_cast<double>(sa) * sw * static_cast<double>(d);
        exact += term;
        magnitude += std::fabs(term);
      }
      if (bias != nullptr) {
        f = f + bias[n];
        exact += bias[n];
        magnitude += std::fabs(bias[n]);
      }
      if (residual != nullptr) {
        f = f + residual[m * N + n];
        exact += residual[m * N + n];
        magnitude += std::fabs(residual[m * N + n]);
      }
      r.y[m * N + n] = f;
      r.exact[m * N + n] = exact;
      // Each block adds one fma rounding, each product and conversion one more.
      r.tolerance[m * N + n] = static_cast<double>(nb + 4) * 0x1.0p-24 * magnitude;
    }
  }
  return r;
}

class IntGemmPath : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam())) {
      GTEST_SKIP() << isa_name(GetParam()) << " path not testable here: " << isa_unsupported_reason(GetParam());
    }
  }

  // Runs int_gemm on every M and checks the exact and FP64 references.
  void check(const std::string& name, int64_t N, int64_t K, int wbits, int64_t wgroup, bool wsym, int abits,
             int64_t agroup, bool asym, const std::vector<int64_t>& ms, uint64_t seed) {
    const TestWeight w = make_weight(N, K, wbits, wgroup, wsym, seed);
    const IntGemmWeight packed = pack_int_gemm_weight(w.source(), GetParam());
    int variant = 0;
    for (int64_t M : ms) {
      const QuantizedActivations a = make_activations(M, K, abits, agroup, asym, seed + M);
      const auto bias = test::random_floats(N, seed + 1, -0.5, 0.5);
      const auto residual = test::random_floats(M * N, seed + 2, -2.0, 2.0);
      // Cycle through no epilogue terms, bias only, bias + residual.
      const float* b = variant % 3 >= 1 ? bias.data() : nullptr;
      const float* res = variant % 3 == 2 ? residual.data() : nullptr;
      ++variant;
      std::vector<float> y(M * N, -777.0f);
      int_gemm(packed, a, b, res, y.data());
      const Reference ref = reference(w, a, b, res);
      int64_t bad = 0;
      for (int64_t i = 0; i < M * N; ++i) {
        if (y[i] != ref.y[i] && ++bad <= 5) {
          ADD_FAILURE() << name << " " << isa_name(GetParam()) << " M=" << M << " (" << i / N << ", " << i % N
                        << "): " << y[i] << " vs exact-integer reference " << ref.y[i];
        }
        if (!(std::fabs(y[i] - ref.exact[i]) <= ref.tolerance[i]) && ++bad <= 5) {
          ADD_FAILURE() << name << " M=" << M << " (" << i / N << ", " << i % N << "): " << y[i] << " vs FP64 "
                        << ref.exact[i] << " beyond " << ref.tolerance[i];
        }
      }
      EXPECT_EQ(bad, 0) << name << " M=" << M;
    }
  }
};

const std::vector<int64_t> kAllRows = {1, 2, 3, 4, 5, 6, 7, 8, 17, 64, 513};

TEST_P(IntGemmPath, W4A4PerRowOddShapes) {
  // K = 100: one block per row that is not a multiple of 8, 64 or any SIMD width.
  check("W4A4 sym", 33, 100, 4, 0, true, 4, 0, true, kAllRows, 1);
  check("W4A4 asym", 7, 100, 4, 0, false, 4, 0, false, {1, 5, 17, 64}, 2);
  check("W4A4 N=1", 1, 72, 4, 0, true, 4, 0, true, {1, 3, 17}, 3);
}

TEST_P(IntGemmPath, W4A8Grouped) {
  check("W4A8 wgroup 32", 33, 256, 4, 32, false, 8, 0, true, kAllRows, 4);
  check("W4A8 wgroup 128 asym act", 17, 384, 4, 128, true, 8, 0, false, {1, 8, 17, 64}, 5);
}

TEST_P(IntGemmPath, W8A8SaturationFree) {
  // 8-bit x 8-bit is where vpmaddubsw would saturate: extreme codes in both.
  check("W8A8 per row", 33, 200, 8, 0, false, 8, 0, false, kAllRows, 6);
  check("W8A8 group 64", 7, 256, 8, 64, true, 8, 64, true, {1, 6, 17, 64}, 7);
}

TEST_P(IntGemmPath, MixedGroupSizes) {
  // Activation groups finer than weight groups, and the other way round.
  check("A group 32, W per row", 33, 128, 4, 0, true, 4, 32, true, {1, 8, 17, 64}, 8);
  check("A group 64, W group 128", 7, 256, 4, 128, false, 6, 64, false, {2, 17}, 9);
  check("A per row, W group 64", 17, 192, 6, 64, false, 4, 0, true, {1, 7, 64}, 10);
  check("W3A5 group 32", 33, 96, 3, 32, true, 5, 32, false, {1, 4, 17}, 11);
  check("W2A2", 7, 64, 2, 0, false, 2, 0, true, {1, 17}, 12);
  check("W7A7", 7, 64, 7, 0, true, 7, 0, false, {1, 17}, 13);
}

TEST_P(IntGemmPath, LongRows) {
  // LLaMA-2-70B's FFN width; per-row blocks of 28672 products.
  check("W4A8 K=28672", 7, 28672, 4, 0, true, 8, 0, true, {1, 3, 17}, 14);
  check("W8A8 K=28672", 17, 28672, 8, 0, false, 8, 0, false, {2, 9}, 15);
}

TEST_P(IntGemmPath, W4A4PrefillTileEdges) {
  // The prefill tiles (M > 8: 4-row tiles on prepared int8 panels, kDeep chunks):
  // row counts that leave 1 and 3 rows over, odd N (a part-filled last panel), K
  // not a multiple of 8 (padded positions in every block), the default model's and
  // a 70B-class row length.
  check("W4A4 K=100", 37, 100, 4, 0, true, 4, 0, true, {1, 9, 64, 512}, 31);
  check("W4A4 K=576 asym", 19, 576, 4, 0, false, 4, 0, false, {9, 64, 512}, 32);
  check("W4A4 K=1536", 33, 1536, 4, 0, true, 4, 0, true, {9, 63, 512}, 33);
  check("W4A4 K=28672", 5, 28672, 4, 0, true, 4, 0, false, {9, 64}, 34);
}

TEST_P(IntGemmPath, NearInt32LimitIsExact) {
  // Every product at the extreme: d = 28672 * 255 * 255 = 1864396800 < 2^31.
  const int64_t K = 28672;
  TestWeight w;
  w.rows = 3;
  w.cols = K;
  w.bits = 8;
  w.symmetric = false;
  w.codes.assign(3 * K, 255);
  w.scales = {1.0f, 1.0f, 1.0f};
  w.zeros = {0.0f, 0.0f, 255.0f};  // the third row: (code - zero) = 0
  pack_codes(w);
  QuantizedActivations a;
  const std::vector<float> x(K, 1.0f);
  quantize_activations(x.data(), 1, K, nullptr, ActQuantSpec{8, 1.0f, 0, false}, a, Isa::kScalar);
  ASSERT_EQ(a.offsets[0], 0);  // lo = 0, so codes are all 255 and the zero point 0
  ASSERT_EQ(a.row(0)[0], 255);
  std::vector<float> y(3);
  int_gemm(pack_int_gemm_weight(w.source(), GetParam()), a, nullptr, nullptr, y.data());
  const float s = a.scales[0];
  EXPECT_EQ(y[0], s * static_cast<float>(1864396800));
  EXPECT_EQ(y[1], s * static_cast<float>(1864396800));
  EXPECT_EQ(y[2], 0.0f);
}

TEST_P(IntGemmPath, DeepInt16SumsAtTheirBoundAreExact) {
  // W4A4 and W8A4 with every code at its maximum, over rows long enough for many
  // int16 accumulation chunks (AVX2 kDeep): each chunk's int16 lane sums come within
  // 12% of 32767 (W4A4: 32 steps x 4 x 15 x 15 = 28800), so a bound off by one chunk
  // or a saturating add would show.
  for (const int wbits : {4, 8}) {
    const int64_t K = 4096, N = 19;
    TestWeight w;
    w.rows = N;
    w.cols = K;
    w.bits = wbits;
    w.symmetric = false;
    w.codes.assign(N * K, (1 << wbits) - 1);
    w.scales.assign(N, 1.0f);
    w.zeros.assign(N, 0.0f);
    w.zeros[1] = static_cast<float>(1 << (wbits - 1));
    pack_codes(w);
    const IntGemmWeight packed = pack_int_gemm_weight(w.source(), GetParam());
    for (const int64_t M : {1, 4, 17}) {
      QuantizedActivations a;
      const std::vector<float> x(M * K, 1.0f);
      quantize_activations(x.data(), M, K, nullptr, ActQuantSpec{4, 1.0f, 0, false}, a, Isa::kScalar);
      ASSERT_EQ(a.row(0)[0], 15);
      std::vector<float> y(M * N);
      int_gemm(packed, a, nullptr, nullptr, y.data());
      const Reference ref = reference(w, a, nullptr, nullptr);
      EXPECT_EQ(y, ref.y) << "W" << wbits << "A4 M=" << M;
    }
  }
}

TEST_P(IntGemmPath, ResultsDoNotDependOnThreadCount) {
  const TestWeight w = make_weight(70, 256, 4, 64, false, 21);
  const IntGemmWeight packed = pack_int_gemm_weight(w.source(), GetParam());
  for (int64_t M : {3, 130}) {
    const QuantizedActivations a = make_activations(M, 256, 4, 0, true, 22);
    std::vector<float> one(M * 70), many(M * 70);
    const int saved = num_threads();
    set_num_threads(1);
    int_gemm(packed, a, nullptr, nullptr, one.data());
    set_num_threads(3);
    int_gemm(packed, a, nullptr, nullptr, many.data());
    set_num_threads(saved);
    EXPECT_EQ(0, std::memcmp(one.data(), many.data(), one.size() * sizeof(float))) << "M=" << M;
  }
}

TEST_P(IntGemmPath, ResidualMayAliasOutput) {
  const TestWeight w = make_weight(33, 128, 4, 0, true, 31);
  const IntGemmWeight packed = pack_int_gemm_weight(w.source(), GetParam());
  const QuantizedActivations a = make_activations(9, 128, 4, 0, true, 32);
  const auto bias = test::random_floats(33, 33);
  auto y = test::random_floats(9 * 33, 34);
  const Reference ref = reference(w, a, bias.data(), y.data());
  int_gemm(packed, a, bias.data(), y.data(), y.data());
  EXPECT_EQ(y, ref.y);
}

// int_gemm_swiglu: silu(gate) * up, bit for bit the two int_gemm products followed by the
// gating an activation quantizer's SwiGLU prologue applies (silu_mul_avx2; silu_mul on
// the scalar path), whether the gating runs in the products' epilogue (AMX prefill,
// per-row weights and activations) or after them; the gated rows may start mid-tile
// (M = 9, 33) and end mid-panel (N = 40); pre-written y must not leak through.
TEST_P(IntGemmPath, SwigluEqualsTheProductsThenTheGating) {
  struct Case {
    int64_t N, K;
    int wbits;
    int64_t wgroup;
    int abits;
    int64_t agroup;
  };
  for (const Case c : {Case{40, 576, 4, 0, 4, 0}, Case{96, 1536, 4, 0, 8, 0}, Case{33, 256, 8, 0, 8, 0},
                       Case{48, 256, 4, 64, 4, 0}}) {
    const TestWeight wg = make_weight(c.N, c.K, c.wbits, c.wgroup, true, 71 + c.N);
    const TestWeight wu = make_weight(c.N, c.K, c.wbits, c.wgroup, false, 72 + c.N);
    const IntGemmWeight gate = pack_int_gemm_weight(wg.source(), GetParam());
    const IntGemmWeight up = pack_int_gemm_weight(wu.source(), GetParam());
    for (const int64_t M : {1, 8, 9, 33, 130}) {
      const QuantizedActivations a = make_activations(M, c.K, c.abits, c.agroup, false, 73 + M);
      std::vector<float> g(M * c.N), u(M * c.N), want(M * c.N), y(M * c.N, -777.0f);
      int_gemm(gate, a, nullptr, nullptr, g.data());
      int_gemm(up, a, nullptr, nullptr, u.data());
      if (GetParam() == Isa::kScalar)
        silu_mul(g.data(), u.data(), M * c.N, want.data());
      else
        silu_mul_avx2(g.data(), u.data(), M * c.N, want.data());
      int_gemm_swiglu(gate, up, a, y.data());
      EXPECT_EQ(std::memcmp(y.data(), want.data(), y.size() * sizeof(float)), 0)
          << isa_name(GetParam()) << " N=" << c.N << " K=" << c.K << " W" << c.wbits << "A" << c.abits
          << " group " << c.wgroup << " M=" << M;
      // The gating is fused exactly where the AMX kernel's epilogue can do it.
      const bool fused = GetParam() == Isa::kAmx && M > 8 && c.wgroup == 0;
      EXPECT_EQ(int_gemm_swiglu_fused(gate, up, M, a.group), fused) << isa_name(GetParam()) << " M=" << M;
    }
  }
  // Weights of different shapes are refused.
  const TestWeight other = make_weight(16, 576, 4, 0, true, 79);
  const IntGemmWeight small = pack_int_gemm_weight(other.source(), GetParam());
  const TestWeight w40 = make_weight(40, 576, 4, 0, true, 80);
  const IntGemmWeight big = pack_int_gemm_weight(w40.source(), GetParam());
  const QuantizedActivations a = make_activations(9, 576, 4, 0, false, 81);
  std::vector<float> y(9 * 40);
  EXPECT_THROW(int_gemm_swiglu(big, small, a, y.data()), Error);
}

// Several products of one input in one call (decode's q/k/v and gate/up): each output
// is exactly the contract's (the exact-integer reference), whether the products run
// serially (small) or share one parallel region (the first weight alone streams more
// than the serial limit at one row), for any thread count.
TEST_P(IntGemmPath, ManyProductsEqualTheContractEach) {
  const int64_t K = 512;
  const TestWeight w0 = make_weight(1600, K, 4, 64, false, 41);  // 100 panels: parallel at M = 1
  const TestWeight w1 = make_weight(192, K, 8, 0, true, 42);
  const TestWeight w2 = make_weight(40, K, 4, 0, true, 43);      // a partial last panel
  const IntGemmWeight p0 = pack_int_gemm_weight(w0.source(), GetParam());
  const IntGemmWeight p1 = pack_int_gemm_weight(w1.source(), GetParam());
  const IntGemmWeight p2 = pack_int_gemm_weight(w2.source(), GetParam());
  const TestWeight* ws[3] = {&w0, &w1, &w2};
  const IntGemmWeight* ps[3] = {&p0, &p1, &p2};
  // Prefill (M = 40) runs the SIMD products as one pool of tasks, 8 per region: 9
  // products (the three weights three times over) make two batches.
  for (int64_t M : {1, 3, 8, 17, 40}) {
    const int count = M == 40 ? 9 : 3;
    const QuantizedActivations a = make_activations(M, K, 4, 128, false, 44 + M);
    for (int threads : {1, 3}) {
      std::vector<std::vector<float>> bias(count), residual(count), y(count);
      IntGemmProduct prods[9];
      for (int j = 0; j < count; ++j) {
        const int64_t N = ws[j % 3]->rows;
        bias[j] = test::random_floats(N, 50 + j, -0.5, 0.5);
        residual[j] = test::random_floats(M * N, 60 + j, -2.0, 2.0);
        y[j].assign(M * N, -777.0f);
        // Product 0: bias + residual, 1: bias, 2: neither; then residual only, ...
        const bool with_bias = j % 4 < 2, with_residual = j % 4 == 0 || j % 4 == 3;
        prods[j] = {ps[j % 3], with_bias ? bias[j].data() : nullptr, with_residual ? residual[j].data() : nullptr,
                    y[j].data()};
      }
      const int saved = num_threads();
      set_num_threads(threads);
      int_gemm_many(prods, count, a);
      set_num_threads(saved);
      for (int j = 0; j < count; ++j) {
        const Reference ref = reference(*ws[j % 3], a, prods[j].bias, prods[j].residual);
        EXPECT_EQ(y[j], ref.y) << "product " << j << " M=" << M << " threads " << threads;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, IntGemmPath, ::testing::ValuesIn(test::all_isas()),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

TEST(IntGemm, PathNamesTheKernel) {
  const TestWeight w = make_weight(16, 64, 4, 0, true, 41);
  const IntGemmWeight scalar = pack_int_gemm_weight(w.source(), Isa::kScalar);
  EXPECT_STREQ(int_gemm_path(scalar, 1), "scalar");
  if (isa_supported(Isa::kAvx2)) {
    const IntGemmWeight avx2 = pack_int_gemm_weight(w.source(), Isa::kAvx2);
    EXPECT_STREQ(int_gemm_path(avx2, 1), "avx2 gemv");
    EXPECT_STREQ(int_gemm_path(avx2, 64), "avx2");
  }
}

TEST(IntGemm, BadWeightsThrow) {
  TestWeight w = make_weight(4, 64, 4, 0, true, 51);
  auto expect_bad = [](IntWeightSource s, const char* what) {
    EXPECT_THROW(pack_int_gemm_weight(s, Isa::kScalar), Error) << what;
  };
  IntWeightSource s = w.source();
  s.rows = 0;
  expect_bad(s, "no rows");
  s = w.source();
  s.bits = 9;
  expect_bad(s, "9 bits");
  s.bits = 1;
  expect_bad(s, "1 bit");
  s = w.source();
  s.group = 48;
  expect_bad(s, "group does not divide");
  s = w.source();
  s.packed_codes = nullptr;
  expect_bad(s, "no codes");
  // A 3-bit weight whose nibble holds 9.
  TestWeight w3 = make_weight(4, 64, 3, 0, true, 52);
  w3.packed[5] = 0x9;
  expect_bad(w3.source(), "code out of range");
  TestWeight wa = make_weight(4, 64, 4, 32, false, 53);
  wa.zeros[3] = 2.5f;
  expect_bad(wa.source(), "fractional zero point");
  wa.zeros[3] = 16.0f;
  expect_bad(wa.source(), "zero point out of range");
  wa.zeros[3] = -1.0f;
  expect_bad(wa.source(), "negative zero point");
  wa.zeros[3] = 1.0f;
  wa.scales[2] = std::nanf("");
  expect_bad(wa.source(), "NaN scale");
  for (Isa isa : test::all_isas()) {
    if (!isa_supported(isa)) {
      EXPECT_THROW(pack_int_gemm_weight(w.source(), isa), Error) << isa_name(isa);
    }
  }
}

TEST(IntGemm, MismatchedOperandsThrow) {
  const TestWeight w = make_weight(8, 96, 4, 32, true, 61);
  const Isa isa = detected_isa();
  const IntGemmWeight packed = pack_int_gemm_weight(w.source(), isa);
  std::vector<float> y(64 * 8);
  // Columns differ.
  EXPECT_THROW(int_gemm(packed, make_activations(2, 64, 4, 0, true, 1), nullptr, nullptr, y.data()), Error);
  // Groups 48 and 32 do not nest.
  EXPECT_THROW(int_gemm(packed, make_activations(2, 96, 4, 48, true, 2), nullptr, nullptr, y.data()), Error);
  // Never quantized.
  EXPECT_THROW(int_gemm(packed, QuantizedActivations{}, nullptr, nullptr, y.data()), Error);
  // An unpacked weight.
  EXPECT_THROW(int_gemm(IntGemmWeight{}, make_activations(2, 96, 4, 0, true, 3), nullptr, nullptr, y.data()), Error);
  // Blocks of 40000 8-bit x 8-bit products could overflow int32.
  const TestWeight wide = make_weight(1, 40000, 8, 0, true, 62);
  const IntGemmWeight wide_packed = pack_int_gemm_weight(wide.source(), isa);
  EXPECT_THROW(int_gemm(wide_packed, make_activations(1, 40000, 8, 0, true, 4), nullptr, nullptr, y.data()), Error);
  // The same block with 4-bit activations is fine.
  EXPECT_NO_THROW(int_gemm(wide_packed, make_activations(1, 40000, 4, 0, true, 5), nullptr, nullptr, y.data()));
  // Activation groups of 4 inside per-row weight blocks: SIMD blocks start on 8 positions.
  if (isa != Isa::kScalar) {
    const TestWeight w64 = make_weight(8, 64, 4, 0, true, 63);
    EXPECT_THROW(int_gemm(pack_int_gemm_weight(w64.source(), isa), make_activations(2, 64, 4, 4, true, 6), nullptr,
                          nullptr, y.data()),
                 Error);
  }
}

}  // namespace
}  // namespace quarot
