#pragma once
// Per-row symmetric quantize -> dequantize on the GPU, the same formula as
// kernels/cpu/fake_quant.h (the contract every backend reproduces).
#include <cstdint>

namespace quarot::cuda {

// x: [rows, cols] row-major on the device, modified in place. Returns a CUDA error code.
int fake_quant_rows_sym(float* x, int64_t rows, int64_t cols, int bits, float clip_ratio);

}  // namespace quarot::cuda
