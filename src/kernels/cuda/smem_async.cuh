#pragma once
// PTX wrappers for staging tiles in shared memory, shared by the tensor-core kernels
// (int_gemm.cu, flash_attention.cu); device code only, sm_80 and later.
//   smem_addr(p)            the 32-bit shared-state-space address of a generic
//                           pointer into shared memory (what cp.async / ldmatrix take).
//   cp_async16(dst, src, v) an asynchronous 16-byte global -> shared copy; with
//                           v == false it reads nothing and writes 16 zero bytes
//                           (the src-size operand 0), so out-of-range rows stage as 0.
//   cp_async_commit()       closes the group of copies issued since the last commit;
//   cp_async_wait<N>()      waits until at most N committed groups are in flight.
//   ldmatrix_x4[_trans]     four 8x8 b16 matrices from shared memory into the mma
//                           fragment registers (transposed for _trans).
#include <cuda_runtime.h>

#include <cstdint>

namespace quarot::cuda {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

}  // namespace quarot::cuda
