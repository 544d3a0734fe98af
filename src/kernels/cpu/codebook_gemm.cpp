#include "kernels/cpu/codebook_gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "common/half.h"
#include "common/wait_policy.h"
#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/codebook_gemm_kernels.h"
#include "kernels/cpu/gemm_kernels.h"

namespace quarot {
namespace {

using codebook_detail::CodebookKernels;
using codebook_detail::CodebookView;

constexpr int64_t kStripe = kCodebookStripeRows;
constexpr int64_t kPanelsPerBlock = 4;  // a thread's unit of prefill work

CodebookView view_of(const CodebookGemmWeight& w) {
  CodebookView v;
  v.cols = w.source.cols;
  v.stripe_bytes = w.layout.stripe_bytes;
  for (int b = 0; b < 10; ++b) {
    v.width_start[b] = w.layout.width_start[b];
    v.slice_start[b] = w.layout.slice_start[b];
    v.centroid_start[b] = w.layout.centroid_start[b];
  }
  v.indices = static_cast<const uint8_t*>(w.source.data);
  v.centroids = w.source.centroids;
  v.groups_per_stripe = w.lanes.groups_per_stripe;
  for (int b = 1; b <= kCodebookLaneMaxBits + 1; ++b) {
    v.group_start[b] = w.lanes.group_start[b];
    v.slot_start[b] = w.lanes.slot_start[b];
    v.table_start[b] = w.lanes.table_start[b];
  }
  v.words = w.lanes.words.data();
  v.tables = w.lanes.tables.data();
  v.x_stride = static_cast<int64_t>(w.x_source.size());
  v.wide_x = w.lanes.slots;
  return v;
}

// Floats of the pair tables (CodebookView::pair_tables) of a weight: 8 pairs of 16
// entries per 2-bit group.
int64_t pair_table_floats(const CodebookLanes& lanes) { return (lanes.group_start[3] - lanes.group_start[2]) * 128; }

const CodebookKernels& kernels_for(Isa isa) {
  if (isa == Isa::kScalar) return codebook_detail::codebook_kernels_scalar();
  if (isa == Isa::kAvx2) return codebook_detail::codebook_kernels_avx2();
  return codebook_detail::codebook_kernels_avx512();
}

// Decode products (one codebook_gemm_many call) whose weights times activation rows
// come to fewer than decode_serial_weights() (common/wait_policy.h) run on the calling
// thread: waking the other thread and joining it costs more than the GEMV of e.g.
// SmolLM2's q/k/v (553K weights, ~30 us on one Zen 3 core at 2 bits) when the threads
// sleep; when they spin (~2 us, what one core looks up in ~25K 2-bit weights) q/k/v and
// o_proj (332K) are worth both cores. Results do not depend on it (each half stripe is
// computed alone, in a fixed order).

// One product of a decode call: its activations in the kernels' slot order
// (CodebookView::x_stride), so the kernels walk same-width columns contiguously and
// unused slots multiply 0.
struct GemvJob {
  const CodebookGemmWeight* w = nullptr;
  const float* bias = nullptr;
  const float* residual = nullptr;
  float* y = nullptr;
  CodebookView v;
  const float* xp = nullptr;
  int64_t halves = 0;
};

constexpr int64_t kHalf = kStripe / 2;

// Half stripe h of a job: the kernel's sums, outlier corrections, then bias and
// residual in that order (y = (sum + bias) + residual, the order the separate
// product-then-add calls had).
void gemv_half(const GemvJob& job, const CodebookKernels& k, const float* x, int64_t n, int64_t h) {
  const WeightEncoding& e = job.w->source;
  const int64_t rows = e.rows, cols = e.cols;
  alignas(64) float out[kCodebookLutMaxRows * kStripe];
  const int64_t s = h / 2, j0 = (h % 2) * kHalf;
  k.gemv_stripe(job.v, s, static_cast<int>(h % 2), job.xp, n, out);
  const int64_t r0 = s * kStripe, m = std::min(j0 + kHalf, rows - r0);
  for (int64_t j = j0; j < m; ++j) {
    const int64_t r = r0 + j;
    if (e.n_outliers > 0) {
      for (uint32_t t = e.outlier_row_ptr[r]; t < e.outlier_row_ptr[r + 1]; ++t) {
        const float d = job.w->outlier_delta[t];
        const int64_t c = e.outlier_cols[t];
        for (int64_t i = 0; i < n; ++i) out[i * kStripe + j] += d * x[i * cols + c];
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      float v = out[i * kStripe + j];
      if (job.bias != nullptr) v += job.bias[r];
      if (job.residual != nullptr) v += job.residual[i * rows + r];
      job.y[i * rows + r] = v;
    }
  }
}

// Decode: each stripe's indices are read once for all n activation rows; the half
// stripes of every product form one work list, run in one parallel region (or on the
// calling thread below decode_serial_weights()), taken two at a time (one stripe).
void gemv_products(const CodebookGemmProduct* products, int count, const CodebookKernels& k, const float* x,
                   int64_t n) {
  constexpr int kMaxJobs = 8;
  GemvJob jobs[kMaxJobs];
  int64_t stride_sum = 0, weights = 0, halves = 0;
  for (int j = 0; j < count; ++j) stride_sum += static_cast<int64_t>(products[j].w->x_source.size());
  thread_local std::vector<float> xp;
  if (static_cast<int64_t>(xp.size()) < n * stride_sum) xp.resize(n * stride_sum);
  float* xq = xp.data();
  // One activation row: the 2-bit groups' pair tables, where the kernels use them.
  const bool pairs = n == 1 && k.pair_tables != nullptr;
  int64_t pair_floats = 0;
  if (pairs)
    for (int j = 0; j < count; ++j) pair_floats += pair_table_floats(products[j].w->lanes);
  thread_local AlignedFloats pair_buf;
  if (pair_buf.size() < pair_floats) pair_buf = AlignedFloats(pair_floats);
  float* pt = pair_buf.data();
  for (int j = 0; j < count; ++j) {
    const CodebookGemmProduct& p = products[j];
    const CodebookGemmWeight& w = *p.w;
    const int64_t cols = w.source.cols, stride = static_cast<int64_t>(w.x_source.size());
    for (int64_t i = 0; i < n; ++i)
      for (int64_t q = 0; q < stride; ++q) {
        const int32_t c = w.x_source[q];
        xq[i * stride + q] = c < 0 ? 0.0f : x[i * cols + c];
      }
    GemvJob& job = jobs[j];
    job.w = &w;
    job.bias = p.bias;
    job.residual = p.residual;
    job.y = p.y;
    job.v = view_of(w);
    job.xp = xq;
    if (pairs && pair_table_floats(w.lanes) > 0) {
      k.pair_tables(job.v, xq, pt);
      job.v.pair_tables = pt;
      pt += pair_table_floats(w.lanes);
    }
    job.halves = (w.source.rows + kHalf - 1) / kHalf;  // a last stripe's empty half is skipped
    xq += n * stride;
    weights += w.source.rows * cols * n;
    halves += job.halves;
  }
  const auto run = [&](int64_t h) {
    for (int j = 0; j < count; ++j) {
      if (h < jobs[j].halves) return gemv_half(jobs[j], k, x, n, h);
      h -= jobs[j].halves;
    }
  };
  if (weights <= decode_serial_weights()) {
    for (int64_t h = 0; h < halves; ++h) run(h);
    return;
  }
  // Dynamic: a thread that wakes late (passive waiting, a loaded machine) finds the
  // work moving instead of holding up a fixed half of it.
#pragma omp parallel for schedule(dynamic, 2)
  for (int64_t h = 0; h < halves; ++h) run(h);
}

// Rows [r0, r0 + nr) (nr a multiple of 16, inside the padded stripes) into
// panel[c * nr + j], outliers written over their centroids.
void decode_panel(const CodebookGemmWeight& w, const CodebookKernels& k, const CodebookView& v, int64_t r0,
                  int64_t nr, float* panel) {
  const WeightEncoding& e = w.source;
  for (int64_t h = 0; h < nr; h += 16) k.decode16(v, r0 + h, w.layout.order.data(), panel + h, nr);
  if (e.n_outliers == 0) return;
  for (int64_t j = 0; j < nr && r0 + j < e.rows; ++j)
    for (uint32_t t = e.outlier_row_ptr[r0 + j]; t < e.outlier_row_ptr[r0 + j + 1]; ++t)
      panel[e.outlier_cols[t] * nr + j] = fp16_to_fp32(e.outlier_values[t]);
}

// Scalar prefill: 16-row panels, plain dot products.
void scalar_gemm(const CodebookGemmWeight& w, const CodebookKernels& k, const float* x, int64_t n, const float* bias,
                 float* y) {
  const int64_t rows = w.source.rows, cols = w.source.cols;
  const CodebookView v = view_of(w);
  const int64_t panels = (rows + 15) / 16;
#pragma omp parallel
  {
    std::vector<float> panel(16 * cols);
#pragma omp for schedule(static)
    for (int64_t p = 0; p < panels; ++p) {
      decode_panel(w, k, v, p * 16, 16, panel.data());
      const int64_t m = std::min<int64_t>(16, rows - p * 16);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < m; ++j) {
          float s = 0.0f;
          for (int64_t c = 0; c < cols; ++c) s += panel[c * 16 + j] * x[i * cols + c];
          const int64_t r = p * 16 + j;
          y[i * rows + r] = bias != nullptr ? s + bias[r] : s;
        }
    }
  }
}

// SIMD prefill: panels of NR rows decoded into the FP32 gemm's packed layout in a
// thread-local tile, multiplied by its MR x NR register tiles (as weight_only_gemm).
void panel_gemm(const CodebookGemmWeight& w, const CodebookKernels& k, const gemm_detail::GemmKernels& g,
                const float* x, int64_t n, const float* bias, float* y) {
  const int64_t rows = w.source.rows, cols = w.source.cols;
  const int64_t nr = g.panel_width, mr = g.rows_per_tile;
  QUAROT_CHECK(nr % 16 == 0 && kStripe % nr == 0, "codebook_gemm: unexpected gemm panel width {}", nr);
  const CodebookView v = view_of(w);
  const int64_t panels = (rows + nr - 1) / nr;
  const int64_t blocks = (panels + kPanelsPerBlock - 1) / kPanelsPerBlock;
#pragma omp parallel
  {
    AlignedFloats tile(kPanelsPerBlock * nr * cols);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t p0 = b * kPanelsPerBlock;
      const int64_t np = std::min(kPanelsPerBlock, panels - p0);
      for (int64_t p = 0; p < np; ++p) decode_panel(w, k, v, (p0 + p) * nr, nr, tile.data() + p * nr * cols);
      for (int64_t i0 = 0; i0 < n; i0 += mr) {
        const int64_t m = std::min(mr, n - i0);
        for (int64_t p = 0; p < np; ++p) {
          const int64_t col0 = (p0 + p) * nr;
          const int64_t valid = std::min(nr, rows - col0);
          const float* panel = tile.data() + p * nr * cols;
          alignas(64) float padded_bias[64] = {};
          const float* pb = nullptr;
          if (bias != nullptr) {
            std::memcpy(padded_bias, bias + col0, valid * sizeof(float));
            pb = padded_bias;
          }
          if (valid == nr) {
            g.tile(m, x + i0 * cols, cols, panel, cols, y + i0 * rows + col0, rows, false, pb);
          } else {
            alignas(64) float padded_c[16 * 64];
            g.tile(m, x + i0 * cols, cols, panel, cols, padded_c, nr, false, pb);
            for (int64_t i = 0; i < m; ++i)
              std::memcpy(y + (i0 + i) * rows + col0, padded_c + i * nr, valid * sizeof(float));
          }
        }
      }
    }
  }
}

}  // namespace

CodebookGemmWeight pack_codebook_weight(const WeightEncoding& w) {
  QUAROT_CHECK(w.kind == WeightKind::kCodebook, "codebook_gemm: weight kind {} is not a codebook",
               weight_kind_name(w.kind));
  CodebookGemmWeight p;
  p.source = w;
  p.layout = CodebookLayout(w.rows, w.cols, w.col_bits, "codebook_gemm");
  QUAROT_CHECK(w.data != nullptr && w.centroids != nullptr, "codebook_gemm: weight has no indices or centroids");
  p.lanes = make_codebook_lanes(w, p.layout);
  p.x_source.reserve(p.lanes.slots + w.cols - p.layout.width_start[kCodebookLaneMaxBits + 1]);
  for (const int32_t k : p.lanes.slot_position) p.x_source.push_back(k < 0 ? -1 : p.layout.order[k]);
  for (int64_t k = p.layout.width_start[kCodebookLaneMaxBits + 1]; k < w.cols; ++k)
    p.x_source.push_back(p.layout.order[k]);
  if (w.n_outliers > 0) {
    QUAROT_CHECK(w.outlier_row_ptr != nullptr && w.outlier_cols != nullptr && w.outlier_values != nullptr,
                 "codebook_gemm: weight lacks its outlier arrays");
    p.outlier_delta.resize(w.n_outliers);
    const auto* idx = static_cast<const uint8_t*>(w.data);
    for (int64_t r = 0; r < w.rows; ++r)
      for (uint32_t t = w.outlier_row_ptr[r]; t < w.outlier_row_ptr[r + 1]; ++t) {
        const int64_t c = w.outlier_cols[t];
        const float centroid =
            fp16_to_fp32(w.centroids[p.layout.centroid_offset(p.layout.position[c]) + p.layout.index_at(idx, r, c)]);
        p.outlier_delta[t] = fp16_to_fp32(w.outlier_values[t]) - centroid;
      }
  }
  return p;
}

void codebook_gemm(const CodebookGemmWeight& w, const float* x, int64_t n, const float* bias, float* y, Isa isa,
                   CodebookPath path) {
  const CodebookGemmProduct p{&w, bias, nullptr, y};
  codebook_gemm_many(&p, 1, x, n, isa, path);
}

void codebook_gemm_many(const CodebookGemmProduct* products, int count, const float* x, int64_t n, Isa isa,
                        CodebookPath path) {
  QUAROT_CHECK(count >= 0 && count <= kCodebookMaxProducts, "codebook_gemm: {} products, at most {} at once", count,
               kCodebookMaxProducts);
  QUAROT_CHECK(products != nullptr || count == 0, "codebook_gemm: null product list");
  for (int j = 0; j < count; ++j) {
    const CodebookGemmWeight* w = products[j].w;
    QUAROT_CHECK(w != nullptr && w->source.kind == WeightKind::kCodebook && w->layout.cols == w->source.cols &&
                     w->source.cols > 0,
                 "codebook_gemm: weight was not prepared by pack_codebook_weight");
    QUAROT_CHECK(w->source.cols == products[0].w->source.cols,
                 "codebook_gemm: products of one call read {} and {} inputs", products[0].w->source.cols,
                 w->source.cols);
  }
  QUAROT_CHECK(n >= 0, "codebook_gemm: negative row count {}", n);
  QUAROT_CHECK(isa_supported(isa), "codebook_gemm: instruction set {} is not supported by this CPU", isa_name(isa));
  if (n == 0 || count == 0) return;
  QUAROT_CHECK(x != nullptr, "codebook_gemm: null activation");
  for (int j = 0; j < count; ++j) QUAROT_CHECK(products[j].y != nullptr, "codebook_gemm: null output");
  QUAROT_CHECK(path != CodebookPath::kLut || n <= kCodebookLutMaxRows,
               "codebook_gemm: the lookup-table GEMV takes at most {} rows, got {}", kCodebookLutMaxRows, n);
  const CodebookKernels& k = kernels_for(isa);
  if (path == CodebookPath::kLut || (path == CodebookPath::kAuto && n <= kCodebookGemvMaxRows))
    return gemv_products(products, count, k, x, n);
  for (int j = 0; j < count; ++j) {
    const CodebookGemmProduct& p = products[j];
    const int64_t size = n * p.w->source.rows;
    // Prefill: the product whole, then the residual (the same single addition per element).
    thread_local std::vector<float> product;
    float* out = p.y;
    if (p.residual != nullptr) {
      if (static_cast<int64_t>(product.size()) < size) product.resize(size);
      out = product.data();
    }
    if (isa == Isa::kScalar)
      scalar_gemm(*p.w, k, x, n, p.bias, out);
    else
      panel_gemm(*p.w, k, isa >= Isa::kAvx512 ? gemm_detail::gemm_kernels_avx512() : gemm_detail::gemm_kernels_avx2(),
                 x, n, p.bias, out);
    if (p.residual != nullptr) {
#pragma omp parallel for schedule(static) if (size > 16384)
      for (int64_t i = 0; i < size; ++i) p.y[i] = out[i] + p.residual[i];
    }
  }
}

}  // namespace quarot
