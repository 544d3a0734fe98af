#pragma once
// Internal: the per-instruction-set kernels that turn a quantized KV store's codes
// back into FP32 (kv_store_q.h). Each ISA kernel lives in a file compiled with that
// ISA's flags (kv_dequant_avx2.cpp, ...); this header carries no inline code so no
// AVX instruction can leak into a portable path (ODR).
#include <cstdint>

#include "kernels/cpu/cpu_features.h"

namespace quarot::kv_detail {

// out[r, d] = scale[r, d / group] * (code[r, d] - zero[r, d / group]) for r < rows.
// codes: rows of code_bytes (= packed ? (head_dim + 1) / 2 : head_dim) bytes, back to
// back; params: rows of head_dim / group {scale, zero} pairs, back to back;
// out: rows of head_dim floats. Every path computes (float(code) - zero) * scale,
// the exact operations of fake_quant, so all paths agree bit for bit.
using DequantRowsFn = void (*)(const uint8_t* codes, const float* params, int64_t rows, int64_t head_dim,
                               int64_t group, bool packed, float* out);

void dequant_rows_scalar(const uint8_t* codes, const float* params, int64_t rows, int64_t head_dim, int64_t group,
                         bool packed, float* out);
// Need group % 8 == 0 (so head_dim % 8 == 0).
void dequant_rows_avx2(const uint8_t* codes, const float* params, int64_t rows, int64_t head_dim, int64_t group,
                       bool packed, float* out);

// The fastest kernel `isa` allows for this group size.
DequantRowsFn dequant_rows_for(Isa isa, int64_t group);

}  // namespace quarot::kv_detail
