#pragma once
// Real (integer-producing) counterparts of fake_quant.h for integer kernels: the
// same scales and rounding, so  scale * q == fake_quant_sym(x)  and
// scale * (q - zero) == fake_quant_asym(x)  bit for bit. Integers cannot carry a
// NaN or infinity, so a non-finite group throws quarot::Error instead.
#include <cstdint>

namespace quarot {

// q[i] in [-2^(b-1), 2^(b-1) - 1]; returns the scale (0 for an all-zero group, q = 0).
float quantize_sym(const float* x, int64_t n, int bits, float clip_ratio, int8_t* q);

struct AsymQuantParams {
  float scale = 0.0f;  // 0 for an all-zero group (q = zero = 0)
  int32_t zero = 0;
};
// q[i] in [0, 2^b - 1] (b <= 8).
AsymQuantParams quantize_asym(const float* x, int64_t n, int bits, float clip_ratio, uint8_t* q);

}  // namespace quarot
