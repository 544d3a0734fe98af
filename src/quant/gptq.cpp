#include "quant/gptq.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.h"
#include "common/threads.h"
#include "kernels/cpu/gemm.h"
#include "quant/cholesky.h"
#include "quant/rtn.h"

namespace quarot {

HessianAccumulator::HessianAccumulator(int64_t dim) : dim_(dim) {
  if (dim <= 0) fail("Hessian dimension {} must be positive", dim);
  upper_.assign(static_cast<size_t>(dim * dim), 0.0);
}

int64_t HessianAccumulator::rows_seen() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return rows_;
}

void HessianAccumulator::add(const float* x, int64_t n, int64_t dim) {
  if (dim != dim_) fail("Hessian accumulator of dimension {} got rows of length {}", dim_, dim);
  if (n <= 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  // X^T X of each chunk of rows is an FP32 GEMM (the model's own kernel: two orders
  // of magnitude faster than a double loop, which made calibration the slowest part
  // of GPTQ); chunks are summed in double, so the FP32 rounding is bounded by the
  // chunk length, not by the number of calibration tokens.
  const Isa isa = best_isa();
  std::vector<float> xt(static_cast<size_t>(dim * kHessianChunk));
  std::vector<float> product(static_cast<size_t>(dim * dim));
  for (int64_t t0 = 0; t0 < n; t0 += kHessianChunk) {
    const int64_t m = std::min(kHessianChunk, n - t0);
    for (int64_t t = 0; t < m; ++t)
      for (int64_t j = 0; j < dim; ++j) xt[j * m + t] = x[(t0 + t) * dim + j];
    const GemmWeight w = pack_gemm_weight(xt.data(), dim, m, isa, Placement::kHeap);
    gemm(w, xt.data(), dim, nullptr, product.data());
#pragma omp parallel for schedule(static) num_threads(num_threads()) if (dim >= 256)
    for (int64_t i = 0; i < dim; ++i)
      for (int64_t j = i; j < dim; ++j) upper_[i * dim + j] += static_cast<double>(product[i * dim + j]);
  }
  rows_ += n;
}

std::vector<double> HessianAccumulator::finalize() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (rows_ == 0) fail("Hessian of dimension {}: no calibration rows were added", dim_);
  std::vector<double> h(upper_.size());
  const double f = 2.0 / static_cast<double>(rows_);
  for (int64_t i = 0; i < dim_; ++i)
    for (int64_t j = i; j < dim_; ++j) h[i * dim_ + j] = h[j * dim_ + i] = f * upper_[i * dim_ + j];
  return h;
}

FeedbackInputs prepare_feedback_inputs(const Tensor& w_in, const std::vector<double>& h_in, const std::string& name) {
  if (w_in.ndim() != 2) fail("{}: expected a matrix, got shape {}", name, w_in.shape_str());
  const int64_t rows = w_in.rows(), n = w_in.cols();
  if (static_cast<int64_t>(h_in.size()) != n * n)
    fail("{}: Hessian holds {} values, expected {} x {} for {} input columns", name, h_in.size(), n, n, n);
  for (int64_t i = 0; i < n * n; ++i)
    if (!std::isfinite(h_in[i])) fail("{}: Hessian holds a non-finite value at index {}", name, i);
  for (float v : w_in.data)
    if (!std::isfinite(v)) fail("{}: weight holds a non-finite value", name);
  FeedbackInputs in{w_in, h_in};
  for (int64_t i = 0; i < n; ++i) {
    if (in.h[i * n + i] == 0.0) {
      in.h[i * n + i] = 1.0;
      for (int64_t r = 0; r < rows; ++r) in.w.at(r, i) = 0.0f;
    }
  }
  return in;
}

namespace {

// Rows processed together, so each row of the inverse-Hessian factor is read once per tile.
constexpr int64_t kRowTile = 32;

}  // namespace

QuantizedMatrix quantize_gptq(const Tensor& w_in, const std::vector<double>& h_in, const WeightQuantSpec& spec,
                              const GptqOptions& options, const std::string& name) {
  if (w_in.ndim() != 2) fail("{}: expected a matrix, got shape {}", name, w_in.shape_str());
  const int64_t rows = w_in.rows(), n = w_in.cols();
  check_weight_spec(spec, n, name);
  if (options.block <= 0) fail("{}: GPTQ block size {} must be positive", name, options.block);
  if (!(options.percdamp > 0.0)) fail("{}: GPTQ percdamp {} must be positive", name, options.percdamp);
  if (options.act_order && spec.group > 0 && !options.static_groups)
    fail("{}: GPTQ act_order with groups needs static_groups", name);
  FeedbackInputs inputs = prepare_feedback_inputs(w_in, h_in, name);
  Tensor& w = inputs.w;
  std::vector<double>& h = inputs.h;

  QuantizedMatrix out;
  out.bits = spec.bits;
  out.symmetric = spec.symmetric;
  out.group = spec.group;
  out.rows = rows;
  out.cols = n;
  const int64_t gs = out.group_size(), ng = out.n_groups();
  out.codes.resize(rows * n);
  out.scales.resize(rows * ng);
  if (!spec.symmetric) out.zeros.resize(rows * ng);
  auto store_params = [&](int64_t r, int64_t g, QuantParams p) {
    out.scales[r * ng + g] = p.scale;
    if (!spec.symmetric) out.zeros[r * ng + g] = p.zero;
  };
  const bool dynamic_groups = spec.group > 0 && !options.static_groups;
  // Per-row or static-group grids come from the weights before any update.
  if (!dynamic_groups) {
#pragma omp parallel for schedule(dynamic, 8) num_threads(num_threads())
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t g = 0; g < ng; ++g) store_params(r, g, find_quant_params(w.row(r) + g * gs, gs, spec));
  }

  // Column order: by descending Hessian diagonal with act_order (most salient first).
  std::vector<int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  if (options.act_order)
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return h[a * n + a] > h[b * n + b]; });
  std::vector<double> hp(static_cast<size_t>(n * n));
  double mean_diag = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) hp[i * n + j] = h[perm[i] * n + perm[j]];
    mean_diag += hp[i * n + i];
  }
  mean_diag /= static_cast<double>(n);
  const double damp = options.percdamp * mean_diag;
  for (int64_t i = 0; i < n; ++i) hp[i * n + i] += damp;
  std::vector<double> u64;
  if (!upper_cholesky_of_inverse(hp, n, u64))
    fail("{}: the damped Hessian is not positive definite (try a larger percdamp than {})", name, options.percdamp);
  std::vector<float> u(u64.begin(), u64.end());
  u64.clear();
  u64.shrink_to_fit();

  // Lazy batches never straddle a dynamic group, so a group's grid is always taken
  // from fully updated weights (the batch width only changes speed otherwise).
  int64_t block = options.block;
  if (dynamic_groups) block = gs <= block ? block / gs * gs : gs;

  const int64_t n_tiles = (rows + kRowTile - 1) / kRowTile;
#pragma omp parallel num_threads(num_threads())
  {
    std::vector<float> tile(static_cast<size_t>(kRowTile * n));   // permuted working rows
    std::vector<float> err(static_cast<size_t>(kRowTile * block)); // scaled errors of the batch
    std::vector<QuantParams> params(kRowTile);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < n_tiles; ++t) {
      const int64_t r0 = t * kRowTile, nr = std::min(kRowTile, rows - r0);
      for (int64_t r = 0; r < nr; ++r)
        for (int64_t j = 0; j < n; ++j) tile[r * n + j] = w.at(r0 + r, perm[j]);
      for (int64_t i1 = 0; i1 < n; i1 += block) {
        const int64_t i2 = std::min(i1 + block, n);
        for (int64_t i = i1; i < i2; ++i) {
          const float* ui = u.data() + i * n;
          const float d = ui[i];
          const int64_t col = perm[i];
          const int64_t g = col / gs;
          for (int64_t r = 0; r < nr; ++r) {
            float* wr = tile.data() + r * n;
            QuantParams p;
            if (dynamic_groups) {
              if (col % gs == 0) {
                params[r] = find_quant_params(wr + i, gs, spec);  // columns i..i+gs-1 are this group
                store_params(r0 + r, g, params[r]);
              }
              p = params[r];
            } else {
              p = {out.scales[(r0 + r) * ng + g],
                   spec.symmetric ? static_cast<float>(1 << (spec.bits - 1)) : out.zeros[(r0 + r) * ng + g]};
            }
            const float code = quantize_to_code(wr[i], p, spec.bits);
            out.codes[(r0 + r) * n + col] = static_cast<uint8_t>(code);
            const float e = (wr[i] - dequantize_code(code, p)) / d;
            err[r * block + (i - i1)] = e;
#pragma omp simd
            for (int64_t j = i + 1; j < i2; ++j) wr[j] -= e * ui[j];
          }
        }
        // The batch's errors reach the remaining columns in one pass.
        if (i2 < n) {
          for (int64_t k = i1; k < i2; ++k) {
            const float* uk = u.data() + k * n;
            for (int64_t r = 0; r < nr; ++r) {
              const float e = err[r * block + (k - i1)];
              float* wr = tile.data() + r * n;
#pragma omp simd
              for (int64_t j = i2; j < n; ++j) wr[j] -= e * uk[j];
            }
          }
        }
      }
    }
  }
  return out;
}

}  // namespace quarot
