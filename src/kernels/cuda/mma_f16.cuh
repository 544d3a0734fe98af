#pragma once
// The warp-level FP16 tensor-core product shared by the kernels that use it
// (flash_attention.cu, hadamard_quant_tc.cu); device code only, sm_80 and later.
//   mma_f16(c, a, b0, b1)  c += a * b over one m16n8k16 tile: a the 16 x 16 FP16 A
//                          fragment (row major), b the 16 x 8 B fragment, c FP32.
//   pack_half2(lo, hi)     two floats rounded to FP16 in one register, lo in the low half.
#include <cuda_fp16.h>

#include <cstdint>

namespace quarot::cuda {

__device__ __forceinline__ void mma_f16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

}  // namespace quarot::cuda
