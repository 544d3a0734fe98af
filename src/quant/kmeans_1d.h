#pragma once
// K-means on scalars (the per-column codebooks of CLAQ, quant/claq.h). In one
// dimension the clusters of a Lloyd step are contiguous runs of the sorted values,
// split at the midpoints between neighbouring centroids, so with prefix sums one
// step costs O(k log n) instead of O(k n): the values are sorted once and the
// iterations are almost free, which lets every column afford many of them and
// several starts.
//
// Starts: the means of k equal-count quantile bins (deterministic, good for the
// bell-shaped columns of LLM weights), then `restarts` k-means++ seedings drawn
// from Rng(seed); the run with the lowest sum of squared errors wins (ties keep
// the earlier start). A cluster that empties during Lloyd is moved onto the value
// with the largest error, so all k centroids stay in use while the data has k or
// more distinct values. With fewer distinct values than k the distinct values
// themselves are the (exact) centroids and the result holds fewer than k of them.
#include <cstdint>
#include <vector>

namespace quarot {

struct KMeans1dOptions {
  int max_iter = 100;  // Lloyd steps per start (stops earlier once the split points settle)
  int restarts = 0;    // k-means++ starts beside the quantile start
  uint64_t seed = 0;
};

struct KMeans1dResult {
  std::vector<float> centroids;  // ascending, distinct; min(k, distinct values) of them
  double sse = 0.0;              // sum of squared distances to the nearest centroid
};

// x[0..n) must be finite (the caller checks); n >= 1, k >= 1. Throws Error otherwise.
KMeans1dResult kmeans_1d(const float* x, int64_t n, int k, const KMeans1dOptions& options = {});

// Index of the centroid nearest to v in an ascending array (ties go to the lower
// index). c must hold at least one value.
int nearest_centroid(const float* c, int k, float v);

}  // namespace quarot
