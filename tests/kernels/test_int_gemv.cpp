// The decode kernels of int_gemm (int_gemv_kernels.h), each instruction-set path
// against the scalar kernel and against the exact integer definition
//   d = sum_k (a[k] - offset) * (code[k] - zero)
// computed from the unpacked codes, for M = 1..8, ragged N, K that is no multiple of
// the SIMD steps, long rows, every product mode the AVX2 kernel has where it is
// exact, and both weight storages (nibbles, int8). d must match exactly (int32) and
// the epilogue's f bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "common/rng.h"
#include "kernel_test_util.h"
#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/int_gemm.h"
#include "kernels/cpu/int_gemv_kernels.h"

namespace quarot {
namespace {

using int_gemv_detail::IntGemvArgs;
using int_gemv_detail::IntGemvKernels;
using int_gemv_detail::ProductMode;
using int_gemv_detail::WeightFormat;

struct Case {
  int64_t n = 0, k = 0;
  int wbits = 4, abits = 4;
  int64_t group = 0;  // shared by weights and activations (0 = per row), so blocks are the groups
  bool wsym = true, asym = true;  // symmetric weights, symmetric activations
};

struct Data {
  std::vector<int> codes;  // [n, k] unpacked weight codes
  std::vector<float> scales, zeros;
  std::vector<uint8_t> packed;
  IntGemmWeight w;
  QuantizedActivations a;
};

Data make_data(const Case& c, int64_t m, uint64_t seed) {
  Data d;
  Rng rng(seed);
  const int levels = 1 << c.wbits;
  const int64_t group = c.group == 0 ? c.k : c.group, groups = c.k / group;
  d.codes.resize(c.n * c.k);
  for (auto& v : d.codes) v = static_cast<int>(rng.below(levels));
  // A run of extreme codes per row, so int16 sums reach their bound somewhere.
  for (int64_t r = 0; r < c.n; ++r)
    for (int64_t j = 0; j < std::min<int64_t>(c.k, 300); ++j) d.codes[r * c.k + (r * 7 + j) % c.k] = levels - 1;
  d.scales.resize(c.n * groups);
  for (auto& s : d.scales) s = static_cast<float>(0.001 + 0.01 * rng.uniform());
  if (!c.wsym) {
    d.zeros.resize(c.n * groups);
    for (auto& z : d.zeros) z = static_cast<float>(rng.below(levels));
  }
  if (c.wbits <= 4) {
    d.packed.assign((c.n * c.k + 1) / 2, 0);
    for (int64_t i = 0; i < c.n * c.k; ++i) d.packed[i / 2] |= static_cast<uint8_t>(d.codes[i] << (4 * (i % 2)));
  } else {
    d.packed.assign(c.n * c.k, 0);
    for (int64_t i = 0; i < c.n * c.k; ++i) d.packed[i] = static_cast<uint8_t>(d.codes[i]);
  }
  const IntWeightSource src{c.n, c.k, c.wbits, c.group, d.packed.data(), d.scales.data(),
                            c.wsym ? nullptr : d.zeros.data()};
  d.w = pack_int_gemm_weight(src, Isa::kAvx2);  // the SIMD layout is one for every SIMD path
  auto x = test::random_floats(m * c.k, seed + 1, -1.0, 1.0);
  for (int64_t r = 0; r < m; ++r) x[r * c.k + (r * 13) % c.k] = 6.0f;  // outliers: codes at both ends
  quantize_activations(x.data(), m, c.k, nullptr, ActQuantSpec{c.abits, 1.0f, c.group, c.asym}, d.a, Isa::kScalar);
  return d;
}

IntGemvArgs args_for(const Data& d, ProductMode mode, int64_t deep_steps) {
  IntGemvArgs t;
  t.a = d.a.row(0);
  t.lda = d.a.stride;
  t.m = d.a.rows;
  t.w = d.w.data.data();
  t.panel_bytes = d.w.panel_bytes;
  t.panels = d.w.panels;
  t.format = d.w.nibbles ? WeightFormat::kNibbles : WeightFormat::kInt8;
  t.mode = mode;
  t.deep_steps = deep_steps;
  t.blocks = d.w.groups;
  t.kb = d.w.group;
  t.kbw = d.w.group_padded;
  t.a_scale = d.a.scales.data();
  t.a_offset = d.a.offsets.data();
  t.a_sum = d.a.code_sums.data();
  t.w_scale = d.w.scales.data();
  t.w_zero_term = d.w.zero_terms.data();
  t.w_sum = d.w.sums.data();
  return t;
}

// The modes a kernel may be run in for these code ranges, with their int16 step
// counts (int_gemm_kernels.h gives the bounds); every exact one is tested.
std::vector<std::pair<ProductMode, int64_t>> exact_modes(const Data& d, int abits) {
  const int64_t amax = (int64_t{1} << abits) - 1;
  const int64_t wmax = d.w.nibbles ? 15 : (int64_t{1} << (d.w.bits - 1));
  std::vector<std::pair<ProductMode, int64_t>> modes = {{ProductMode::kSplit, 1}};
  if (2 * amax * wmax <= 32767) modes.push_back({ProductMode::kPlain, 1});
  if (4 * amax * wmax <= 32767) modes.push_back({ProductMode::kFast, 1});
  const int64_t deep = std::min<int64_t>(32, 32767 / (4 * amax * wmax));
  if (deep >= 2) modes.push_back({ProductMode::kDeep, deep});
  return modes;
}

class IntGemvPath : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!isa_supported(GetParam()))
      GTEST_SKIP() << isa_name(GetParam()) << " path not testable here: " << isa_unsupported_reason(GetParam());
  }
  const IntGemvKernels& kernels() const {
    return GetParam() == Isa::kAvx2 ? int_gemv_detail::int_gemv_kernels_avx2()
                                    : int_gemv_detail::int_gemv_kernels_avx512vnni();
  }

  void check(const std::string& name, const Case& c, uint64_t seed) {
    for (int64_t m = 1; m <= 8; ++m) {
      const Data d = make_data(c, m, seed + m);
      const int64_t blocks = d.w.groups, P = d.w.panels;
      // The exact definition, from the unpacked codes (columns past n: 0).
      std::vector<int32_t> exact(m * P * blocks * 16, 0);
      for (int64_t i = 0; i < m; ++i)
        for (int64_t n = 0; n < c.n; ++n)
          for (int64_t b = 0; b < blocks; ++b) {
            const int64_t off = d.a.offsets[i * blocks + b];
            const int64_t zero = c.wsym ? (1 << (c.wbits - 1)) : static_cast<int64_t>(d.zeros[n * blocks + b]);
            int64_t dot = 0;
            for (int64_t k = b * d.w.group; k < (b + 1) * d.w.group; ++k)
              dot += (d.a.row(i)[k] - off) * (d.codes[n * c.k + k] - zero);
            exact[((i * P + n / 16) * blocks + b) * 16 + n % 16] = static_cast<int32_t>(dot);
          }
      for (const auto& [mode, steps] : exact_modes(d, c.abits)) {
        const std::string what = name + " " + isa_name(GetParam()) + " M=" + std::to_string(m) + " mode " +
                                 std::to_string(static_cast<int>(mode)) + " steps " + std::to_string(steps);
        IntGemvArgs t = args_for(d, mode, steps);
        std::vector<int32_t> ref_dots(exact.size(), -1), dots(exact.size(), -2);
        t.dots = ref_dots.data();
        int_gemv_detail::int_gemv_kernels_scalar().run(t);
        ASSERT_EQ(ref_dots, exact) << what << ": scalar kernel vs the definition";
        // Every prefetch setting (stream_prefetch.h's per-CPU choices): prefetching changes nothing.
        for (const StreamPrefetch ahead : {StreamPrefetch{}, StreamPrefetch{2048, 0}, StreamPrefetch{2048, 8192}}) {
          t.prefetch = ahead;
          std::fill(dots.begin(), dots.end(), -2);
          t.dots = dots.data();
          kernels().run(t);
          ASSERT_EQ(dots, exact) << what << " prefetch " << ahead.near_bytes << "/" << ahead.far_bytes;
        }
        // The epilogue: f bit for bit against the scalar kernel (padding columns included).
        std::vector<float> ref_out(m * P * 16, -1.0f), out(m * P * 16, -2.0f);
        t.dots = nullptr;
        t.ldo = P * 16;
        t.out = ref_out.data();
        int_gemv_detail::int_gemv_kernels_scalar().run(t);
        t.out = out.data();
        kernels().run(t);
        ASSERT_EQ(0, std::memcmp(out.data(), ref_out.data(), out.size() * sizeof(float))) << what << ": epilogue";
        // A nonzero result somewhere, so an all-zero kernel could not pass.
        ASSERT_TRUE(std::any_of(out.begin(), out.end(), [](float v) { return v != 0.0f; })) << what;
      }
    }
  }
};

TEST_P(IntGemvPath, W4A4EdgeShapes) {
  check("W4A4 16x8", {16, 8, 4, 4, 0, true, true}, 1);
  check("W4A4 N=1", {1, 72, 4, 4, 0, true, true}, 2);
  check("W4A4 odd N, K=100", {33, 100, 4, 4, 0, true, true}, 3);
  check("W4A4 asym", {17, 576, 4, 4, 0, false, false}, 4);
  check("W4A4 grouped 32", {20, 96, 4, 4, 32, true, false}, 5);
}

TEST_P(IntGemvPath, OtherWidths) {
  check("W4A8", {19, 200, 4, 8, 0, true, true}, 6);
  check("W8A8", {17, 136, 8, 8, 0, false, false}, 7);
  check("W8A4 group 64", {9, 256, 8, 4, 64, true, true}, 8);
  check("W3A5 K=44", {31, 44, 3, 5, 0, false, true}, 9);
  check("W6A6", {7, 64, 6, 6, 0, true, false}, 10);
}

TEST_P(IntGemvPath, LongRows) {
  check("W4A4 K=28672", {5, 28672, 4, 4, 0, true, true}, 11);
  check("W8A8 K=28680", {3, 28680, 8, 8, 0, false, false}, 12);
}

TEST_P(IntGemvPath, PanelRangesAreIndependent) {
  // A kernel call on panels [p, p + q) of the range gives the same numbers as the
  // call over all panels (int_gemm splits ranges between threads and chunks).
  const Data d = make_data({70, 192, 4, 4, 0, true, true}, 3, 21);
  IntGemvArgs all = args_for(d, ProductMode::kDeep, 32);
  std::vector<float> whole(3 * d.w.panels * 16), part(3 * 16 * 2);
  all.out = whole.data();
  all.ldo = d.w.panels * 16;
  kernels().run(all);
  IntGemvArgs sub = all;
  sub.panels = 2;
  sub.w = d.w.data.data() + 2 * d.w.panel_bytes;
  sub.w_scale += 2 * 16;
  sub.w_zero_term += 2 * 16;
  sub.w_sum += 2 * 16;
  sub.out = part.data();
  sub.ldo = 32;
  kernels().run(sub);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t c = 0; c < 32; ++c) EXPECT_EQ(part[i * 32 + c], whole[i * all.ldo + 32 + c]) << i << " " << c;
}

INSTANTIATE_TEST_SUITE_P(Paths, IntGemvPath, ::testing::Values(Isa::kAvx2, Isa::kAvx512Vnni),
                         [](const auto& info) { return std::string(isa_name(info.param)); });

}  // namespace
}  // namespace quarot
