#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/error.h"
#include "common/rng.h"
#include "quant/kmeans_1d.h"

namespace quarot {
namespace {

// Sum of squared distances to the nearest centroid, in double, by brute force.
double sse_of(const std::vector<float>& x, const std::vector<float>& c) {
  double s = 0.0;
  for (float v : x) {
    double best = std::numeric_limits<double>::infinity();
    for (float m : c) best = std::min(best, (static_cast<double>(v) - m) * (static_cast<double>(v) - m));
    s += best;
  }
  return s;
}

TEST(KMeans1d, FindsWellSeparatedClusters) {
  // Four clusters of unequal sizes; noise far below the gaps.
  const float centers[] = {-10.0f, -2.0f, 3.0f, 9.0f};
  const int sizes[] = {50, 7, 200, 31};
  Rng rng(5);
  std::vector<float> x;
  double means[4] = {};
  for (int c = 0; c < 4; ++c) {
    for (int i = 0; i < sizes[c]; ++i) {
      const float v = centers[c] + 0.1f * static_cast<float>(rng.normal());
      x.push_back(v);
      means[c] += v;
    }
    means[c] /= sizes[c];
  }
  // Interleave so the input order carries no hint.
  std::vector<float> shuffled(x.size());
  for (size_t i = 0; i < x.size(); ++i) shuffled[(i * 101) % x.size()] = x[i];
  const KMeans1dResult r = kmeans_1d(shuffled.data(), static_cast<int64_t>(shuffled.size()), 4);
  ASSERT_EQ(r.centroids.size(), 4u);
  for (int c = 0; c < 4; ++c) EXPECT_NEAR(r.centroids[c], means[c], 1e-4) << c;
  EXPECT_NEAR(r.sse, sse_of(x, r.centroids), 1e-6 * (1.0 + r.sse));
}

TEST(KMeans1d, ResultIsALloydFixedPointWithConsistentError) {
  Rng rng(9);
  std::vector<float> x(1000);
  for (float& v : x) v = static_cast<float>(rng.normal() * (rng.uniform() < 0.05 ? 6.0 : 1.0));  // heavy tails
  for (int k : {2, 4, 8, 16}) {
    const KMeans1dResult r = kmeans_1d(x.data(), 1000, k);
    ASSERT_EQ(static_cast<int>(r.centroids.size()), k);
    EXPECT_TRUE(std::is_sorted(r.centroids.begin(), r.centroids.end()));
    EXPECT_NEAR(r.sse, sse_of(x, r.centroids), 1e-6 * r.sse);
    // Every centroid is the mean of the values nearest to it.
    std::vector<double> sum(k, 0.0);
    std::vector<int> count(k, 0);
    for (float v : x) {
      const int j = nearest_centroid(r.centroids.data(), k, v);
      sum[j] += v;
      ++count[j];
    }
    for (int j = 0; j < k; ++j) {
      ASSERT_GT(count[j], 0) << "k " << k << " cluster " << j;
      EXPECT_NEAR(r.centroids[j], sum[j] / count[j], 1e-5) << "k " << k << " cluster " << j;
    }
    // Better than the uniform grid of k levels over [min, max] (what RTN would use).
    const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
    std::vector<float> grid(k);
    for (int j = 0; j < k; ++j) grid[j] = *lo + (*hi - *lo) * static_cast<float>(j) / static_cast<float>(k - 1);
    EXPECT_LT(r.sse, sse_of(x, grid)) << k;
  }
}

TEST(KMeans1d, RestartsNeverLoseToTheQuantileStartAndAreDeterministic) {
  Rng rng(17);
  std::vector<float> x(500);
  for (float& v : x) v = static_cast<float>(rng.uniform() < 0.5 ? rng.normal() : 5.0 + 0.2 * rng.normal());
  KMeans1dOptions o;
  const KMeans1dResult plain = kmeans_1d(x.data(), 500, 8, o);
  o.restarts = 6;
  o.seed = 42;
  const KMeans1dResult a = kmeans_1d(x.data(), 500, 8, o);
  const KMeans1dResult b = kmeans_1d(x.data(), 500, 8, o);
  EXPECT_LE(a.sse, plain.sse);
  EXPECT_EQ(a.centroids, b.centroids);
  EXPECT_EQ(a.sse, b.sse);
}

TEST(KMeans1d, FewerDistinctValuesThanClustersAreReproducedExactly) {
  const std::vector<float> constant(64, 0.75f);
  KMeans1dResult r = kmeans_1d(constant.data(), 64, 16);
  ASSERT_EQ(r.centroids.size(), 1u);
  EXPECT_EQ(r.centroids[0], 0.75f);
  EXPECT_EQ(r.sse, 0.0);
  const std::vector<float> three = {2.0f, -1.0f, 2.0f, 0.5f, -1.0f, 2.0f};
  r = kmeans_1d(three.data(), 6, 4);
  EXPECT_EQ(r.centroids, (std::vector<float>{-1.0f, 0.5f, 2.0f}));
  EXPECT_EQ(r.sse, 0.0);
}

TEST(KMeans1d, KeepsEveryClusterWhenMostValuesAreEqual) {
  // 90% zeros: the quantile start puts most centroids on 0 and Lloyd empties them;
  // they must be moved onto the spread values rather than lost.
  Rng rng(3);
  std::vector<float> x(400, 0.0f);
  for (int i = 0; i < 40; ++i) x[i * 10] = static_cast<float>(1.0 + 3.0 * rng.uniform());
  const KMeans1dResult r = kmeans_1d(x.data(), 400, 8);
  EXPECT_EQ(r.centroids.size(), 8u);
  EXPECT_TRUE(std::adjacent_find(r.centroids.begin(), r.centroids.end()) == r.centroids.end());
  EXPECT_LT(r.sse, kmeans_1d(x.data(), 400, 4).sse);
}

TEST(KMeans1d, NearestCentroidBreaksTiesDownward) {
  const float c[] = {-1.0f, 0.0f, 2.0f};
  EXPECT_EQ(nearest_centroid(c, 3, -5.0f), 0);
  EXPECT_EQ(nearest_centroid(c, 3, -0.5f), 0);  // tie between -1 and 0
  EXPECT_EQ(nearest_centroid(c, 3, -0.4f), 1);
  EXPECT_EQ(nearest_centroid(c, 3, 1.0f), 1);   // tie between 0 and 2
  EXPECT_EQ(nearest_centroid(c, 3, 1.1f), 2);
  EXPECT_EQ(nearest_centroid(c, 3, 9.0f), 2);
}

TEST(KMeans1d, RejectsBadInput) {
  const std::vector<float> x = {1.0f, std::nanf(""), 2.0f};
  EXPECT_THROW(kmeans_1d(x.data(), 3, 2), Error);
  const std::vector<float> inf = {1.0f, std::numeric_limits<float>::infinity()};
  EXPECT_THROW(kmeans_1d(inf.data(), 2, 2), Error);
  const std::vector<float> ok = {1.0f, 2.0f};
  EXPECT_THROW(kmeans_1d(ok.data(), 0, 2), Error);
  EXPECT_THROW(kmeans_1d(ok.data(), 2, 0), Error);
}

}  // namespace
}  // namespace quarot
