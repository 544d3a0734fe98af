#include "kernels/cpu/gemm.h"

#include <algorithm>
#include <cstring>

#include "common/error.h"
#include "kernels/cpu/gemm_kernels.h"

namespace quarot {
namespace {

using gemm_detail::GemmKernels;

// Cache blocking. A kc-deep slice of one panel (kc * NR floats: 16 KiB for AVX2,
// 32 KiB for AVX-512) stays in L1 while every register tile of a row block reuses
// it; the row block's activations (kRowBlock * kc floats, 144 KiB) stay in L2.
constexpr int64_t kDepthBlock = 256;
constexpr int64_t kRowBlock = 144;            // at most; multiple of 6 and of 8
constexpr int64_t kPanelsPerColumnBlock = 4;  // a thread's unit of work: 64/128 output columns
constexpr int kMaxTileFloats = 8 * 32;

// FP32 has no VNNI/AMX kernels: those paths imply AVX-512 and use its kernels.
const GemmKernels& kernels_for(Isa isa) {
  return isa >= Isa::kAvx512 ? gemm_detail::gemm_kernels_avx512() : gemm_detail::gemm_kernels_avx2();
}

// One panel of a GEMV; a panel that runs past out_features computes into a padded
// scratch row so the kernel never writes out of bounds.
void gemv(const GemmWeight& w, const GemmKernels& k, const float* x, const float* bias, float* y) {
  const int64_t nr = w.panel_width;
  const int64_t panels = w.num_panels();
  const int64_t in = w.in_features;
  const int64_t out = w.out_features;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < panels; ++p) {
    const float* panel = w.data.data() + p * in * nr;
    const int64_t col0 = p * nr;
    const int64_t valid = std::min(nr, out - col0);
    if (valid == nr) {
      k.gemv_panel(x, panel, in, bias != nullptr ? bias + col0 : nullptr, y + col0);
    } else {
      float padded_y[32];
      float padded_bias[32] = {};
      if (bias != nullptr) std::memcpy(padded_bias, bias + col0, valid * sizeof(float));
      k.gemv_panel(x, panel, in, bias != nullptr ? padded_bias : nullptr, padded_y);
      std::memcpy(y + col0, padded_y, valid * sizeof(float));
    }
  }
}

void blocked_gemm(const GemmWeight& w, const GemmKernels& k, const float* x, int64_t n, const float* bias, float* y) {
  const int64_t nr = w.panel_width;
  const int64_t mr = k.rows_per_tile;
  const int64_t in = w.in_features;
  const int64_t out = w.out_features;
  const int64_t panels = w.num_panels();
  // Equal-sized row blocks (rounded to whole register tiles) rather than full
  // blocks plus a short remainder, so threads get balanced work: n = 512 gives
  // 4 x 128 (AVX-512) or 3 x 132 + 116 (AVX2) instead of 3 x 144 + 80.
  const int64_t row_blocks = (n + kRowBlock - 1) / kRowBlock;
  const int64_t balanced_rows = (n + row_blocks - 1) / row_blocks;
  const int64_t row_block = std::min(kRowBlock, (balanced_rows + mr - 1) / mr * mr);
  const int64_t column_blocks = (panels + kPanelsPerColumnBlock - 1) / kPanelsPerColumnBlock;

#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t rb = 0; rb < row_blocks; ++rb) {
    for (int64_t cb = 0; cb < column_blocks; ++cb) {
      const int64_t row_begin = rb * row_block;
      const int64_t row_end = std::min(n, row_begin + row_block);
      const int64_t panel_begin = cb * kPanelsPerColumnBlock;
      const int64_t panel_end = std::min(panels, panel_begin + kPanelsPerColumnBlock);
      for (int64_t k0 = 0; k0 < in; k0 += kDepthBlock) {
        const int64_t kc = std::min(kDepthBlock, in - k0);
        const bool first = k0 == 0;
        const bool last = k0 + kc == in;
        for (int64_t p = panel_begin; p < panel_end; ++p) {
          const float* b = w.data.data() + p * in * nr + k0 * nr;
          const int64_t col0 = p * nr;
          const int64_t valid = std::min(nr, out - col0);
          const float* panel_bias = (last && bias != nullptr) ? bias + col0 : nullptr;
          float padded_bias[32] = {};
          if (valid < nr && panel_bias != nullptr) {
            std::memcpy(padded_bias, panel_bias, valid * sizeof(float));
            panel_bias = padded_bias;
          }
          for (int64_t i0 = row_begin; i0 < row_end; i0 += mr) {
            const int64_t m = std::min(mr, row_end - i0);
            const float* a = x + i0 * in + k0;
            float* c = y + i0 * out + col0;
            if (valid == nr) {
              k.tile(m, a, in, b, kc, c, out, !first, panel_bias);
              continue;
            }
            // Ragged last panel: run the full-width kernel on a padded copy.
            float padded_c[kMaxTileFloats];
            if (!first) {
              for (int64_t i = 0; i < m; ++i) std::memcpy(padded_c + i * nr, c + i * out, valid * sizeof(float));
            }
            k.tile(m, a, in, b, kc, padded_c, nr, !first, panel_bias);
            for (int64_t i = 0; i < m; ++i) std::memcpy(c + i * out, padded_c + i * nr, valid * sizeof(float));
          }
        }
      }
    }
  }
}

}  // namespace

GemmWeight pack_gemm_weight(const float* w, int64_t out_features, int64_t in_features, Isa isa,
                            Placement placement) {
  QUAROT_CHECK(out_features > 0 && in_features > 0, "pack_gemm_weight: invalid weight shape [{}, {}]", out_features,
               in_features);
  QUAROT_CHECK(isa_supported(isa), "pack_gemm_weight: instruction set {} is not supported by this CPU",
               isa_name(isa));
  GemmWeight packed;
  packed.isa = isa;
  packed.out_features = out_features;
  packed.in_features = in_features;
  if (isa == Isa::kScalar) {
    packed.data = AlignedFloats(out_features * in_features, placement);
    std::memcpy(packed.data.data(), w, out_features * in_features * sizeof(float));
    return packed;
  }
  const int64_t nr = kernels_for(isa).panel_width;
  packed.panel_width = nr;
  const int64_t panels = packed.num_panels();
  packed.data = AlignedFloats(panels * in_features * nr, placement);
  float* dst = packed.data.data();
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < panels; ++p) {
    float* panel = dst + p * in_features * nr;
    for (int64_t j = 0; j < nr; ++j) {
      const int64_t o = p * nr + j;
      if (o < out_features) {
        const float* src = w + o * in_features;
        for (int64_t k = 0; k < in_features; ++k) panel[k * nr + j] = src[k];
      } else {
        for (int64_t k = 0; k < in_features; ++k) panel[k * nr + j] = 0.0f;
      }
    }
  }
  return packed;
}

void gemm(const GemmWeight& w, const float* x, int64_t n, const float* bias, float* y) {
  QUAROT_CHECK(n >= 0, "gemm: negative row count {}", n);
  QUAROT_CHECK(w.data.size() > 0, "gemm: weight was not packed");
  if (n == 0) return;
  if (w.isa == Isa::kScalar) {
    gemm_detail::gemm_scalar(w.data.data(), w.out_features, w.in_features, x, n, bias, y);
    return;
  }
  const GemmKernels& k = kernels_for(w.isa);
  if (n == 1) {
    gemv(w, k, x, bias, y);
  } else {
    blocked_gemm(w, k, x, n, bias, y);
  }
}

}  // namespace quarot
