#include "kernels/cpu/act_quant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/error.h"
#include "kernel_test_util.h"
#include "kernels/cpu/act_quant_mix.h"
#include "kernels/cpu/fake_quant.h"
#include "kernels/cpu/fwht.h"
#include "kernels/cpu/vec_ops.h"

namespace quarot {
namespace {

class ActQuantPath : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam())) {
      GTEST_SKIP() << isa_name(GetParam()) << " path not testable here: " << isa_unsupported_reason(GetParam());
    }
  }
};

// scale * (code - offset) must equal the simulated path's value element by element,
// and the per-group bookkeeping must be consistent with the codes.
void expect_matches_simulation(const std::vector<float>& x, int64_t rows, int64_t cols, const OnlineRotation* rot,
                               const ActQuantSpec& spec, Isa isa, const std::string& what) {
  QuantizedActivations q;
  quantize_activations(x.data(), rows, cols, rot, spec, q, isa);
  std::vector<float> ref = x;
  if (rot != nullptr) apply_online_rotation(*rot, ref.data(), rows, cols);
  fake_quant_rows(ref.data(), rows, cols, spec.bits, spec.clip_ratio, spec.group, spec.symmetric);
  const int64_t group = spec.group == 0 ? cols : spec.group;
  ASSERT_EQ(q.group, group);
  ASSERT_EQ(q.groups(), cols / group);
  const int code_max = (1 << spec.bits) - 1;
  int64_t mismatches = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < cols / group; ++g) {
      const float scale = q.scales[r * q.groups() + g];
      const int32_t offset = q.offsets[r * q.groups() + g];
      if (spec.symmetric) {
        EXPECT_EQ(offset, 1 << (spec.bits - 1)) << what;
      }
      EXPECT_GE(offset, 0) << what;
      EXPECT_LE(offset, code_max) << what;
      int64_t sum = 0;
      for (int64_t c = g * group; c < (g + 1) * group; ++c) {
        const int code = q.row(r)[c];
        sum += code;
        EXPECT_LE(code, code_max) << what;
        const float value = scale * static_cast<float>(code - offset);
        if (value != ref[r * cols + c] && ++mismatches <= 5) {
          ADD_FAILURE() << what << ": row " << r << " col " << c << " integer path " << value << " vs simulated "
                        << ref[r * cols + c] << " (code " << code << ", offset " << offset << ", scale " << scale
                        << ")";
        }
      }
      EXPECT_EQ(sum, q.code_sums[r * q.groups() + g]) << what;
    }
    for (int64_t c = cols; c < q.stride; ++c) ASSERT_EQ(q.row(r)[c], 0) << what << ": row padding";
  }
  for (int64_t r = rows; r < q.padded_rows; ++r) {
    for (int64_t c = 0; c < q.stride; ++c) ASSERT_EQ(q.row(r)[c], 0) << what << ": padding row";
  }
  EXPECT_EQ(mismatches, 0) << what;
}

TEST_P(ActQuantPath, MatchesSimulatedPathBitForBit) {
  const Isa isa = GetParam();
  // 192 = 3 x 64: rotations with a Hadamard per head, with a 3x3 mixing matrix,
  // and over interleaved vectors (inner > 1).
  OnlineRotation hadamard{1, 64, 3, {}};
  OnlineRotation mixed{3, 64, 1, test::random_orthogonal(3, 5)};
  OnlineRotation interleaved{3, 1, 64, test::random_orthogonal(3, 6)};
  const std::vector<std::pair<const OnlineRotation*, const char*>> rotations = {
      {nullptr, "none"}, {&hadamard, "hadamard"}, {&mixed, "hadamard+mix"}, {&interleaved, "mix"}};
  const int64_t cols = 192;
  uint64_t seed = 100;
  for (int64_t rows : {1, 5, 17}) {
    for (const auto& [rot, rot_name] : rotations) {
      for (int bits : {2, 3, 4, 6, 8}) {
        for (bool symmetric : {true, false}) {
          for (int64_t group : {0, 32, 64, 96}) {
            for (float clip : {1.0f, 0.85f}) {
              // Outliers in a few channels, as real activations have.
              auto x = test::random_floats(rows * cols, ++seed, -1.0, 1.0);
              for (int64_t r = 0; r < rows; ++r) x[r * cols + (r * 37) % cols] *= 20.0f;
              const ActQuantSpec spec{bits, clip, group, symmetric};
              expect_matches_simulation(x, rows, cols, rot, spec, isa,
                                        std::string(isa_name(isa)) + " rows=" + std::to_string(rows) + " rot=" +
                                            rot_name + " bits=" + std::to_string(bits) +
                                            (symmetric ? " sym" : " asym") + " group=" + std::to_string(group) +
                                            " clip=" + std::to_string(clip));
            }
          }
        }
      }
    }
  }
}

TEST_P(ActQuantPath, RowLengthsOffTheVectorWidth) {
  // 100 and 37 values per row exercise every SIMD tail; 100 = 4 x 25 with a
  // Hadamard of order 4 over interleaved vectors of 25.
  OnlineRotation r100{1, 4, 25, {}};
  for (int64_t cols : {100, 37}) {
    const auto x = test::random_floats(3 * cols, 7 + cols, -3.0, 2.0);
    for (bool symmetric : {true, false}) {
      expect_matches_simulation(x, 3, cols, cols == 100 ? &r100 : nullptr, ActQuantSpec{4, 1.0f, 0, symmetric},
                                GetParam(), "cols=" + std::to_string(cols));
    }
  }
  // Mixing over blocks that are not a multiple of the mixing's 16 columns: 4 x 25
  // (every column in the tail) and 3 x 40 (two full sets of 16, then 8).
  OnlineRotation m100{4, 1, 25, test::random_orthogonal(4, 9)};
  OnlineRotation m120{3, 1, 40, test::random_orthogonal(3, 10)};
  for (const OnlineRotation* rot : {&m100, &m120}) {
    const int64_t cols = rot->size();
    const auto x = test::random_floats(5 * cols, 11 + cols, -3.0, 2.0);
    expect_matches_simulation(x, 5, cols, rot, ActQuantSpec{4, 1.0f, 0, true}, GetParam(),
                              "mixing tail, cols=" + std::to_string(cols));
  }
  // down_proj's shape (12 x H_128, the Hadamard's scale applied inside the mixing) and
  // one block more than the AVX-512 kernel keeps in registers (13: 12 outputs, then 1).
  for (int64_t k : {12, 13}) {
    OnlineRotation down{k, 128, 1, test::random_orthogonal(k, 20 + k)};
    const int64_t cols = down.size();
    auto x = test::random_floats(4 * cols, 30 + k, -1.0, 1.0);
    x[5] *= 40.0f;
    for (bool symmetric : {true, false})
      expect_matches_simulation(x, 4, cols, &down, ActQuantSpec{4, 0.9f, 0, symmetric}, GetParam(),
                                "down_proj-like k=" + std::to_string(k));
  }
  // Mixing matrices of +-c entries (a normalized Hadamard matrix's form, as down_proj's
  // 12 x 12 in the models): the kernels multiply each value by c once and add or
  // subtract; the bits must stay the reference's. One entry off by an ulp must fall
  // back to the general road and still match.
  for (const bool off_by_ulp : {false, true}) {
    for (const auto& [k, p, inner] : {std::tuple<int64_t, int64_t, int64_t>{12, 128, 1}, {13, 16, 1}, {4, 1, 25}}) {
      const float c = static_cast<float>(1.0 / std::sqrt(static_cast<double>(k)));
      OnlineRotation signed_mix{k, p, inner, std::vector<float>(k * k)};
      for (int64_t i = 0; i < k * k; ++i) signed_mix.m[i] = ((i * 7 + i / k) % 3 == 0) ? -c : c;
      if (off_by_ulp) signed_mix.m[k + 1] = std::nextafter(signed_mix.m[k + 1], 1.0f);
      const int64_t cols = signed_mix.size();
      auto x = test::random_floats(6 * cols, 50 + k, -1.0, 1.0);
      x[3] *= 30.0f;
      for (bool symmetric : {true, false})
        expect_matches_simulation(x, 6, cols, &signed_mix, ActQuantSpec{4, 0.95f, 0, symmetric}, GetParam(),
                                  "+-c mixing k=" + std::to_string(k) + (off_by_ulp ? " (one entry off)" : ""));
    }
  }
}

TEST_P(ActQuantPath, HandComputedCodesAndTies) {
  // 4-bit symmetric: codes are clamp(round-half-even(x / s), -8, 7) + 8.
  const std::vector<float> x = {7.0f, 2.5f, -3.5f, 0.5f, -1.5f, 1.0f, -8.0f, 0.0f,
                                0.0f, 0.0f, 0.0f,  0.0f, 0.0f,  0.0f, 0.0f,  0.0f};
  QuantizedActivations q;
  quantize_activations(x.data(), 2, 8, nullptr, ActQuantSpec{4, 1.0f, 0, true}, q, GetParam());
  // Row 0 holds -8, so max|x| = 8 and s = 8/7.
  const float s = 1.0f * 8.0f / 7.0f;
  EXPECT_EQ(q.scales[0], s);
  for (int c = 0; c < 8; ++c) {
    const int want = static_cast<int>(std::clamp(std::nearbyint(x[c] / s), -8.0f, 7.0f)) + 8;
    EXPECT_EQ(q.row(0)[c], want) << c;
  }
  EXPECT_EQ(q.row(0)[6], 1);  // -8 / (8/7) = -7
  // An all-zero row: scale 0, every code at the offset.
  EXPECT_EQ(q.scales[1], 0.0f);
  for (int c = 0; c < 8; ++c) EXPECT_EQ(q.row(1)[c], 8);
  EXPECT_EQ(q.code_sums[1], 64);
  // Exact ties with s = 1: 2.5 -> 2, -3.5 -> -4, 0.5 -> 0, -1.5 -> -2.
  const std::vector<float> ties = {7.0f, 2.5f, -3.5f, 0.5f, -1.5f, 1.0f, 3.5f, 0.0f};
  quantize_activations(ties.data(), 1, 8, nullptr, ActQuantSpec{4, 1.0f, 0, true}, q, GetParam());
  EXPECT_EQ(q.scales[0], 1.0f);
  const std::vector<int> tie_codes = {15, 10, 4, 8, 6, 9, 12, 8};
  for (int c = 0; c < 8; ++c) EXPECT_EQ(q.row(0)[c], tie_codes[c]) << c;
}

// down_proj's rotation of a 1536-wide model: H_12 (x) H_128, whose 12 x 12 signs the
// vector paths know at compile time (act_quant_mix.h's kPaley12, its own kernel). Its
// codes must be the simulation's, and a matrix one sign away (the general kernel) too.
TEST_P(ActQuantPath, CompileTimeHadamard12MixMatchesSimulatedPath) {
  const Isa isa = GetParam();
  const float c = static_cast<float>(1.0 / std::sqrt(12.0));
  std::vector<float> m(144);
  for (int i = 0; i < 144; ++i) m[i] = static_cast<float>(act_quant_detail::kPaley12.s[i / 12][i % 12]) * c;
  std::vector<float> flipped = m;
  flipped[5 * 12 + 7] = -flipped[5 * 12 + 7];
  // 12 x 128 (down_proj), 12 x 24 (a block that is not a multiple of the vector width),
  // 12 x 1 x 16 (mixing only, interleaved).
  const OnlineRotation shapes[] = {{12, 128, 1, m}, {12, 8, 3, m}, {12, 1, 16, m}, {12, 128, 1, flipped}};
  uint64_t seed = 900;
  for (const OnlineRotation& rot : shapes) {
    const int64_t cols = rot.size();
    for (int64_t rows : {1, 7}) {
      for (int bits : {4, 8}) {
        auto x = test::random_floats(rows * cols, ++seed, -1.0, 1.0);
        for (int64_t r = 0; r < rows; ++r) x[r * cols + (r * 53) % cols] *= 30.0f;
        // A zero column, whose mixed outputs are zero: the fast kernel may write -0 there.
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t a = 0; a < 12; ++a) x[r * cols + a * rot.p * rot.inner] = 0.0f;
        expect_matches_simulation(x, rows, cols, &rot, ActQuantSpec{bits, 0.9f, 0, true}, isa,
                                  std::string(isa_name(isa)) + " k=12 p=" + std::to_string(rot.p) +
                                      " inner=" + std::to_string(rot.inner) + " bits=" + std::to_string(bits) +
                                      (&rot == &shapes[3] ? " one sign flipped" : ""));
      }
    }
  }
}

// Values a few ulps from a half step, where rint(x * RN(1/s)) (the exact product rounded
// once) and the reference's rint(RN(x / s)) disagree: a path that multiplied by the
// reciprocal without sending such values through the division (the AVX-512 encoder
// does, act_quant_avx512.cpp) would get these wrong. The search proves such values
// exist for each scale, so the comparison is not vacuous.
TEST_P(ActQuantPath, ValuesAtAHalfStepGetTheDivisionsCode) {
  for (int bits : {4, 8}) {
    for (bool symmetric : {true, false}) {
      for (float top : {2.1f, 0.7f, 3.3e-3f, 1234.5f}) {
        const int64_t cols = 160;
        std::vector<float> x(cols, 0.0f);
        x[0] = top;
        x[1] = -0.83f * top;
        QuantizedActivations q;
        const ActQuantSpec spec{bits, 1.0f, 0, symmetric};
        quantize_activations(x.data(), 1, cols, nullptr, spec, q, Isa::kScalar);
        const float s = q.scales[0];
        const double r = static_cast<double>(1.0f / s);
        int64_t found = 0;
        const int reach = (1 << (bits - 1)) - 1;
        for (int k = -reach; k < reach && found < cols - 2; ++k) {
          const float x0 = (static_cast<float>(k) + 0.5f) * s;
          for (int j = -6; j <= 6 && found < cols - 2; ++j) {
            float v = x0;
            for (int step = 0; step < (j < 0 ? -j : j); ++step)
              v = std::nextafter(v, j < 0 ? -std::numeric_limits<float>::infinity()
                                          : std::numeric_limits<float>::infinity());
            if (!(v > x[1] && v < x[0])) continue;
            // The double product of two floats is exact; rint rounds it once.
            if (std::nearbyint(static_cast<double>(v) * r) != static_cast<double>(std::nearbyint(v / s)))
              x[2 + found++] = v;
          }
        }
        const std::string what = std::string(isa_name(GetParam())) + " bits=" + std::to_string(bits) +
                                 (symmetric ? " sym" : " asym") + " top=" + std::to_string(top);
        ASSERT_GT(found, 0) << what << ": no value where the reciprocal's code differs";
        expect_matches_simulation(x, 1, cols, nullptr, spec, GetParam(), what);
      }
    }
  }
}

// Scales where the vector encoders' reciprocal road does not apply or its rounding
// trick leaves its range: a subnormal scale (its reciprocal overflows: every vector
// divides), quotients far past 2^22 from a tiny clip ratio (clamped by the codes' bit
// patterns, which stay monotonic), values near the float limits, and groups of very
// different magnitudes in one row. Each must still give the division's codes.
TEST_P(ActQuantPath, ExtremeScalesGetTheDivisionsCodes) {
  const int64_t cols = 200;  // 3 x 64 values on the 4-vector loop, then a tail of 8
  struct Case {
    double magnitude;
    float clip_ratio;
    int64_t group;
    const char* what;
  };
  const Case cases[] = {{1e-38, 1.0f, 0, "subnormal scale"},
                        {1.0, 1e-9f, 0, "quotients past 2^22"},
                        {1e38, 1.0f, 0, "values near the float limit"},
                        {1.0, 1.0f, 40, "groups of mixed magnitude"}};
  uint64_t seed = 4200;
  for (const Case& c : cases) {
    for (int bits : {4, 8}) {
      for (bool symmetric : {true, false}) {
        auto x = test::random_floats(2 * cols, ++seed, -c.magnitude, c.magnitude);
        if (c.group > 0)
          for (int64_t i = 0; i < 2 * cols; ++i) x[i] *= std::ldexp(1.0f, static_cast<int>((i / c.group) % 5) * 9 - 18);
        const ActQuantSpec spec{bits, c.clip_ratio, c.group, symmetric};
        expect_matches_simulation(x, 2, cols, nullptr, spec, GetParam(),
                                  std::string(isa_name(GetParam())) + " " + c.what + " bits=" +
                                      std::to_string(bits) + (symmetric ? " sym" : " asym"));
      }
    }
  }
}

// The prologues (SwiGLU gating, RMSNorm) computed inside the quantizer give the codes
// of the separate op (vec_ops.h, the kernel the backend runs on that path) followed by
// quantize_activations, with and without a rotation after them.
TEST_P(ActQuantPath, PrologueEqualsTheSeparateOpBitForBit) {
  const Isa isa = GetParam();
  OnlineRotation down{3, 64, 1, test::random_orthogonal(3, 41)};
  const int64_t rows = 37, cols = 192;
  const auto gate = test::random_floats(rows * cols, 42, -6.0, 4.0);
  const auto up = test::random_floats(rows * cols, 43, -2.0, 2.0);
  const auto norm_w = test::random_floats(cols, 44, 0.5, 1.5);
  auto same = [&](const QuantizedActivations& a, const QuantizedActivations& b, const std::string& what) {
    for (int64_t r = 0; r < rows; ++r)
      ASSERT_EQ(std::memcmp(a.row(r), b.row(r), cols), 0) << what << " row " << r;
    EXPECT_EQ(a.scales, b.scales) << what;
    EXPECT_EQ(a.offsets, b.offsets) << what;
    EXPECT_EQ(a.code_sums, b.code_sums) << what;
  };
  const OnlineRotation* const rotations[] = {nullptr, &down};
  for (const OnlineRotation* rot : rotations) {
    for (bool symmetric : {true, false}) {
      const ActQuantSpec spec{4, 0.9f, 0, symmetric};
      const std::string what = std::string(isa_name(isa)) + (rot ? " rotated" : "") + (symmetric ? " sym" : " asym");
      std::vector<float> gated(rows * cols), normed(rows * cols);
      if (isa == Isa::kScalar)
        silu_mul(gate.data(), up.data(), rows * cols, gated.data());
      else
        silu_mul_avx2(gate.data(), up.data(), rows * cols, gated.data());
      for (int64_t r = 0; r < rows; ++r)
        rmsnorm(gate.data() + r * cols, norm_w.data(), cols, 1e-5f, normed.data() + r * cols);
      QuantizedActivations want, got;
      ActPrologue swiglu;
      swiglu.up = up.data();
      quantize_activations(gated.data(), rows, cols, rot, spec, want, isa);
      quantize_activations(gate.data(), swiglu, rows, cols, rot, spec, got, isa);
      same(got, want, what + " swiglu");
      ActPrologue norm;
      norm.kind = ActPrologue::Kind::kRmsnorm;
      norm.norm_weight = norm_w.data();
      norm.norm_eps = 1e-5f;
      quantize_activations(normed.data(), rows, cols, rot, spec, want, isa);
      quantize_activations(gate.data(), norm, rows, cols, rot, spec, got, isa);
      same(got, want, what + " rmsnorm");
    }
  }
  // A value the gating makes non-finite (inf * 0 = NaN) is named by row and column.
  auto g = gate, u = up;
  g[5 * cols + 7] = std::numeric_limits<float>::infinity();
  u[5 * cols + 7] = 0.0f;
  ActPrologue swiglu;
  swiglu.up = u.data();
  QuantizedActivations q;
  try {
    quantize_activations(g.data(), swiglu, rows, cols, nullptr, ActQuantSpec{4, 1.0f, 0, true}, q, isa);
    ADD_FAILURE() << "a non-finite gated value must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 5, column 7"), std::string::npos) << e.what();
  }
}

TEST_P(ActQuantPath, NonFiniteInputThrowsNamingTheRow) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    auto x = test::random_floats(4 * 64, 3);
    x[2 * 64 + 41] = bad;
    QuantizedActivations q;
    try {
      quantize_activations(x.data(), 4, 64, nullptr, ActQuantSpec{4, 1.0f, 0, true}, q, GetParam());
      ADD_FAILURE() << "non-finite input must throw";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("row 2, column 41"), std::string::npos) << e.what();
    }
  }
  // Finite inputs that overflow in the rotation.
  std::vector<float> huge(64, 3.0e38f);
  OnlineRotation h{1, 64, 1, {}};
  QuantizedActivations q;
  EXPECT_THROW(quantize_activations(huge.data(), 1, 64, &h, ActQuantSpec{4, 1.0f, 0, true}, q, GetParam()), Error);
}

TEST_P(ActQuantPath, ReusedOutputKeepsPaddingZero) {
  QuantizedActivations q;
  const auto big = test::random_floats(40 * 96, 11);
  quantize_activations(big.data(), 40, 96, nullptr, ActQuantSpec{8, 1.0f, 0, false}, q, GetParam());
  const auto small = test::random_floats(3 * 64, 12);
  expect_matches_simulation(small, 3, 64, nullptr, ActQuantSpec{4, 1.0f, 0, true}, GetParam(), "reused");
  quantize_activations(small.data(), 3, 64, nullptr, ActQuantSpec{4, 1.0f, 0, true}, q, GetParam());
  for (int64_t r = 3; r < q.padded_rows; ++r) {
    for (int64_t c = 0; c < q.stride; ++c) ASSERT_EQ(q.row(r)[c], 0) << r << "," << c;
  }
}

// The buffer re-zeroes only what earlier calls wrote: a sequence of shapes whose
// strides shrink and grow (decode rows of 576 and 1536, a prefill block) must still
// leave every byte past the rows' codes zero.
TEST_P(ActQuantPath, PaddingStaysZeroAcrossShapeChanges) {
  QuantizedActivations q;
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{1, 1536}, {1, 576}, {40, 576}, {1, 1536},
                                                           {2, 64},   {33, 96}, {1, 576},  {1, 1536}};
  uint64_t seed = 21;
  for (const auto& [rows, cols] : shapes) {
    const auto x = test::random_floats(rows * cols, seed++);
    quantize_activations(x.data(), rows, cols, nullptr, ActQuantSpec{4, 1.0f, 0, true}, q, GetParam());
    for (int64_t r = 0; r < q.padded_rows; ++r) {
      for (int64_t c = r < rows ? cols : 0; c < q.stride; ++c)
        ASSERT_EQ(q.row(r)[c], 0) << rows << "x" << cols << ": byte " << c << " of row " << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, ActQuantPath, ::testing::ValuesIn(test::all_isas()),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

TEST(ActQuant, BadSpecsThrow) {
  const auto x = test::random_floats(2 * 64, 1);
  QuantizedActivations q;
  EXPECT_THROW(quantize_activations(x.data(), 2, 64, nullptr, ActQuantSpec{1, 1.0f, 0, true}, q, Isa::kScalar), Error);
  EXPECT_THROW(quantize_activations(x.data(), 2, 64, nullptr, ActQuantSpec{9, 1.0f, 0, true}, q, Isa::kScalar), Error);
  EXPECT_THROW(quantize_activations(x.data(), 2, 64, nullptr, ActQuantSpec{16, 1.0f, 0, true}, q, Isa::kScalar),
               Error);
  EXPECT_THROW(quantize_activations(x.data(), 2, 64, nullptr, ActQuantSpec{4, 0.0f, 0, true}, q, Isa::kScalar), Error);
  EXPECT_THROW(quantize_activations(x.data(), 2, 64, nullptr, ActQuantSpec{4, 1.0f, 48, true}, q, Isa::kScalar),
               Error);
  EXPECT_THROW(quantize_activations(x.data(), 2, 64, nullptr, ActQuantSpec{4, 1.0f, -1, true}, q, Isa::kScalar),
               Error);
  OnlineRotation wrong{1, 32, 1, {}};
  EXPECT_THROW(quantize_activations(x.data(), 2, 64, &wrong, ActQuantSpec{4, 1.0f, 0, true}, q, Isa::kScalar), Error);
  for (Isa isa : test::all_isas()) {
    if (!isa_supported(isa)) {
      EXPECT_THROW(quantize_activations(x.data(), 2, 64, nullptr, ActQuantSpec{4, 1.0f, 0, true}, q, isa), Error);
    }
  }
}

}  // namespace
}  // namespace quarot
