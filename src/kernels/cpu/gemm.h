#pragma once
// FP32 matrix product of activations with a linear layer's weight:
//   y[n, out] = x[n, in] * W^T + bias,  W row-major [out, in] (PyTorch order).
// The weight is packed once (pack_gemm_weight) into the layout of one instruction
// set's kernel; gemm() then dispatches to that kernel. Both shapes that matter for
// an LLM are fast: decode (n = 1, a GEMV that streams W once from memory) and
// prefill (n in the hundreds, compute-bound, register-blocked and cache-blocked).
// Results do not depend on the number of threads: every output element is summed
// in the same order whichever thread computes it.
#include <cstdint>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/cpu_features.h"

namespace quarot {

// A packed weight. Layouts (docs/kernels.md):
//   scalar: W as given, row-major [out, in] (panel_width == 0).
//   avx2 / avx512: W^T cut into panels of panel_width (16 / 32) output columns;
//     panel p holds, for k = 0..in-1, the panel_width values W[p*pw + j][k]
//     contiguously, zero-padded past out. A kernel step loads one 64/128-byte row.
struct GemmWeight {
  Isa isa = Isa::kScalar;
  int64_t out_features = 0;
  int64_t in_features = 0;
  int64_t panel_width = 0;
  AlignedFloats data;
  int64_t num_panels() const { return panel_width == 0 ? 0 : (out_features + panel_width - 1) / panel_width; }
};

// Packs w [out, in] for `isa`; throws quarot::Error if isa is not supported here
// or the sizes are not positive. `placement`: the weight arena for weights kept for
// the model's life (aligned_buffer.h); kHeap for a pack that lives for one call (the
// attention's K and V, GPTQ's inputs): the arena never reuses a released piece, so
// short-lived packs mixed into its slabs with long-lived ones keep those slabs mapped
// (W8A8's FP32-cache prefill of 512 tokens grew the process by ~100 MB that way).
GemmWeight pack_gemm_weight(const float* w, int64_t out_features, int64_t in_features, Isa isa,
                            Placement placement = Placement::kWeights);

// y[n, out] = x[n, in] * W^T (+ bias[out] when bias != null). Rows of x and y are
// contiguous (strides in / out). Threads with OpenMP over output tiles.
void gemm(const GemmWeight& w, const float* x, int64_t n, const float* bias, float* y);

}  // namespace quarot
