// Attention over the packed quantized KV cache against the simulated path it
// replaces: causal_attention() on an FP32 cache holding the fake-quantized rows
// (IntactKV's first row in FP32). Decode (on-the-fly dequantization, split over
// tiles) and prefill (dequantize once, streaming softmax over tiles) must agree to
// float rounding; both for GQA shapes of SmolLM2-135M (9 / 3 heads x 64) and a
// 7B-class model (32 / 8 x 128), 4 and 8 bits, groups, sym/asym, with a cache that
// already holds positions. Results must not depend on the thread count or ISA path.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/error.h"
#include "common/rng.h"
#include "common/threads.h"
#include "kernel_test_util.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/fake_quant.h"
#include "kernels/cpu/kv_attention.h"
#include "kernels/cpu/kv_prefill_tiles.h"
#include "kernels/cpu/kv_store_q.h"

namespace quarot {
namespace {

class ScopedIsaEnv {
 public:
  explicit ScopedIsaEnv(const char* value) {
    if (const char* old = std::getenv("QUAROT_ISA")) old_ = old;
    setenv("QUAROT_ISA", value, 1);
  }
  ~ScopedIsaEnv() {
    if (old_)
      setenv("QUAROT_ISA", old_->c_str(), 1);
    else
      unsetenv("QUAROT_ISA");
  }

 private:
  std::optional<std::string> old_;
};

std::vector<float> normal(int64_t count, uint64_t seed, double sd) {
  Rng rng(seed);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = static_cast<float>(rng.normal() * sd);
  return v;
}

struct Case {
  int64_t n, pos0, heads, kv_heads, head_dim;
  int k_bits;
  int64_t k_group;
  bool k_sym;
  int v_bits;
  int64_t v_group;
  bool v_sym;
  bool intact;
};

struct CacheFixture {
  AttentionShape shape;
  QuantKvLayout kl, vl;
  std::vector<float> q, k_raw, v_raw, k_sim, v_sim;
  QuantKvLayerStore k, v;
  float scale;

  explicit CacheFixture(const Case& c)
      : shape{c.heads, c.kv_heads, c.head_dim},
        kl{c.kv_heads, c.head_dim, c.k_group, c.k_bits, c.k_sym, 0.95f},
        vl{c.kv_heads, c.head_dim, c.v_group, c.v_bits, c.v_sym, 1.0f},
        k(kl, c.pos0 + c.n + 5),
        v(vl, c.pos0 + c.n + 5),
        scale(1.0f / std::sqrt(static_cast<float>(c.head_dim))) {
    const int64_t len = c.pos0 + c.n, kvd = c.kv_heads * c.head_dim;
    // Query scale 2: scores spread over several units, the softmax far from uniform.
    q = normal(c.n * c.heads * c.head_dim, 1, 2.0);
    k_raw = normal(len * kvd, 2, 1.0);
    v_raw = normal(len * kvd, 3, 1.0);
    k_sim = k_raw;
    v_sim = v_raw;
    for (int64_t t = 0; t < len; ++t) {
      if (c.intact && t == 0) continue;
      fake_quant_rows(k_sim.data() + t * kvd, c.kv_heads, c.head_dim, kl.bits, kl.clip_ratio, kl.group, kl.symmetric);
      fake_quant_rows(v_sim.data() + t * kvd, c.kv_heads, c.head_dim, vl.bits, vl.clip_ratio, vl.group, vl.symmetric);
    }
    // The prefix, then the new rows, as the model appends them.
    if (c.pos0 > 0) {
      k.append(k_raw.data(), c.pos0, 0, c.intact);
      v.append(v_raw.data(), c.pos0, 0, c.intact);
    }
    k.append(k_raw.data() + c.pos0 * kvd, c.n, c.pos0, c.intact);
    v.append(v_raw.data() + c.pos0 * kvd, c.n, c.pos0, c.intact);
  }

  std::vector<float> run(const Case& c) const {
    std::vector<float> out(static_cast<size_t>(c.n * c.heads * c.head_dim), -7.0f);
    causal_attention_quant_kv(q.data(), c.n, c.pos0, k, v, shape, scale, out.data());
    return out;
  }
  std::vector<float> reference(const Case& c, bool quantized) const {
    std::vector<float> out(static_cast<size_t>(c.n * c.heads * c.head_dim));
    causal_attention(q.data(), c.n, c.pos0, quantized ? k_sim.data() : k_raw.data(),
                     quantized ? v_sim.data() : v_raw.data(), shape, scale, out.data());
    return out;
  }
};

// Largest |a - b| of any head vector, relative to that vector's largest |b|.
double max_rel_error(const std::vector<float>& a, const std::vector<float>& b, int64_t hd) {
  double worst = 0.0;
  for (size_t v0 = 0; v0 < b.size(); v0 += hd) {
    double diff = 0.0, mag = 0.0;
    for (int64_t d = 0; d < hd; ++d) {
      diff = std::max(diff, std::fabs(double(a[v0 + d]) - b[v0 + d]));
      mag = std::max(mag, std::fabs(double(b[v0 + d])));
    }
    worst = std::max(worst, diff / mag);
  }
  return worst;
}

class KvQuantAttentionTest : public ::testing::TestWithParam<Case> {};

TEST_P(KvQuantAttentionTest, MatchesAttentionOnTheSimulatedCache) {
  const Case c = GetParam();
  const CacheFixture s(c);
  const auto got = s.run(c);
  const auto want = s.reference(c, true);
  // Decode and prefill both run their own tile kernels with a streaming softmax:
  // fast_exp2 is ~1e-6 relative, the sums' order differs from causal_attention's.
  const double err = max_rel_error(got, want, c.head_dim);
  RecordProperty("max_rel_error", fmt::format("{:.3g}", err));
  EXPECT_LT(err, 1e-5);
  // The cache really is quantized: the FP cache gives a visibly different result
  // (a kernel reading raw values would fail the comparison above instead).
  // With IntactKV and only position 0 cached, nothing is quantized: the output is
  // that FP32 value row, up to the rounding of p / sum p.
  const double vs_fp = max_rel_error(got, s.reference(c, false), c.head_dim);
  if (c.intact && c.pos0 + c.n == 1)
    EXPECT_LT(vs_fp, 3e-7);
  else
    EXPECT_GT(vs_fp, c.k_bits == 8 && c.v_bits == 8 ? 1e-4 : 1e-3);
}

TEST_P(KvQuantAttentionTest, SameBitsForAnyThreadCountAndEveryIsaPathAgrees) {
  const Case c = GetParam();
  const CacheFixture s(c);
  const int saved = num_threads();
  set_num_threads(1);
  const auto one = s.run(c);
  set_num_threads(2);
  const auto two = s.run(c);
  set_num_threads(saved);
  EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)), 0);
  for (Isa isa : test::supported_isas()) {
    const ScopedIsaEnv env(isa_name(isa));
    const auto path = s.run(c);
    const auto want = s.reference(c, true);  // causal_attention on this path too
    EXPECT_LT(max_rel_error(path, want, c.head_dim), 1e-5) << isa_name(isa);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, KvQuantAttentionTest,
    ::testing::Values(
        //   n  pos0 heads kv  hd  K: bits group sym  V: bits group sym  intact
        Case{1, 0, 9, 3, 64, 4, 0, false, 4, 0, false, true},          // first decode step: only the FP row
        Case{1, 0, 9, 3, 64, 4, 0, false, 4, 0, false, false},         // first step, quantized row
        Case{1, 511, 9, 3, 64, 4, 0, false, 4, 0, false, true},        // SmolLM2 recipe at 512
        Case{1, 300, 32, 8, 128, 4, 32, false, 4, 32, false, false},   // groups of 32, 3 tiles
        Case{8, 200, 32, 8, 128, 8, 0, true, 8, 0, true, true},        // 8 decode rows, 8-bit sym
        Case{3, 126, 9, 3, 64, 8, 32, true, 4, 0, false, false},       // rows straddle a tile edge
        Case{15, 100, 9, 3, 64, 4, 32, true, 4, 32, true, true},       // largest on-the-fly n
        Case{2, 40, 9, 3, 64, 4, 0, false, 8, 32, true, true},         // K and V differ
        Case{2, 150, 4, 2, 20, 4, 0, false, 4, 10, true, false},       // head_dim % 8 != 0: scalar kernels
        Case{1, 200, 8, 2, 64, 8, 8, true, 8, 16, false, true},        // 8-bit, groups of 8 / 16, nq = 4
        Case{1, 170, 6, 3, 48, 4, 24, false, 4, 8, true, false},       // groups of 24 (16 + 8 values)
        Case{16, 0, 9, 3, 64, 4, 0, false, 4, 0, false, true},         // smallest prefill
        Case{300, 0, 9, 3, 64, 4, 0, false, 4, 0, false, true},        // prompt: blocks + remainder
        Case{130, 57, 32, 8, 128, 4, 32, true, 4, 32, true, false},    // chunked prefill, sym groups
        Case{64, 256, 32, 8, 128, 8, 32, false, 8, 32, false, true},   // 8-bit asym
        Case{40, 10, 4, 2, 24, 4, 8, false, 4, 0, false, true},        // prefill, head_dim % 16 != 0: scalar products
        Case{40, 0, 2, 2, 64, 4, 0, false, 4, 0, false, false}));      // no GQA: 16 / 8 query vectors per block

// Recipes that quantize only K (or only V): the other side stays FP32.
TEST(KvQuantAttention, OneSideFp32MatchesTheSimulatedPath) {
  for (const int64_t n : {1, 5, 40})
    for (const bool k_fp : {true, false}) {
      const Case c{n, 150, 9, 3, 64, 4, 0, false, 4, 32, false, true};
      const CacheFixture s(c);
      const KvSource k = k_fp ? KvSource{nullptr, s.k_raw.data()} : KvSource{&s.k, nullptr};
      const KvSource v = k_fp ? KvSource{&s.v, nullptr} : KvSource{nullptr, s.v_raw.data()};
      std::vector<float> got(static_cast<size_t>(n * 9 * 64), -7.0f), want(got.size()), fp(got.size());
      causal_attention_kv(s.q.data(), n, c.pos0, k, v, s.shape, s.scale, got.data());
      causal_attention(s.q.data(), n, c.pos0, k_fp ? s.k_raw.data() : s.k_sim.data(),
                       k_fp ? s.v_sim.data() : s.v_raw.data(), s.shape, s.scale, want.data());
      causal_attention(s.q.data(), n, c.pos0, s.k_raw.data(), s.v_raw.data(), s.shape, s.scale, fp.data());
      EXPECT_LT(max_rel_error(got, want, 64), 1e-5) << n << " " << k_fp;
      EXPECT_GT(max_rel_error(got, fp, 64), 1e-3) << n << " " << k_fp;  // one side is quantized
    }
}

// Both sides FP32 (the FP32 model's cache): decode reads the rows in place (strided by
// n_kv_heads * head_dim) through the tile kernels; it agrees with causal_attention to
// float rounding on every ISA path, for any thread count bit for bit, including head
// dims the vector kernels do not take and contexts that end inside a tile.
TEST(KvQuantAttention, BothSidesFp32DecodeMatchesCausalAttention) {
  for (const Case& c : {Case{1, 0, 9, 3, 64, 4, 0, false, 4, 0, false, true},
                        Case{1, 511, 9, 3, 64, 4, 0, false, 4, 0, false, true},
                        Case{3, 300, 32, 8, 128, 4, 0, false, 4, 0, false, true},
                        Case{15, 130, 4, 2, 24, 4, 0, false, 4, 0, false, true}}) {
    const CacheFixture s(c);
    const KvSource k{nullptr, s.k_raw.data()}, v{nullptr, s.v_raw.data()};
    const size_t size = static_cast<size_t>(c.n * c.heads * c.head_dim);
    std::vector<float> want(size);
    causal_attention(s.q.data(), c.n, c.pos0, s.k_raw.data(), s.v_raw.data(), s.shape, s.scale, want.data());
    const int saved = num_threads();
    std::vector<float> one(size, -7.0f), two(size, -7.0f);
    set_num_threads(1);
    causal_attention_kv(s.q.data(), c.n, c.pos0, k, v, s.shape, s.scale, one.data());
    set_num_threads(2);
    causal_attention_kv(s.q.data(), c.n, c.pos0, k, v, s.shape, s.scale, two.data());
    set_num_threads(saved);
    EXPECT_EQ(std::memcmp(one.data(), two.data(), size * sizeof(float)), 0) << c.n << " " << c.pos0;
    for (Isa isa : test::supported_isas()) {
      const ScopedIsaEnv env(isa_name(isa));
      std::vector<float> got(size, -7.0f);
      causal_attention_kv(s.q.data(), c.n, c.pos0, k, v, s.shape, s.scale, got.data());
      EXPECT_LT(max_rel_error(got, want, c.head_dim), 1e-5) << isa_name(isa) << " " << c.n << " " << c.pos0;
    }
  }
}

// The register-blocked prefill products (kv_prefill_tiles.h): every path equals the
// scalar reference bit for bit (one fma per step in the same order), and the
// reference is a dot product / weighted sum to float rounding (double sums).
TEST(KvPrefillTiles, EveryPathEqualsTheScalarReferenceAndTheFormula) {
  using kv_detail::kPrefillKeys;
  const kv_detail::PrefillKernels& ref = kv_detail::prefill_kernels_scalar();
  for (const int64_t hd : {16, 64, 128}) {
    for (const int64_t nq : {1, 5, 6, 13, 48}) {
      const int64_t ld = kPrefillKeys + 8;  // a row stride wider than the tile
      const auto q = normal(nq * hd, 20 + nq, 1.0);
      const auto kt = normal(hd * kPrefillKeys, 21 + hd, 1.0);
      const auto p = normal(nq * ld, 22, 1.0);
      const auto v = normal(kPrefillKeys * hd, 23, 1.0);
      const auto o0 = normal(nq * hd, 24, 1.0);
      const float scale = 0.125f;
      for (const int64_t keys : {kPrefillKeys, int64_t{37}, int64_t{1}}) {
        const int64_t width = (keys + 15) / 16 * 16;  // the scores written
        std::vector<float> s_ref(nq * ld, -3.0f), o_ref = o0;
        ref.scores(q.data(), nq, hd, kt.data(), keys, scale, s_ref.data(), ld);
        ref.weighted_sum(p.data(), nq, ld, v.data(), keys, hd, o_ref.data());
        for (int64_t i = 0; i < nq; ++i) {
          for (int64_t j = 0; j < width; ++j) {
            double dot = 0.0;
            for (int64_t d = 0; d < hd; ++d) dot += double(q[i * hd + d]) * kt[d * kPrefillKeys + j];
            ASSERT_NEAR(s_ref[i * ld + j], dot * scale, 1e-5 * std::sqrt(double(hd))) << i << " " << j;
          }
          for (int64_t j = width; j < ld; ++j) ASSERT_EQ(s_ref[i * ld + j], -3.0f);  // left alone
          for (int64_t d = 0; d < hd; ++d) {
            double acc = o0[i * hd + d];
            for (int64_t j = 0; j < keys; ++j) acc += double(p[i * ld + j]) * v[j * hd + d];
            ASSERT_NEAR(o_ref[i * hd + d], acc, 1e-5 * std::sqrt(double(keys))) << i << " " << d;
          }
        }
        for (Isa isa : test::supported_isas()) {
          const kv_detail::PrefillKernels& k = kv_detail::prefill_kernels_for(isa, hd);
          std::vector<float> s(nq * ld, -3.0f), o = o0;
          k.scores(q.data(), nq, hd, kt.data(), keys, scale, s.data(), ld);
          k.weighted_sum(p.data(), nq, ld, v.data(), keys, hd, o.data());
          EXPECT_EQ(s, s_ref) << isa_name(isa) << " hd " << hd << " nq " << nq;
          EXPECT_EQ(o, o_ref) << isa_name(isa) << " hd " << hd << " nq " << nq << " keys " << keys;
        }
      }
    }
  }
}

TEST(KvQuantAttention, RejectsMismatchedCaches) {
  const QuantKvLayout l{3, 64, 0, 4, false, 0.95f};
  QuantKvLayerStore k(l, 8), v(l, 8);
  const auto rows = normal(4 * l.row_dim(), 5, 1.0);
  k.append(rows.data(), 4, 0, false);
  v.append(rows.data(), 3, 0, false);
  std::vector<float> q(static_cast<size_t>(2 * 9 * 64)), out(q.size());
  EXPECT_THROW(causal_attention_quant_kv(q.data(), 1, 3, k, v, {9, 3, 64}, 0.125f, out.data()), Error);  // v short
  EXPECT_THROW(causal_attention_quant_kv(q.data(), 1, 2, k, v, {8, 4, 64}, 0.125f, out.data()), Error);  // heads
  EXPECT_THROW(causal_attention_quant_kv(q.data(), 1, 2, k, v, {9, 3, 32}, 0.125f, out.data()), Error);  // head_dim
  EXPECT_THROW(causal_attention_quant_kv(q.data(), 1, 2, k, v, {10, 3, 64}, 0.125f, out.data()), Error);  // GQA
  EXPECT_THROW(causal_attention_quant_kv(q.data(), 1, -1, k, v, {9, 3, 64}, 0.125f, out.data()), Error);
  EXPECT_NO_THROW(causal_attention_quant_kv(q.data(), 1, 2, k, v, {9, 3, 64}, 0.125f, out.data()));
  EXPECT_THROW(causal_attention_kv(q.data(), 1, 2, KvSource{}, KvSource{&v, nullptr}, {9, 3, 64}, 0.125f, out.data()),
               Error);  // no key source
  EXPECT_THROW(causal_attention_kv(q.data(), 1, 2, KvSource{&k, rows.data()}, KvSource{&v, nullptr}, {9, 3, 64},
                                   0.125f, out.data()),
               Error);  // two key sources
}

}  // namespace
}  // namespace quarot
