#pragma once
// Internal: the decode (M = 1..8 activation rows) kernels behind int_gemm(), one per
// instruction set, each in a file compiled with that ISA's flags and reached only
// through these tables (see gemm_kernels.h for why). They read the packed weight
// of int_gemm.h (16-column panels, 64-byte nibble or int8 quads) exactly as stored,
// panel after panel, so a range of panels is one linear stream of bytes: decode is
// bound by memory, and the GEMM's layout serves both (no second copy).
//
// Contract: for every row i < m, panel p < panels, column c < 16 and block b the
// kernel forms the exact corrected dot product
//   d = sum_{k in b} a[i, k] * s[p, c, k] + zero_term * a_sum[i, b] - a_offset[i, b] * w_sum[p, b, c]
// (s = stored weight value, int32 wrapping arithmetic that yields the exact d, which
// int_gemm has checked fits) and, unless `dots` is set, the epilogue of int_gemm.h:
//   f = 0;  for b in order: f = fma(a_scale[i, b] * w_scale[p, b, c], float(d), f);
//   out[i * ldo + p * 16 + c] = f.
// With `dots` set (tests), d is stored to dots[((i * panels + p) * blocks + b) * 16 + c]
// instead and `out` is not written. The scalar kernel is the reference every ISA
// kernel must match bit for bit.
#include <cstdint>

#include "kernels/cpu/int_gemm_kernels.h"
#include "kernels/cpu/stream_prefetch.h"

namespace quarot::int_gemv_detail {

using int_gemm_detail::ProductMode;
using int_gemm_detail::WeightFormat;

struct IntGemvArgs {
  const uint8_t* a = nullptr;  // activation codes of row 0 (zero past cols, as act_quant.h pads)
  int64_t lda = 0;             // bytes between activation rows
  int64_t m = 0;               // rows, 1..8
  const uint8_t* w = nullptr;  // the first panel of the range
  int64_t panel_bytes = 0;     // bytes between consecutive panels
  int64_t panels = 0;          // panels in the range (>= 1)
  WeightFormat format = WeightFormat::kNibbles;
  ProductMode mode = ProductMode::kDeep;
  int64_t deep_steps = 1;  // kDeep: 8-position steps whose int16 sums may be added before widening
  int64_t blocks = 0;      // K blocks
  int64_t kb = 0;          // activation positions per block
  int64_t kbw = 0;         // weight positions per block (a multiple of 8)
  // Activation block terms of row i, block b at [i * blocks + b].
  const float* a_scale = nullptr;
  const int32_t* a_offset = nullptr;
  const int32_t* a_sum = nullptr;
  // Weight block terms of panel p (of the range), block b, column c at [(p * blocks + b) * 16 + c].
  const float* w_scale = nullptr;
  const int32_t* w_zero_term = nullptr;  // c - zero
  const int32_t* w_sum = nullptr;        // sum of (code - zero)
  float* out = nullptr;  // [m, ldo], columns p * 16 + c
  int64_t ldo = 0;
  int32_t* dots = nullptr;  // tests: the corrected d instead of the epilogue (layout above)
  StreamPrefetch prefetch;  // software prefetch into the weight stream (cpu_features.h); none by default
};

struct IntGemvKernels {
  const char* name;
  void (*run)(const IntGemvArgs& args);
};

const IntGemvKernels& int_gemv_kernels_scalar();
const IntGemvKernels& int_gemv_kernels_avx2();
const IntGemvKernels& int_gemv_kernels_avx512vnni();

}  // namespace quarot::int_gemv_detail
