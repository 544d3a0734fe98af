#include "kernels/cpu/codebook_gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "common/half.h"
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

const CodebookKernels& kernels_for(Isa isa) {
  if (isa == Isa::kScalar) return codebook_detail::codebook_kernels_scalar();
  if (isa == Isa::kAvx2) return codebook_detail::codebook_kernels_avx2();
  return codebook_detail::codebook_kernels_avx512();
}

// Decode: each stripe's indices are read once for all n activation rows.
void gemv(const CodebookGemmWeight& w, const CodebookKernels& k, const float* x, int64_t n, const float* bias,
          float* y) {
  const WeightEncoding& e = w.source;
  const int64_t rows = e.rows, cols = e.cols;
  // x in the kernels' slot order (CodebookView::x_stride), so they walk same-width
  // columns contiguously and unused slots multiply 0.
  const int64_t stride = static_cast<int64_t>(w.x_source.size());
  thread_local std::vector<float> xp;
  if (static_cast<int64_t>(xp.size()) < n * stride) xp.resize(n * stride);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < stride; ++p) {
      const int32_t c = w.x_source[p];
      xp[i * stride + p] = c < 0 ? 0.0f : x[i * cols + c];
    }
  const CodebookView v = view_of(w);
  const float* xpp = xp.data();
  constexpr int64_t kHalf = kStripe / 2;
  const int64_t halves = (rows + kHalf - 1) / kHalf;  // a last stripe's empty half is skipped
#pragma omp parallel for schedule(static)
  for (int64_t h = 0; h < halves; ++h) {
    alignas(64) float out[kCodebookLutMaxRows * kStripe];
    const int64_t s = h / 2, j0 = (h % 2) * kHalf;
    k.gemv_stripe(v, s, static_cast<int>(h % 2), xpp, n, out);
    const int64_t r0 = s * kStripe, m = std::min(j0 + kHalf, rows - r0);
    for (int64_t j = j0; j < m; ++j) {
      const int64_t r = r0 + j;
      if (e.n_outliers > 0) {
        for (uint32_t t = e.outlier_row_ptr[r]; t < e.outlier_row_ptr[r + 1]; ++t) {
          const float d = w.outlier_delta[t];
          const int64_t c = e.outlier_cols[t];
          for (int64_t i = 0; i < n; ++i) out[i * kStripe + j] += d * x[i * cols + c];
        }
      }
      for (int64_t i = 0; i < n; ++i) y[i * rows + r] = bias != nullptr ? out[i * kStripe + j] + bias[r] : out[i * kStripe + j];
    }
  }
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
  QUAROT_CHECK(w.source.kind == WeightKind::kCodebook && w.layout.cols == w.source.cols && w.source.cols > 0,
               "codebook_gemm: weight was not prepared by pack_codebook_weight");
  QUAROT_CHECK(n >= 0, "codebook_gemm: negative row count {}", n);
  QUAROT_CHECK(isa_supported(isa), "codebook_gemm: instruction set {} is not supported by this CPU", isa_name(isa));
  if (n == 0) return;
  QUAROT_CHECK(x != nullptr && y != nullptr, "codebook_gemm: null activation or output");
  QUAROT_CHECK(path != CodebookPath::kLut || n <= kCodebookLutMaxRows,
               "codebook_gemm: the lookup-table GEMV takes at most {} rows, got {}", kCodebookLutMaxRows, n);
  const CodebookKernels& k = kernels_for(isa);
  if (path == CodebookPath::kLut || (path == CodebookPath::kAuto && n <= kCodebookGemvMaxRows))
    return gemv(w, k, x, n, bias, y);
  if (isa == Isa::kScalar) return scalar_gemm(w, k, x, n, bias, y);
  panel_gemm(w, k, isa >= Isa::kAvx512 ? gemm_detail::gemm_kernels_avx512() : gemm_detail::gemm_kernels_avx2(), x, n,
             bias, y);
}

}  // namespace quarot
