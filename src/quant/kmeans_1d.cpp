#include "quant/kmeans_1d.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "common/error.h"
#include "common/rng.h"

namespace quarot {

int nearest_centroid(const float* c, int k, float v) {
  // First centroid >= v; the answer is it or its left neighbour.
  const int hi = static_cast<int>(std::lower_bound(c, c + k, v) - c);
  if (hi == 0) return 0;
  if (hi == k) return k - 1;
  return (v - c[hi - 1] <= c[hi] - v) ? hi - 1 : hi;
}

namespace {

// Sorted values with prefix sums: the sum and sum of squares of any run in O(1).
struct SortedData {
  std::vector<float> s;
  std::vector<double> s1, s2;  // s1[i] = sum s[0..i)

  double sum(int64_t b, int64_t e) const { return s1[e] - s1[b]; }
  // Squared error of s[b..e) around c.
  double sse(int64_t b, int64_t e, double c) const {
    const double n = static_cast<double>(e - b);
    return std::max(0.0, (s2[e] - s2[b]) - 2.0 * c * sum(b, e) + c * c * n);
  }
};

// Lloyd from the ascending start c (k values); returns the final SSE and leaves
// the centroids in c.
double lloyd(const SortedData& d, std::vector<double>& c, int max_iter) {
  const int64_t n = static_cast<int64_t>(d.s.size());
  const int k = static_cast<int>(c.size());
  std::vector<int64_t> split(k + 1), prev(k + 1, -1);
  auto assign = [&] {
    split[0] = 0;
    split[k] = n;
    for (int j = 0; j + 1 < k; ++j) {
      // Ties at the midpoint go to the lower centroid, as in nearest_centroid.
      const float mid = static_cast<float>(0.5 * (c[j] + c[j + 1]));
      split[j + 1] = std::upper_bound(d.s.begin(), d.s.end(), mid) - d.s.begin();
      split[j + 1] = std::max(split[j + 1], split[j]);
    }
  };
  for (int it = 0; it < max_iter; ++it) {
    assign();
    bool empty = false;
    for (int j = 0; j < k; ++j) {
      if (split[j + 1] > split[j])
        c[j] = d.sum(split[j], split[j + 1]) / static_cast<double>(split[j + 1] - split[j]);
      else
        empty = true;
    }
    if (empty) {
      // Reseed each empty cluster on the worst-served value: within a run of sorted
      // values around its mean the largest error sits at one of the run's ends.
      std::vector<std::pair<double, double>> candidates;  // (error, value)
      for (int m = 0; m < k; ++m) {
        if (split[m + 1] <= split[m]) continue;
        for (int64_t idx : {split[m], split[m + 1] - 1})
          candidates.emplace_back(std::fabs(static_cast<double>(d.s[idx]) - c[m]), d.s[idx]);
      }
      std::stable_sort(candidates.begin(), candidates.end(),
                       [](const auto& a, const auto& b) { return a.first > b.first; });
      size_t next = 0;
      for (int j = 0; j < k; ++j) {
        if (split[j + 1] > split[j]) continue;
        while (next < candidates.size() && std::find(c.begin(), c.end(), candidates[next].second) != c.end()) ++next;
        if (next < candidates.size()) c[j] = candidates[next++].second;
      }
      std::sort(c.begin(), c.end());
      std::fill(prev.begin(), prev.end(), -1);
      continue;
    }
    if (split == prev) break;
    prev = split;
  }
  assign();
  double total = 0.0;
  for (int j = 0; j < k; ++j) total += d.sse(split[j], split[j + 1], c[j]);
  return total;
}

}  // namespace

KMeans1dResult kmeans_1d(const float* x, int64_t n, int k, const KMeans1dOptions& options) {
  if (n < 1) fail("K-means over {} values: need at least one", n);
  if (k < 1) fail("K-means with {} clusters: need at least one", k);
  if (options.max_iter < 1) fail("K-means with {} iterations: need at least one", options.max_iter);
  SortedData d;
  d.s.assign(x, x + n);
  for (float v : d.s)
    if (!std::isfinite(v)) fail("K-means over a non-finite value");
  std::sort(d.s.begin(), d.s.end());
  d.s1.assign(n + 1, 0.0);
  d.s2.assign(n + 1, 0.0);
  int64_t distinct = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = d.s[i];
    d.s1[i + 1] = d.s1[i] + v;
    d.s2[i + 1] = d.s2[i] + v * v;
    distinct += (i == 0 || d.s[i] != d.s[i - 1]) ? 1 : 0;
  }

  KMeans1dResult best;
  if (distinct <= k) {
    // Every distinct value is its own centroid: exact.
    best.centroids.assign(d.s.begin(), d.s.end());
    best.centroids.erase(std::unique(best.centroids.begin(), best.centroids.end()), best.centroids.end());
    best.sse = 0.0;
    return best;
  }

  auto keep_if_better = [&](std::vector<double>& c) {
    const double sse = lloyd(d, c, options.max_iter);
    if (best.centroids.empty() || sse < best.sse) {
      best.sse = sse;
      best.centroids.assign(c.begin(), c.end());
    }
  };

  // Quantile start: the mean of each of k equal-count runs.
  std::vector<double> c(k);
  for (int j = 0; j < k; ++j) {
    const int64_t b = j * n / k, e = (j + 1) * n / k;
    c[j] = d.sum(b, e) / static_cast<double>(e - b);
  }
  keep_if_better(c);

  // k-means++ starts: each new centroid drawn with probability proportional to the
  // squared distance to the nearest chosen one.
  Rng rng(options.seed);
  std::vector<double> dist(n);
  for (int r = 0; r < options.restarts; ++r) {
    c.assign(1, d.s[rng.below(static_cast<uint64_t>(n))]);
    for (int64_t i = 0; i < n; ++i) dist[i] = (d.s[i] - c[0]) * (d.s[i] - c[0]);
    while (static_cast<int>(c.size()) < k) {
      double total = 0.0;
      for (double v : dist) total += v;
      if (!(total > 0.0)) break;
      double target = rng.uniform() * total;
      int64_t pick = n - 1;
      for (int64_t i = 0; i < n; ++i) {
        target -= dist[i];
        if (target < 0.0) {
          pick = i;
          break;
        }
      }
      const double v = d.s[pick];
      c.push_back(v);
      for (int64_t i = 0; i < n; ++i) dist[i] = std::min(dist[i], (d.s[i] - v) * (d.s[i] - v));
    }
    std::sort(c.begin(), c.end());
    c.erase(std::unique(c.begin(), c.end()), c.end());
    if (static_cast<int>(c.size()) < k) continue;  // cannot happen with > k distinct values; be safe
    keep_if_better(c);
  }
  // Distinct and ascending (Lloyd keeps them sorted; equal means would need equal runs).
  std::sort(best.centroids.begin(), best.centroids.end());
  best.centroids.erase(std::unique(best.centroids.begin(), best.centroids.end()), best.centroids.end());
  return best;
}

}  // namespace quarot
