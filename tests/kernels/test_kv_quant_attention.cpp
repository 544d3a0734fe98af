// Attention over the packed quantized KV cache against the simulated path it
// replaces: causal_attention() on an FP32 cache holding the fake-quantized rows
// (IntactKV's first row in FP32). Decode (on-the-fly dequantization, split over
// tiles) and prefill (dequantize once, streaming softmax over tiles) must agree to
// float rounding; both for GQA shapes of SmolLM2-135M (9 / 3 heads x 64) and a
// 7B-class model (32 / 8 x 128), 4 and 8 bits, groups, sym/asym, with a cache that
// already holds positions. Results must not depend on the thread count or ISA path.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
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
#include "kernels/cpu/kv_code_tiles.h"
#include "kernels/cpu/kv_prefill_int8.h"
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

// Int8 products (KvProducts::kInt8): where the CPU has the kernels and the cache side
// qualifies (prefill: VNNI and both sides 4-bit; decode: VNNI + VBMI, per side packed
// 4-bit codes with one group per head and head_dim % 64 == 0), the error against the
// simulated cache must stay well below what quantizing the cache itself changes (a
// fifth of it; the query and weight codes round at 1/254 and 1/510 of a row, the int4
// cache at 1/15), and be non-zero where enough rows are attended (the int8 kernels
// really ran); elsewhere (8-bit caches, groups within a head) it is the float path, bit
// for bit. Same bits for any thread count.
TEST_P(KvQuantAttentionTest, Int8ProductsStayWellInsideTheCacheError) {
  const Case c = GetParam();
  const CacheFixture s(c);
  const size_t size = static_cast<size_t>(c.n * c.heads * c.head_dim);
  auto run = [&](KvProducts products) {
    std::vector<float> out(size, -7.0f);
    causal_attention_kv(s.q.data(), c.n, c.pos0, KvSource{&s.k, nullptr}, KvSource{&s.v, nullptr}, s.shape, s.scale,
                        out.data(), products);
    return out;
  };
  const int saved = num_threads();
  set_num_threads(1);
  const auto one = run(KvProducts::kInt8);
  set_num_threads(2);
  const auto two = run(KvProducts::kInt8);
  set_num_threads(saved);
  EXPECT_EQ(std::memcmp(one.data(), two.data(), size * sizeof(float)), 0);
  const auto decode_int8 = [&](const QuantKvLayout& l) {
    return best_isa() >= Isa::kAvx512Vnni &&
           kv_detail::code_tile_kernels_int8_for(best_isa(), l.head_dim, l.group_size(), l.packed()) != nullptr;
  };
  const bool int8 = c.n < 16 ? decode_int8(s.kl) || decode_int8(s.vl)
                             : kv_detail::prefill_int8_kernels_for(best_isa(), c.head_dim) != nullptr &&
                                   c.k_bits <= 4 && c.v_bits <= 4;
  if (!int8) {
    const auto fp = run(KvProducts::kFloat);
    EXPECT_EQ(std::memcmp(one.data(), fp.data(), size * sizeof(float)), 0);
    return;
  }
  const auto sim = s.reference(c, true);
  const double int8_err = max_rel_error(one, sim, c.head_dim);
  const double cache_err = max_rel_error(sim, s.reference(c, false), c.head_dim);
  RecordProperty("int8_vs_simulated", fmt::format("{:.3g}", int8_err));
  RecordProperty("simulated_vs_fp", fmt::format("{:.3g}", cache_err));
  if (c.pos0 + c.n >= 16) {
    EXPECT_GT(int8_err, 1e-5);
  }
  // + 1e-5: the float paths' own rounding (a first step that sees only IntactKV's FP32
  // row has no cache error at all).
  EXPECT_LT(int8_err, 0.2 * cache_err + 1e-5) << "int8 " << int8_err << " cache " << cache_err;
}

float abs_max_of(const float* x, int64_t n) {
  float m = 0.0f;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

// Codes cannot carry a NaN or an infinity: a query holding one sends the call to the
// float path, so the int8 option gives exactly what the float path gives. (The cache
// itself refuses non-finite rows when they are appended.)
TEST(KvQuantAttention, Int8ProductsLeaveNonFiniteQueriesToTheFloatPath) {
  for (const int64_t n : {40, 1})  // prefill, decode
    for (const float bad : {NAN, INFINITY}) {
      const Case c{n, 100, 9, 3, 64, 4, 0, false, 4, 0, false, true};
      CacheFixture s(c);
      s.q[(n - 1) * 9 * 64 + 3 * 64 + 7] = bad;
      std::vector<float> a(static_cast<size_t>(c.n * c.heads * c.head_dim)), b(a.size());
      causal_attention_kv(s.q.data(), c.n, c.pos0, KvSource{&s.k, nullptr}, KvSource{&s.v, nullptr}, s.shape,
                          s.scale, a.data(), KvProducts::kInt8);
      causal_attention_kv(s.q.data(), c.n, c.pos0, KvSource{&s.k, nullptr}, KvSource{&s.v, nullptr}, s.shape,
                          s.scale, b.data(), KvProducts::kFloat);
      EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << bad << " n " << n;
    }
  QuantKvLayerStore k(QuantKvLayout{3, 64, 0, 4, false, 0.95f}, 4);
  std::vector<float> row(3 * 64, 0.5f);
  row[70] = INFINITY;
  EXPECT_THROW(k.append(row.data(), 1, 0, false), Error);
}

// The int8 prefill kernels (kv_prefill_int8.h): the scalar reference against the integer
// formula written out here, and the VNNI kernels against the reference bit for bit
// (codes, scales, scores, weighted sums); the fused softmax row to float rounding.
TEST(KvPrefillInt8, ReferenceFollowsTheFormulaAndVnniEqualsIt) {
  using kv_detail::kPrefillKeys;
  const kv_detail::PrefillInt8Kernels& ref = kv_detail::prefill_int8_kernels_scalar();
  if (!isa_supported(Isa::kAvx512Vnni))
    GTEST_SKIP() << "this CPU has no AVX-512 VNNI path: only the scalar reference exists";
  const kv_detail::PrefillInt8Kernels* vnni = &kv_detail::prefill_int8_kernels_avx512vnni();
  Rng rng(31);
  for (const int64_t hd : {16, 64, 128}) {
    const int64_t tile = kv_detail::prefill_int8_tile_bytes(hd);
    for (const int64_t keys : {int64_t{1}, int64_t{5}, int64_t{16}, int64_t{37}, kPrefillKeys}) {
      // Rows with a zero row, an outlier and values on rounding ties (x * 127 / max = k + 1/2).
      auto k = normal(keys * hd, 40 + keys, 1.0), v = normal(keys * hd, 41 + keys, 1.0);
      std::fill_n(k.data(), hd, 0.0f);
      if (keys > 2) v[hd + 3] = 40.0f;
      if (keys > 3) {
        k[3 * hd] = 127.0f;
        k[3 * hd + 1] = 2.5f;
      }
      const int64_t j0 = kPrefillKeys - keys < 8 ? 0 : 4;  // a tile that does not start at 0
      std::vector<int8_t> kq_ref(tile, 9), kq(tile, 9), vq_ref(tile, 9), vq(tile, 9);
      std::vector<float> ks_ref(keys), ks(keys), vs_ref(keys), vs(keys);
      std::vector<int32_t> kc_ref(keys), kc(keys);
      ref.quantize_keys(k.data(), keys, hd, hd, j0, nullptr, kq_ref.data(), ks_ref.data(), kc_ref.data());
      vnni->quantize_keys(k.data(), keys, hd, hd, j0, nullptr, kq.data(), ks.data(), kc.data());
      ref.quantize_values(v.data(), keys, hd, hd, j0, nullptr, vq_ref.data(), vs_ref.data());
      vnni->quantize_values(v.data(), keys, hd, hd, j0, nullptr, vq.data(), vs.data());
      ASSERT_EQ(kq, kq_ref) << hd << " " << keys;
      ASSERT_EQ(ks, ks_ref);
      ASSERT_EQ(kc, kc_ref);
      ASSERT_EQ(vq, vq_ref) << hd << " " << keys;
      ASSERT_EQ(vs, vs_ref);
      EXPECT_EQ(ks_ref[0], 0.0f);  // the zero row
      if (keys > 3) {
        EXPECT_EQ(kq_ref[0 * kPrefillKeys * 4 + (j0 + 3) * 4 + 1], 2);  // 2.5 -> 2 (ties to even)
      }
      // Codes times scale give the row back to half a step.
      for (int64_t r = 0; r < keys; ++r) {
        int32_t sum = 0;
        for (int64_t d = 0; d < hd; ++d) {
          const int8_t ck = kq_ref[(d / 4) * kPrefillKeys * 4 + (j0 + r) * 4 + d % 4];
          const int8_t cv = vq_ref[((j0 + r) / 4) * hd * 4 + d * 4 + (j0 + r) % 4];
          sum += ck;
          ASSERT_LE(std::fabs(ck * ks_ref[r] - k[r * hd + d]), 0.5f * ks_ref[r] * (1 + 1e-5f));
          ASSERT_LE(std::fabs(cv * vs_ref[r] - v[r * hd + d]), 0.5f * vs_ref[r] * (1 + 1e-5f));
        }
        ASSERT_EQ(kc_ref[r], 128 * sum);
      }
      {
        // Rows that are a cache row's s * (c - z) (as dequantized) with their scale given:
        // the codes are c - z exactly; a row given 0 falls back to its own max.
        std::vector<float> given(keys), cache(keys * hd);
        std::vector<int32_t> want(keys * hd);
        for (int64_t r = 0; r < keys; ++r) {
          given[r] = r == 1 ? 0.0f : static_cast<float>(0.01 + rng.uniform() * 0.2);
          const int32_t z = static_cast<int32_t>(rng.below(16));
          for (int64_t d = 0; d < hd; ++d) {
            const int32_t c = static_cast<int32_t>(rng.below(16));
            want[r * hd + d] = c - z;
            cache[r * hd + d] = given[r] * static_cast<float>(c) - given[r] * static_cast<float>(z);
          }
        }
        std::vector<int8_t> gk_ref(tile, 0), gk(tile, 0), gv_ref(tile, 0), gv(tile, 0);
        std::vector<float> gks_ref(keys), gks(keys), gvs_ref(keys), gvs(keys);
        std::vector<int32_t> gkc_ref(keys), gkc(keys);
        ref.quantize_keys(cache.data(), keys, hd, hd, j0, given.data(), gk_ref.data(), gks_ref.data(), gkc_ref.data());
        vnni->quantize_keys(cache.data(), keys, hd, hd, j0, given.data(), gk.data(), gks.data(), gkc.data());
        ref.quantize_values(cache.data(), keys, hd, hd, j0, given.data(), gv_ref.data(), gvs_ref.data());
        vnni->quantize_values(cache.data(), keys, hd, hd, j0, given.data(), gv.data(), gvs.data());
        ASSERT_EQ(gk, gk_ref);
        ASSERT_EQ(gks, gks_ref);
        ASSERT_EQ(gkc, gkc_ref);
        ASSERT_EQ(gv, gv_ref);
        ASSERT_EQ(gvs, gvs_ref);
        for (int64_t r = 0; r < keys; ++r) {
          if (r == 1) {
            EXPECT_EQ(gks_ref[r], abs_max_of(cache.data() + r * hd, hd) / 127.0f);
            continue;
          }
          ASSERT_EQ(gks_ref[r], given[r]);
          for (int64_t d = 0; d < hd; ++d) {
            ASSERT_EQ(gk_ref[(d / 4) * kPrefillKeys * 4 + (j0 + r) * 4 + d % 4], want[r * hd + d]) << r << " " << d;
            ASSERT_EQ(gv_ref[((j0 + r) / 4) * hd * 4 + d * 4 + (j0 + r) % 4], want[r * hd + d]) << r << " " << d;
          }
        }
      }
      for (const int64_t nq : {1, 5, 6, 7, 13, 48}) {
        const auto q = normal(nq * hd, 50 + nq, 1.5);
        std::vector<uint8_t> qu_ref(nq * hd), qu(nq * hd);
        std::vector<float> qf_ref(nq), qf(nq);
        ref.quantize_queries(q.data(), nq, hd, 0.125f, qu_ref.data(), qf_ref.data());
        vnni->quantize_queries(q.data(), nq, hd, 0.125f, qu.data(), qf.data());
        ASSERT_EQ(qu, qu_ref);
        ASSERT_EQ(qf, qf_ref);
        const int64_t ld = kPrefillKeys + 8;
        std::vector<float> s_ref(nq * ld, -3.0f), s(nq * ld, -3.0f);
        const int8_t* kt = kq_ref.data();
        const float* kscale = ks_ref.data() - j0;  // the kernels index scales by tile position
        const int32_t* kcorr = kc_ref.data() - j0;
        std::vector<float> ksc(kPrefillKeys, 0.0f);
        std::vector<int32_t> kcc(kPrefillKeys, 0);
        for (int64_t r = 0; r < keys; ++r) ksc[j0 + r] = kscale[j0 + r], kcc[j0 + r] = kcorr[j0 + r];
        const int64_t span = std::min(kPrefillKeys, j0 + keys);
        ref.scores(qu_ref.data(), nq, hd, kt, kcc.data(), ksc.data(), span, qf_ref.data(), s_ref.data(), ld);
        vnni->scores(qu_ref.data(), nq, hd, kt, kcc.data(), ksc.data(), span, qf_ref.data(), s.data(), ld);
        ASSERT_EQ(s, s_ref) << hd << " " << keys << " " << nq;
        const int64_t width = (span + 15) / 16 * 16;
        for (int64_t i = 0; i < nq; ++i) {
          for (int64_t j = 0; j < width; ++j) {
            int64_t acc = 0;
            for (int64_t d = 0; d < hd; ++d)
              acc += (int64_t{qu_ref[i * hd + d]} - 128) * kt[(d / 4) * kPrefillKeys * 4 + j * 4 + d % 4];
            ASSERT_EQ(s_ref[i * ld + j], (static_cast<float>(acc) * qf_ref[i]) * ksc[j]) << i << " " << j;
          }
          for (int64_t j = width; j < ld; ++j) ASSERT_EQ(s_ref[i * ld + j], -3.0f);  // left alone
        }
        // Weighted sums: random weights, zero past the keys.
        std::vector<uint8_t> u(nq * ld, 0);
        for (int64_t i = 0; i < nq; ++i)
          for (int64_t j = 0; j < span; ++j) u[i * ld + j] = static_cast<uint8_t>(rng.below(256));
        std::vector<float> ws(nq);
        for (float& w : ws) w = static_cast<float>(rng.uniform() * 0.01);
        const auto o0 = normal(nq * hd, 60, 1.0);
        std::vector<float> o_ref = o0, o = o0;
        ref.weighted_sum(u.data(), nq, ld, vq_ref.data(), span, hd, ws.data(), o_ref.data());
        vnni->weighted_sum(u.data(), nq, ld, vq_ref.data(), span, hd, ws.data(), o.data());
        ASSERT_EQ(o, o_ref) << hd << " " << keys << " " << nq;
        for (int64_t i = 0; i < nq; ++i)
          for (int64_t d = 0; d < hd; ++d) {
            int64_t acc = 0;
            for (int64_t j = 0; j < span; ++j) acc += int64_t{u[i * ld + j]} * vq_ref[(j / 4) * hd * 4 + d * 4 + j % 4];
            ASSERT_EQ(o_ref[i * hd + d], std::fma(ws[i], static_cast<float>(acc), o0[i * hd + d])) << i << " " << d;
          }
      }
    }
  }
  // The fused softmax row: running max, sum of 2^((s - max) log2 e), weight codes.
  for (const int64_t visible : {1, 7, 16, 33, 64}) {
    const auto sc = normal(kPrefillKeys, 70 + visible, 3.0);
    std::vector<float> vscale(kPrefillKeys);
    for (float& x : vscale) x = static_cast<float>(0.01 + rng.uniform() * 0.05);
    for (const float m0 : {-INFINITY, 1.0f, 9.0f}) {
      float m_ref = m0, m = m0, w_ref = -1, w = -1;
      std::vector<uint8_t> u_ref(kPrefillKeys, 7), u(kPrefillKeys, 7);
      const float sum_ref = ref.softmax_row(sc.data(), visible, vscale.data(), &m_ref, u_ref.data(), &w_ref);
      const float sum = vnni->softmax_row(sc.data(), visible, vscale.data(), &m, u.data(), &w);
      float mx = m0;
      double want_sum = 0.0, wmax = 0.0;
      for (int64_t j = 0; j < visible; ++j) mx = std::max(mx, sc[j]);
      for (int64_t j = 0; j < visible; ++j) {
        want_sum += std::exp(double(sc[j]) - mx);
        wmax = std::max(wmax, std::exp(double(sc[j]) - mx) * vscale[j]);
      }
      EXPECT_EQ(m_ref, mx);
      EXPECT_EQ(m, mx);
      EXPECT_NEAR(sum_ref, want_sum, 1e-5 * want_sum) << visible << " " << m0;
      EXPECT_NEAR(sum, sum_ref, 1e-5 * sum_ref) << visible << " " << m0;
      EXPECT_NEAR(w_ref, wmax / 255, 1e-5 * wmax / 255);
      EXPECT_NEAR(w, w_ref, 1e-5 * w_ref);
      for (int64_t j = 0; j < kPrefillKeys; ++j) {
        if (j >= visible) {
          ASSERT_EQ(u_ref[j], 0) << j;
          ASSERT_EQ(u[j], 0) << j;
          continue;
        }
        const double want = std::exp(double(sc[j]) - mx) * vscale[j] / w_ref;
        ASSERT_LE(std::fabs(u_ref[j] - want), 0.5 + 1e-3) << j;
        ASSERT_LE(std::abs(int{u[j]} - int{u_ref[j]}), 1) << j;
      }
    }
  }
}

// softmax_rows (a tile's rows in one call; the AVX-512 table reduces sixteen rows at a
// time) equals softmax_row row by row, bit for bit: the row maxima, sums, weight scales
// and codes, with rows that see no key (zero codes, wscale 0, sum 0, max kept), row
// counts off the sixteen, and a running max from an earlier tile on some rows.
TEST(KvPrefillInt8, SoftmaxRowsEqualsTheRowKernelBitForBit) {
  using kv_detail::kPrefillKeys;
  std::vector<const kv_detail::PrefillInt8Kernels*> tables = {&kv_detail::prefill_int8_kernels_scalar()};
  if (isa_supported(Isa::kAvx512Vnni)) tables.push_back(&kv_detail::prefill_int8_kernels_avx512vnni());
  Rng rng(91);
  for (const kv_detail::PrefillInt8Kernels* k : tables) {
    for (const int64_t nq : {int64_t{1}, int64_t{15}, int64_t{16}, int64_t{37}, int64_t{48}}) {
      const int64_t ld = kPrefillKeys + 16, ldu = kPrefillKeys + 8;
      const auto sc = normal(nq * ld, 300 + nq, 4.0);
      std::vector<float> vscale(kPrefillKeys);
      for (float& x : vscale) x = static_cast<float>(0.01 + rng.uniform() * 0.05);
      std::vector<int64_t> visible(nq);
      std::vector<float> m0(nq);
      for (int64_t i = 0; i < nq; ++i) {
        visible[i] = i % 5 == 3 ? 0 : 1 + static_cast<int64_t>(rng.uniform() * kPrefillKeys) % kPrefillKeys;
        m0[i] = i % 3 == 0 ? -INFINITY : static_cast<float>(rng.uniform() * 8.0);
      }
      std::vector<float> m = m0, ws(nq, -1.0f), sums(nq, -1.0f);
      std::vector<uint8_t> u(nq * ldu, 7);
      k->softmax_rows(sc.data(), ld, nq, visible.data(), vscale.data(), m.data(), u.data(), ldu, ws.data(), sums.data());
      for (int64_t i = 0; i < nq; ++i) {
        float m_ref = m0[i], w_ref = 0.0f, sum_ref = 0.0f;
        std::vector<uint8_t> u_ref(kPrefillKeys, 0);
        if (visible[i] > 0)
          sum_ref = k->softmax_row(sc.data() + i * ld, visible[i], vscale.data(), &m_ref, u_ref.data(), &w_ref);
        const auto bits = [](float f) { return std::bit_cast<uint32_t>(f); };
        ASSERT_EQ(bits(m[i]), bits(m_ref)) << "nq " << nq << " row " << i;
        ASSERT_EQ(bits(sums[i]), bits(sum_ref)) << "nq " << nq << " row " << i;
        ASSERT_EQ(bits(ws[i]), bits(w_ref)) << "nq " << nq << " row " << i;
        for (int64_t j = 0; j < kPrefillKeys; ++j) ASSERT_EQ(u[i * ldu + j], u_ref[j]) << "row " << i << " key " << j;
        for (int64_t j = kPrefillKeys; j < ldu; ++j) ASSERT_EQ(u[i * ldu + j], 7) << "row " << i << " wrote past 64";
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


// The AMX products (kv_prefill_int8_amx.cpp) against the scalar reference bit for bit, on
// random codes: every row count around the 16-row tiles (rows past nq hold garbage the
// kernels read and must drop), partial key strips, both head dimensions it takes; and the
// table chosen per ISA and head dimension.
TEST(KvPrefillInt8, AmxProductsEqualTheReference) {
  using kv_detail::kPrefillKeys;
  if (!isa_supported(Isa::kAmx)) GTEST_SKIP() << "AMX path not testable here: " << isa_unsupported_reason(Isa::kAmx);
  const kv_detail::PrefillInt8Kernels& ref = kv_detail::prefill_int8_kernels_scalar();
  const kv_detail::PrefillInt8Kernels& amx = kv_detail::prefill_int8_kernels_amx();
  EXPECT_EQ(kv_detail::prefill_int8_kernels_for(Isa::kAmx, 64), &amx);
  EXPECT_EQ(kv_detail::prefill_int8_kernels_for(Isa::kAmx, 128), &amx);
  EXPECT_EQ(kv_detail::prefill_int8_kernels_for(Isa::kAmx, 48), &kv_detail::prefill_int8_kernels_avx512vnni());
  EXPECT_EQ(kv_detail::prefill_int8_kernels_for(Isa::kAvx512Vnni, 64), &kv_detail::prefill_int8_kernels_avx512vnni());
  ASSERT_NE(amx.begin, nullptr);
  Rng rng(47);
  auto bytes = [&](int64_t n, int lo, int hi) {
    std::vector<int8_t> v(static_cast<size_t>(n));
    for (auto& x : v) x = static_cast<int8_t>(lo + static_cast<int>(rng.below(static_cast<uint64_t>(hi - lo + 1))));
    return v;
  };
  amx.begin();
  for (const int64_t hd : {64, 128}) {
    const int64_t tile = kv_detail::prefill_int8_tile_bytes(hd);
    const auto kq = bytes(tile, -127, 127), vq = bytes(tile, -127, 127);
    std::vector<int32_t> kcorr(kPrefillKeys);
    std::vector<float> kscale(kPrefillKeys);
    for (int64_t j = 0; j < kPrefillKeys; ++j) {
      int32_t sum = 0;
      for (int64_t d = 0; d < hd; ++d) sum += kq[(d / 4) * kPrefillKeys * 4 + j * 4 + d % 4];
      kcorr[j] = 128 * sum;
      kscale[j] = static_cast<float>(0.001 + rng.uniform() * 0.01);
    }
    for (const int64_t nq : {1, 5, 15, 16, 17, 31, 33, 48}) {
      const int64_t padded = (nq + 15) / 16 * 16;
      const auto qraw = bytes(padded * hd, -128, 127);  // as u8: every code, garbage past nq
      std::vector<uint8_t> qu(qraw.begin(), qraw.end());
      std::vector<float> qfactor(nq);
      for (float& f : qfactor) f = static_cast<float>(0.01 + rng.uniform() * 0.1);
      for (const int64_t keys : {int64_t{1}, int64_t{15}, int64_t{17}, int64_t{40}, kPrefillKeys}) {
        const int64_t ld = kPrefillKeys + 8;
        std::vector<float> s_ref(nq * ld, -3.0f), s(nq * ld, -3.0f);
        ref.scores(qu.data(), nq, hd, kq.data(), kcorr.data(), kscale.data(), keys, qfactor.data(), s_ref.data(), ld);
        amx.scores(qu.data(), nq, hd, kq.data(), kcorr.data(), kscale.data(), keys, qfactor.data(), s.data(), ld);
        ASSERT_EQ(s, s_ref) << "scores hd " << hd << " nq " << nq << " keys " << keys;
        // Weights zero past the keys; rows past nq garbage.
        std::vector<uint8_t> u(padded * ld, 0);
        for (int64_t i = 0; i < padded; ++i)
          for (int64_t j = 0; j < (i < nq ? keys : ld); ++j) u[i * ld + j] = static_cast<uint8_t>(rng.below(256));
        std::vector<float> ws(nq);
        for (float& w : ws) w = static_cast<float>(rng.uniform() * 0.01);
        const auto o0 = normal(nq * hd, 80 + nq, 1.0);
        std::vector<float> o_ref = o0, o = o0;
        ref.weighted_sum(u.data(), nq, ld, vq.data(), keys, hd, ws.data(), o_ref.data());
        amx.weighted_sum(u.data(), nq, ld, vq.data(), keys, hd, ws.data(), o.data());
        ASSERT_EQ(o, o_ref) << "weighted sum hd " << hd << " nq " << nq << " keys " << keys;
      }
    }
  }
  amx.end();
}
}  // namespace
}  // namespace quarot
