// Causal attention against a double-precision evaluation of the definition, for
// both paths (direct loop for few rows, blocked GEMMs for many), grouped-query
// heads, a cache that already holds earlier positions, and blocks that do not
// divide the row count.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "common/error.h"
#include "kernels/cpu/attention.h"

namespace quarot {
namespace {

std::vector<float> random_values(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<double> reference(const std::vector<float>& q, int64_t n, int64_t pos0, const std::vector<float>& k,
                              const std::vector<float>& v, const AttentionShape& s, double scale) {
  const int64_t hd = s.head_dim, qd = s.n_heads * hd, kvd = s.n_kv_heads * hd, group = s.n_heads / s.n_kv_heads;
  std::vector<double> out(static_cast<size_t>(n * qd), 0.0);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < s.n_heads; ++h) {
      const int64_t len = pos0 + t + 1, g = h / group;
      std::vector<double> p(static_cast<size_t>(len));
      double mx = -INFINITY, sum = 0.0;
      for (int64_t j = 0; j < len; ++j) {
        double dot = 0.0;
        for (int64_t d = 0; d < hd; ++d) dot += double(q[t * qd + h * hd + d]) * k[j * kvd + g * hd + d];
        p[j] = dot * scale;
        mx = std::max(mx, p[j]);
      }
      for (double& x : p) sum += (x = std::exp(x - mx));
      for (int64_t j = 0; j < len; ++j)
        for (int64_t d = 0; d < hd; ++d) out[t * qd + h * hd + d] += p[j] / sum * v[j * kvd + g * hd + d];
    }
  return out;
}

struct Case {
  int64_t n, pos0, heads, kv_heads, head_dim;
};

class AttentionTest : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionTest, MatchesDoublePrecisionDefinition) {
  const Case c = GetParam();
  const AttentionShape s{c.heads, c.kv_heads, c.head_dim};
  const int64_t total = c.pos0 + c.n, qd = c.heads * c.head_dim, kvd = c.kv_heads * c.head_dim;
  // Scale 2: scores spread over several units, so the softmax is far from uniform.
  const auto q = random_values(static_cast<size_t>(c.n * qd), 1, 2.0f);
  const auto k = random_values(static_cast<size_t>(total * kvd), 2, 1.0f);
  const auto v = random_values(static_cast<size_t>(total * kvd), 3, 1.0f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  std::vector<float> out(static_cast<size_t>(c.n * qd), -1.0f);
  causal_attention(q.data(), c.n, c.pos0, k.data(), v.data(), s, scale, out.data());
  const auto want = reference(q, c.n, c.pos0, k, v, s, scale);
  double worst = 0.0;
  for (size_t i = 0; i < out.size(); ++i) worst = std::max(worst, std::fabs(out[i] - want[i]));
  EXPECT_LT(worst, 2e-5) << "n=" << c.n << " pos0=" << c.pos0;
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionTest,
                         ::testing::Values(Case{1, 0, 4, 2, 16},      // first decode step
                                           Case{1, 300, 9, 3, 64},    // decode, long cache
                                           Case{7, 20, 4, 4, 32},     // short prompt: direct path
                                           Case{16, 0, 2, 1, 64},     // smallest blocked case
                                           Case{300, 0, 9, 3, 64},    // blocks of 128 + remainder
                                           Case{200, 57, 6, 2, 48})); // blocked, cache already filled

TEST(Attention, RejectsBadShapes) {
  float x = 0.0f;
  EXPECT_THROW(causal_attention(&x, 1, 0, &x, &x, {3, 2, 8}, 1.0f, &x), Error);
  EXPECT_THROW(causal_attention(&x, 1, 0, &x, &x, {0, 1, 8}, 1.0f, &x), Error);
  EXPECT_THROW(causal_attention(&x, 1, -1, &x, &x, {1, 1, 8}, 1.0f, &x), Error);
}

}  // namespace
}  // namespace quarot
