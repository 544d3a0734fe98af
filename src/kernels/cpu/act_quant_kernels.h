#pragma once
// Internal: per-instruction-set kernels behind quantize_activations(), reached
// through function pointers so no AVX code leaks into portable paths (see
// gemm_kernels.h). Each quantizes one group of n finite floats exactly as
// fake_quant.h's formulas (same operations, same order).
#include <cstdint>

namespace quarot::act_quant_detail {

struct GroupQuant {
  float scale = 0.0f;
  int32_t offset = 0;
  int32_t code_sum = 0;
};

struct ActQuantKernels {
  // False when the group holds a NaN or an infinity (nothing written then).
  bool (*all_finite)(const float* x, int64_t n);
  // Writes n codes; bits 2..8.
  GroupQuant (*quantize_sym)(const float* x, int64_t n, int bits, float clip_ratio, uint8_t* codes);
  GroupQuant (*quantize_asym)(const float* x, int64_t n, int bits, float clip_ratio, uint8_t* codes);
};

const ActQuantKernels& act_quant_kernels_scalar();
const ActQuantKernels& act_quant_kernels_avx2();

}  // namespace quarot::act_quant_detail
