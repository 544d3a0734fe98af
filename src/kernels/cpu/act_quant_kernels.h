#pragma once
// Internal: per-instruction-set kernels behind quantize_activations(), reached
// through function pointers so no AVX code leaks into portable paths (see
// gemm_kernels.h). They do only what is exact in any order or width (reductions by
// max/min, division, rounding, clamping); the scale and zero point are computed in
// act_quant.cpp with the same expressions and compile flags as fake_quant.cpp,
// because compilers contract a * b - c * d into an FMA differently per target.
#include <cstdint>

#include "kernels/cpu/cpu_features.h"

namespace quarot::act_quant_detail {

struct ActQuantKernels {
  // False when x holds a NaN or an infinity.
  bool (*all_finite)(const float* x, int64_t n);
  // max(0, max |x|) over n finite values.
  float (*abs_max)(const float* x, int64_t n);
  // Both of the above in one pass: false when x holds a NaN or an infinity, else true
  // with *amax = max(0, max |x|).
  bool (*finite_abs_max)(const float* x, int64_t n, float* amax);
  // *lo = min(0, min x), *hi = max(0, max x) over n finite values.
  void (*min_max)(const float* x, int64_t n, float* lo, float* hi);
  // codes[i] = clamp(round_half_even(x[i] / s) + add, lo, hi) + offset; returns the
  // sum of the codes. Codes must land in [0, 255].
  int32_t (*encode)(const float* x, int64_t n, float s, float add, float lo, float hi, int32_t offset,
                    uint8_t* codes);
  // out[a * block + c] = sum over a2 of m[a * k + a2] * (x[a2 * block + c] * pre_scale)
  // for a < k, c < block: the k x k mixing of an online rotation, in act_quant_mix.h's
  // exact order (pre_scale 1 is exact: no scaling). `signs`, when not null, says that
  // m[i] == signs[i] * magnitude for every i (signs +-1; mix_signs() finds them).
  void (*mix)(const float* m, const float* signs, float magnitude, int64_t k, const float* x, int64_t block,
              float pre_scale, float* out);
  // The same for k = 12 and m == kPaley12 * magnitude (act_quant_mix.h), the signs known
  // at compile time; null on the reference path (which takes `mix`).
  void (*mix_paley12)(float magnitude, const float* x, int64_t block, float pre_scale, float* out);
};

const ActQuantKernels& act_quant_kernels_scalar();
const ActQuantKernels& act_quant_kernels_avx2();
// Needs the AVX-512 F/BW/VL/DQ path (cpu_features.h).
const ActQuantKernels& act_quant_kernels_avx512();
// The table for a path: scalar, AVX2, or AVX-512 (the AVX-512 paths and AMX's hosts).
const ActQuantKernels& act_quant_kernels_for(Isa isa);

}  // namespace quarot::act_quant_detail
