#pragma once
// Internal: the contiguous Walsh-Hadamard transform behind fwht.h, per instruction set.
// The AVX2 and AVX-512 kernels do the scalar one's float operations in the same order
// (stages h = 1, 2, 4, ... each a single IEEE add or subtract per element, a + b and
// a - b), so all are bit-identical and fwht.h picks one by what the CPU has, not by
// QUAROT_ISA. They live in fwht_avx2.cpp / fwht_avx512.cpp (compiled with their ISA's
// flags, reached only through these declarations: no inline code here, see
// gemm_kernels.h on the ODR).
#include <cstdint>

namespace quarot::fwht_detail {

// dst <- H_p src (unnormalized), p a power of two; src == dst transforms in place (any
// other overlap is not allowed). Out of place, the first stage reads src, so a caller
// needs no copy of its input.
void fwht_contiguous_scalar(const float* src, float* dst, int64_t p);
// The same for p >= 8; needs AVX2.
void fwht_contiguous_avx2(const float* src, float* dst, int64_t p);
// The same for p >= 16; needs the AVX-512 F/BW/VL/DQ path (fwht_avx512.cpp).
void fwht_contiguous_avx512(const float* src, float* dst, int64_t p);

}  // namespace quarot::fwht_detail
