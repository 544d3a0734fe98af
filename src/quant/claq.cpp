#include "quant/claq.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.h"
#include "kernels/weight_encoding.h"
#include "common/threads.h"
#include "quant/cholesky.h"
#include "quant/gptq.h"
#include "quant/kmeans_1d.h"

namespace quarot {

ClaqWidths claq_widths(double bits) {
  ClaqWidths w;
  w.low = static_cast<int>(std::floor(bits));
  if (static_cast<double>(w.low) == bits) {
    w.high = w.low;
  } else {
    w.high = w.low < 4 ? 4 : w.low + 1;
  }
  return w;
}

void check_claq_options(const ClaqOptions& o, const std::string& name) {
  if (!(o.bits >= 2.0 && o.bits <= 8.0)) fail("{}: CLAQ bit budget {} is out of range [2, 8]", name, o.bits);
  if (!(o.outlier_fraction >= 0.0 && o.outlier_fraction <= 0.1))
    fail("{}: CLAQ outlier fraction {} is out of range [0, 0.1]", name, o.outlier_fraction);
  if (!(o.outlier_threshold > 0.0) || !std::isfinite(o.outlier_threshold))
    fail("{}: CLAQ outlier threshold {} must be a positive multiple of the mean magnitude", name, o.outlier_threshold);
  if (!(o.outlier_top_share >= 0.0 && o.outlier_top_share <= 1.0))
    fail("{}: CLAQ outlier top share {} is out of range [0, 1]", name, o.outlier_top_share);
  if (!(o.outlier_top_weight > 0.0) || !std::isfinite(o.outlier_top_weight))
    fail("{}: CLAQ outlier top weight {} must be positive", name, o.outlier_top_weight);
  if (o.kmeans_iter < 1) fail("{}: CLAQ K-means iterations {} must be positive", name, o.kmeans_iter);
  if (o.kmeans_restarts < 0) fail("{}: CLAQ K-means restarts {} must not be negative", name, o.kmeans_restarts);
  if (o.gptq.block <= 0) fail("{}: GPTQ block size {} must be positive", name, o.gptq.block);
  if (!(o.gptq.percdamp > 0.0)) fail("{}: GPTQ percdamp {} must be positive", name, o.gptq.percdamp);
}

std::vector<int64_t> claq_column_ranking(const Tensor& w, double threshold) {
  const int64_t rows = w.rows(), cols = w.cols();
  double mean = 0.0;
  for (float v : w.data) mean += std::fabs(static_cast<double>(v));
  mean /= static_cast<double>(std::max<int64_t>(1, rows * cols));
  const double cut = threshold * mean;
  std::vector<int64_t> count(cols, 0);
  std::vector<float> peak(cols, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = w.row(r);
    for (int64_t c = 0; c < cols; ++c) {
      const float a = std::fabs(row[c]);
      // A zero matrix has no outliers (0 >= 0 would count every weight).
      count[c] += (cut > 0.0 && static_cast<double>(a) >= cut) ? 1 : 0;
      peak[c] = std::max(peak[c], a);
    }
  }
  std::vector<int64_t> order(cols);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    if (count[a] != count[b]) return count[a] > count[b];
    return peak[a] > peak[b];
  });
  return order;
}

std::vector<uint8_t> claq_column_bits(const std::vector<int64_t>& ranking, double bits) {
  const ClaqWidths wd = claq_widths(bits);
  const int64_t cols = static_cast<int64_t>(ranking.size());
  std::vector<uint8_t> out(cols, static_cast<uint8_t>(wd.low));
  if (wd.high == wd.low) return out;
  const double share = (bits - wd.low) / static_cast<double>(wd.high - wd.low);
  const int64_t n_high = std::llround(share * static_cast<double>(cols));
  for (int64_t i = 0; i < n_high && i < cols; ++i) out[ranking[i]] = static_cast<uint8_t>(wd.high);
  return out;
}

std::vector<int64_t> claq_outlier_quota(const std::vector<int64_t>& ranking, int64_t rows, const ClaqOptions& o) {
  const int64_t cols = static_cast<int64_t>(ranking.size());
  std::vector<int64_t> quota(cols, 0);
  int64_t remaining = std::llround(o.outlier_fraction * static_cast<double>(rows) * static_cast<double>(cols));
  remaining = std::min(remaining, rows * cols);
  if (remaining <= 0 || cols == 0) return quota;
  const int64_t n_top = std::llround(o.outlier_top_share * static_cast<double>(cols));
  std::vector<double> weight(cols, 1.0);
  for (int64_t i = 0; i < n_top && i < cols; ++i) weight[ranking[i]] = o.outlier_top_weight;
  // Water-filling: columns whose share would exceed `rows` are capped and the rest
  // re-split, until every share fits.
  std::vector<bool> capped(cols, false);
  std::vector<double> ideal(cols, 0.0);
  for (;;) {
    double wsum = 0.0;
    for (int64_t c = 0; c < cols; ++c)
      if (!capped[c]) wsum += weight[c];
    bool changed = false;
    for (int64_t c = 0; c < cols; ++c) {
      if (capped[c]) continue;
      ideal[c] = static_cast<double>(remaining) * weight[c] / wsum;
      if (ideal[c] > static_cast<double>(rows)) {
        capped[c] = true;
        quota[c] = rows;
        remaining -= rows;
        changed = true;
      }
    }
    if (!changed) break;
  }
  // Largest remainders, visiting columns in ranking order so ties favour outlier-rich columns.
  int64_t given = 0;
  std::vector<std::pair<double, int64_t>> frac;
  for (int64_t i = 0; i < cols; ++i) {
    const int64_t c = ranking[i];
    if (capped[c]) continue;
    const double fl = std::floor(ideal[c]);
    quota[c] = static_cast<int64_t>(fl);
    given += quota[c];
    frac.emplace_back(ideal[c] - fl, c);
  }
  std::stable_sort(frac.begin(), frac.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t i = 0; given < remaining && i < frac.size(); ++i) {
    if (quota[frac[i].second] < rows) {
      ++quota[frac[i].second];
      ++given;
    }
  }
  return quota;
}

namespace {

// The value the file will hold (FP16), so the fed-back error is the stored one's.
float to_fp16_value(float v, const std::string& name) {
  const float h = codebook_round(v);
  if (!std::isfinite(h)) fail("{}: value {} is outside the FP16 range of a codebook", name, v);
  return h;
}

}  // namespace

CodebookMatrix quantize_claq(const Tensor& w_in, const std::vector<double>& h_in, const ClaqOptions& options,
                             const std::string& name) {
  check_claq_options(options, name);
  if (w_in.ndim() != 2) fail("{}: expected a matrix, got shape {}", name, w_in.shape_str());
  const int64_t rows = w_in.rows(), n = w_in.cols();
  if (rows <= 0 || n <= 0) fail("{}: empty matrix {}", name, w_in.shape_str());
  FeedbackInputs inputs = prepare_feedback_inputs(w_in, h_in, name);
  Tensor& w = inputs.w;
  std::vector<double>& h = inputs.h;

  const std::vector<int64_t> ranking = claq_column_ranking(w, options.outlier_threshold);
  CodebookMatrix out;
  out.rows = rows;
  out.cols = n;
  out.col_bits = claq_column_bits(ranking, options.bits);
  const std::vector<int64_t> quota = claq_outlier_quota(ranking, rows, options);
  const std::vector<int64_t> off = out.offsets();
  out.centroids.assign(static_cast<size_t>(off[n]), 0.0f);
  out.indices.assign(static_cast<size_t>(rows * n), 0);

  std::vector<int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  if (options.gptq.act_order)
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return h[a * n + a] > h[b * n + b]; });
  std::vector<double> hp(static_cast<size_t>(n * n));
  double mean_diag = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) hp[i * n + j] = h[perm[i] * n + perm[j]];
    mean_diag += hp[i * n + i];
  }
  mean_diag /= static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) hp[i * n + i] += options.gptq.percdamp * mean_diag;
  std::vector<double> u64;
  if (!upper_cholesky_of_inverse(hp, n, u64))
    fail("{}: the damped Hessian is not positive definite (try a larger percdamp than {})", name,
         options.gptq.percdamp);
  hp.clear();
  hp.shrink_to_fit();
  const std::vector<float> u(u64.begin(), u64.end());
  u64.clear();
  u64.shrink_to_fit();

  // Working copy transposed, so a column (what K-means and the feedback act on) is
  // contiguous: wt[i * rows + r] = w[r, perm[i]].
  std::vector<float> wt(static_cast<size_t>(n * rows));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < n; ++i) wt[i * rows + r] = w.at(r, perm[i]);

  const int64_t block = options.gptq.block;
  std::vector<float> err(static_cast<size_t>(block * rows));
  std::vector<float> values, q(rows), dev(rows);
  std::vector<int64_t> order(rows);
  std::vector<char> kept(rows);
  KMeans1dOptions km;
  km.max_iter = options.kmeans_iter;
  km.restarts = options.kmeans_restarts;
  const int nt = num_threads();

  for (int64_t i1 = 0; i1 < n; i1 += block) {
    const int64_t i2 = std::min(i1 + block, n);
    for (int64_t i = i1; i < i2; ++i) {
      float* col = wt.data() + i * rows;
      const int64_t c = perm[i];
      const int k = 1 << out.col_bits[c];

      // Outlier reservation: the weights farthest from the column mean stay exact.
      std::fill(kept.begin(), kept.end(), 0);
      const int64_t nk = quota[c];
      if (nk > 0) {
        double mean = 0.0;
        for (int64_t r = 0; r < rows; ++r) mean += col[r];
        mean /= static_cast<double>(rows);
        for (int64_t r = 0; r < rows; ++r) dev[r] = std::fabs(static_cast<float>(col[r] - mean));
        std::iota(order.begin(), order.end(), 0);
        std::nth_element(order.begin(), order.begin() + (nk - 1), order.end(), [&](int64_t a, int64_t b) {
          return dev[a] != dev[b] ? dev[a] > dev[b] : a < b;
        });
        for (int64_t t = 0; t < nk; ++t) kept[order[t]] = 1;
      }
      values.clear();
      for (int64_t r = 0; r < rows; ++r)
        if (!kept[r]) values.push_back(col[r]);

      // The column's codebook: K-means centroids rounded to FP16, ascending and
      // distinct; unused slots (fewer distinct values than 2^b) repeat the last one.
      float* cb = out.centroids.data() + off[c];
      int m = 0;
      if (!values.empty()) {
        km.seed = options.seed ^ (static_cast<uint64_t>(c) * 0x9E3779B97F4A7C15ull);
        const KMeans1dResult km_result = kmeans_1d(values.data(), static_cast<int64_t>(values.size()), k, km);
        for (float v : km_result.centroids) cb[m++] = to_fp16_value(v, name);
        std::sort(cb, cb + m);
        m = static_cast<int>(std::unique(cb, cb + m) - cb);
      } else {
        cb[m++] = 0.0f;
      }
      for (int t = m; t < k; ++t) cb[t] = cb[m - 1];

      const float d = u[i * n + i];
      float* e = err.data() + (i - i1) * rows;
      for (int64_t r = 0; r < rows; ++r) {
        const int idx = nearest_centroid(cb, m, col[r]);
        out.indices[r * n + c] = static_cast<uint8_t>(idx);
        q[r] = kept[r] ? to_fp16_value(col[r], name) : cb[idx];
        if (kept[r]) out.outliers.push_back({static_cast<int32_t>(r), static_cast<int32_t>(c), q[r]});
        e[r] = (col[r] - q[r]) / d;
      }
      // Feedback inside the batch, column by column.
      const float* ui = u.data() + i * n;
#pragma omp parallel for schedule(static) num_threads(nt) if ((i2 - i) * rows >= 32768)
      for (int64_t j = i + 1; j < i2; ++j) {
        float* cj = wt.data() + j * rows;
        const float f = ui[j];
#pragma omp simd
        for (int64_t r = 0; r < rows; ++r) cj[r] -= f * e[r];
      }
    }
    // The batch's errors reach the remaining columns in one pass.
    if (i2 < n) {
#pragma omp parallel for schedule(static) num_threads(nt)
      for (int64_t j = i2; j < n; ++j) {
        float* cj = wt.data() + j * rows;
        for (int64_t kk = i1; kk < i2; ++kk) {
          const float f = u[kk * n + j];
          const float* ek = err.data() + (kk - i1) * rows;
#pragma omp simd
          for (int64_t r = 0; r < rows; ++r) cj[r] -= f * ek[r];
        }
      }
    }
  }
  std::sort(out.outliers.begin(), out.outliers.end(), [](const CodebookOutlier& a, const CodebookOutlier& b) {
    return a.row != b.row ? a.row < b.row : a.col < b.col;
  });
  return out;
}

}  // namespace quarot
