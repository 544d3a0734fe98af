#pragma once
// Simulated (quantize -> dequantize) arithmetic shared by calibration (quant/)
// and the runtime (backends). These formulas ARE the contract integer kernels
// reproduce; see docs/quarot.md for the derivation.
//   symmetric, b bits:  qmax = 2^(b-1) - 1, s = clip * max|x| / qmax,
//                       q = clamp(round(x / s), -qmax - 1, qmax), x' = s * q
//   asymmetric, b bits: qmax = 2^b - 1, lo = clip * min(min x, 0), hi = clip * max(max x, 0),
//                       s = (hi - lo) / qmax, z = round(-lo / s),
//                       q = clamp(round(x / s) + z, 0, qmax), x' = s * (q - z)
// round() is round-half-to-even (std::nearbyint), as torch.round. A zero group stays zero.
#include <cstdint>

namespace quarot {

void fake_quant_sym(float* x, int64_t n, int bits, float clip_ratio);
void fake_quant_asym(float* x, int64_t n, int bits, float clip_ratio);
// Row-wise over a [rows, cols] matrix, in groups of `group` columns (0 = whole row).
void fake_quant_rows(float* x, int64_t rows, int64_t cols, int bits, float clip_ratio, int64_t group,
                     bool symmetric);

}  // namespace quarot
