#include "kernels/cpu/weight_only_gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include <omp.h>

#include "common/error.h"
#include "common/wait_policy.h"
#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm_kernels.h"
#include "kernels/cpu/stream_prefetch.h"
#include "kernels/cpu/weight_only_gemm_kernels.h"

namespace quarot {

weight_only_detail::RowView weight_only_detail::row_view(const WeightEncoding& w, int64_t r) {
  RowView v;
  v.f16 = w.kind == WeightKind::kF16;
  v.cols = w.cols;
  v.data = w.row_data(r);
  if (!v.f16) {
    v.bits = w.bits;
    v.group_size = w.group_size();
    v.scales = w.scales + r * w.n_groups();
    v.zeros = w.symmetric ? nullptr : w.zeros + r * w.n_groups();
    v.sym_zero = 1 << (w.bits - 1);
  }
  return v;
}

// Rows are consecutive in memory, so the weight is read as one sequential stream;
// interleaving even two rows (two streams 1 KiB apart) halved the read rate on Zen 4
// (13 vs 23 GB/s on one core, F16 576 columns), as the hardware prefetchers then fall
// behind. Whole rows are prefetched at decode_prefetch()'s distances where the CPU
// wants it (stream_prefetch.h; requests past the last row are harmless).
void weight_only_detail::stream_rows1(const RowView& first, int64_t row_stride, int64_t rows, const float* x,
                                      float* out, void (*dot1)(const RowView& row, const float* x, float* out)) {
  // decode_prefetch()'s distances rounded up to whole rows: each row's lines are
  // requested together, the rows that far ahead of the one being read.
  const StreamPrefetch& d = decode_prefetch();
  const auto whole_rows = [&](int64_t bytes) { return (bytes + row_stride - 1) / row_stride * row_stride; };
  const StreamPrefetch ahead{whole_rows(d.near_bytes), whole_rows(d.far_bytes)};
  const bool prefetch = ahead.near_bytes != 0 || ahead.far_bytes != 0;
  const int64_t groups = first.f16 ? 0 : first.cols / first.group_size;
  for (int64_t j = 0; j < rows; ++j) {
    for (int64_t b = 0; prefetch && b < row_stride; b += 64) prefetch_ahead(first.data + j * row_stride + b, ahead);
    RowView row = first;
    row.data = first.data + j * row_stride;
    if (!first.f16) {
      row.scales = first.scales + j * groups;
      if (first.zeros != nullptr) row.zeros = first.zeros + j * groups;
    }
    dot1(row, x, out + j);
  }
}

bool weight_only_detail::wide_f16_rows() {
  static const bool wide = cpu_features().vendor != "AuthenticAMD";
  return wide;
}

bool weight_only_detail::split_nibble_row(const RowView& row) {
  return !row.f16 && row.bits <= 4 && (row.group_size % kSplitBlock == 0 || row.group_size == row.cols);
}

void weight_only_detail::split_nibble_columns(const float* x, int64_t n, int64_t cols, float* out) {
  const int64_t full = cols / kSplitBlock * kSplitBlock;
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = x + i * cols;
    float* oi = out + i * cols;
    for (int64_t c = 0; c < full; c += kSplitBlock)
      for (int64_t j = 0; j < kSplitBlock / 2; ++j) {
        oi[c + j] = xi[c + 2 * j];
        oi[c + kSplitBlock / 2 + j] = xi[c + 2 * j + 1];
      }
    for (int64_t c = full; c < cols; ++c) oi[c] = xi[c];
  }
}

namespace {

using weight_only_detail::row_view;
using weight_only_detail::RowView;
using weight_only_detail::WeightOnlyKernels;

constexpr int64_t kPanel = 16;           // W rows per FP32 panel (the AVX2 gemm tile width)
constexpr int64_t kPanelsPerBlock = 4;   // a thread's unit of prefill work: 64 W rows
constexpr int64_t kScalarRowBlock = 64;  // W rows the scalar prefill dequantizes at once
constexpr int64_t kRowChunk = 512;       // decode rows per work item, at most (576 KiB of F16 at 576 columns)
constexpr int64_t kChunksPerThread = 4;  // and at least this many items per thread where rows allow
constexpr int64_t kMinRowChunk = 16;


// Decode: every W row is read once and dotted with all n (<= 8) activation rows.
void gemv(const WeightEncoding& w, const WeightOnlyKernels& k, const float* x, int64_t n, const float* bias,
          float* y) {
  const int64_t rows = w.rows;
  if (k.splits_nibbles && weight_only_detail::split_nibble_row(row_view(w, 0))) {
    // The kernel's activation order, made once per call (n x cols floats, small next to the weight).
    thread_local std::vector<float> split;
    if (static_cast<int64_t>(split.size()) < n * w.cols) split.resize(n * w.cols);
    weight_only_detail::split_nibble_columns(x, n, w.cols, split.data());
    x = split.data();
  }
  if (n == 1) {
    // Decode (the lm_head above all): runs of rows, each streamed row after row (the
    // same per-row sums as dot_row, so any split gives the same bits), taken by the
    // threads in turn: a thread that wakes late or loses its core for a while (2 vCPUs
    // shared with other work) no longer holds up a fixed half of the rows. Runs are
    // short enough for several per thread: with 512-row runs a 576-row W4A16 linear
    // split 512:64 and its other thread waited. A weight smaller than
    // decode_serial_bytes() stays on the calling thread.
    const int64_t stride = w.row_bytes();
    const int64_t threads = std::max(1, omp_get_max_threads());
    const int64_t chunk = std::clamp((rows + kChunksPerThread * threads - 1) / (kChunksPerThread * threads),
                                     kMinRowChunk, kRowChunk);
    const int64_t chunks = rows * stride < decode_serial_bytes() ? 1 : (rows + chunk - 1) / chunk;
    const auto run = [&](int64_t c) {
      const int64_t r0 = chunks == 1 ? 0 : c * chunk, r1 = chunks == 1 ? rows : std::min(rows, r0 + chunk);
      k.rows1(row_view(w, r0), stride, r1 - r0, x, y + r0);
      if (bias != nullptr)
        for (int64_t r = r0; r < r1; ++r) y[r] = y[r] + bias[r];
    };
    if (chunks == 1) return run(0);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t c = 0; c < chunks; ++c) run(c);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    float out[kWeightOnlyGemvMaxRows];
    k.dot_row(row_view(w, r), x, n, out);
    for (int64_t i = 0; i < n; ++i) y[i * rows + r] = bias != nullptr ? out[i] + bias[r] : out[i];
  }
}

// Scalar prefill: dequantize a block of W rows, then plain dot products.
void scalar_gemm(const WeightEncoding& w, const WeightOnlyKernels& k, const float* x, int64_t n, const float* bias,
                 float* y) {
  const int64_t rows = w.rows, cols = w.cols;
  const int64_t blocks = (rows + kScalarRowBlock - 1) / kScalarRowBlock;
#pragma omp parallel
  {
    std::vector<float> tile(kScalarRowBlock * cols);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * kScalarRowBlock;
      const int64_t m = std::min(kScalarRowBlock, rows - r0);
      for (int64_t j = 0; j < m; ++j) k.decode_row(row_view(w, r0 + j), tile.data() + j * cols);
      for (int64_t i = 0; i < n; ++i) {
        const float* xi = x + i * cols;
        for (int64_t j = 0; j < m; ++j) {
          const float* wr = tile.data() + j * cols;
          float s = 0.0f;
          for (int64_t c = 0; c < cols; ++c) s += wr[c] * xi[c];
          y[i * rows + r0 + j] = bias != nullptr ? s + bias[r0 + j] : s;
        }
      }
    }
  }
}

// SIMD prefill: W rows go, 16 at a time, into the FP32 gemm's packed panel layout
// (panel[c * 16 + j] = W[r0 + j, c], zero past the last row) in a thread-local tile,
// and the gemm's 6 x 16 register tile multiplies them against all n rows. A block of
// 4 panels shares each 6-row activation tile while it sits in L1.
void panel_gemm(const WeightEncoding& w, const WeightOnlyKernels& k, const float* x, int64_t n, const float* bias,
                float* y) {
  const auto& g = gemm_detail::gemm_kernels_avx2();
  QUAROT_CHECK(g.panel_width == kPanel, "weight_only_gemm: unexpected gemm panel width {}", g.panel_width);
  const int64_t rows = w.rows, cols = w.cols;
  const int64_t mr = g.rows_per_tile;
  const int64_t panels = (rows + kPanel - 1) / kPanel;
  const int64_t blocks = (panels + kPanelsPerBlock - 1) / kPanelsPerBlock;
#pragma omp parallel
  {
    AlignedFloats tile(kPanelsPerBlock * kPanel * cols);
    std::vector<float> row(cols);
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t p0 = b * kPanelsPerBlock;
      const int64_t np = std::min(kPanelsPerBlock, panels - p0);
      for (int64_t p = 0; p < np; ++p) {
        float* panel = tile.data() + p * kPanel * cols;
        for (int64_t j = 0; j < kPanel; ++j) {
          const int64_t r = (p0 + p) * kPanel + j;
          if (r < rows) {
            k.decode_row(row_view(w, r), row.data());
            for (int64_t c = 0; c < cols; ++c) panel[c * kPanel + j] = row[c];
          } else {
            for (int64_t c = 0; c < cols; ++c) panel[c * kPanel + j] = 0.0f;
          }
        }
      }
      for (int64_t i0 = 0; i0 < n; i0 += mr) {
        const int64_t m = std::min(mr, n - i0);
        for (int64_t p = 0; p < np; ++p) {
          const int64_t col0 = (p0 + p) * kPanel;
          const int64_t valid = std::min(kPanel, rows - col0);
          const float* panel = tile.data() + p * kPanel * cols;
          float padded_bias[kPanel] = {};
          const float* pb = nullptr;
          if (bias != nullptr) {
            std::memcpy(padded_bias, bias + col0, valid * sizeof(float));
            pb = padded_bias;
          }
          if (valid == kPanel) {
            g.tile(m, x + i0 * cols, cols, panel, cols, y + i0 * rows + col0, rows, false, pb);
          } else {
            float padded_c[8 * kPanel];
            g.tile(m, x + i0 * cols, cols, panel, cols, padded_c, kPanel, false, pb);
            for (int64_t i = 0; i < m; ++i)
              std::memcpy(y + (i0 + i) * rows + col0, padded_c + i * kPanel, valid * sizeof(float));
          }
        }
      }
    }
  }
}

}  // namespace

void weight_only_gemm(const WeightEncoding& w, const float* x, int64_t n, const float* bias, float* y, Isa isa) {
  QUAROT_CHECK(w.kind == WeightKind::kF16 || w.kind == WeightKind::kIntGrid,
               "weight_only_gemm: weight kind {} is not a stored encoding (FP32 weights use the FP32 gemm)",
               weight_kind_name(w.kind));
  QUAROT_CHECK(w.rows > 0 && w.cols > 0, "weight_only_gemm: invalid weight shape [{}, {}]", w.rows, w.cols);
  QUAROT_CHECK(w.data != nullptr, "weight_only_gemm: weight has no data");
  if (w.kind == WeightKind::kIntGrid) {
    QUAROT_CHECK(w.bits >= 2 && w.bits <= 8, "weight_only_gemm: {} bits is out of range (2..8)", w.bits);
    QUAROT_CHECK(w.scales != nullptr && (w.symmetric || w.zeros != nullptr),
                 "weight_only_gemm: integer weight lacks scales or zero points");
    QUAROT_CHECK(w.group >= 0 && (w.group == 0 || w.cols % w.group == 0),
                 "weight_only_gemm: group {} does not divide {} columns", w.group, w.cols);
  }
  QUAROT_CHECK(n >= 0, "weight_only_gemm: negative row count {}", n);
  QUAROT_CHECK(isa_supported(isa), "weight_only_gemm: instruction set {} is not supported by this CPU",
               isa_name(isa));
  if (n == 0) return;
  QUAROT_CHECK(x != nullptr && y != nullptr, "weight_only_gemm: null activation or output");
  const WeightOnlyKernels& k = isa == Isa::kScalar ? weight_only_detail::weight_only_kernels_scalar()
                                                   : weight_only_detail::weight_only_kernels_avx2();
  if (n <= kWeightOnlyGemvMaxRows) {
    const bool avx512 = isa == Isa::kAvx512 || isa == Isa::kAvx512Vnni || isa == Isa::kAmx;
    return gemv(w, avx512 ? weight_only_detail::weight_only_kernels_avx512() : k, x, n, bias, y);
  }
  if (isa == Isa::kScalar) return scalar_gemm(w, k, x, n, bias, y);
  panel_gemm(w, k, x, n, bias, y);
}

}  // namespace quarot
