#pragma once
// Device helpers shared by the CUDA backend's row kernels (one thread block per
// activation row, the row staged in shared memory): block reductions and the
// online rotation of backend.h, computed with the float operations of
// kernels/cpu/fwht.h's apply_online_rotation in the same order, so a rotated row
// is bit-identical to the CPU's:
//   1. p > 1: Hadamard butterflies along the p axis, stages h = 1, 2, 4, ... of
//      (u, v) -> (u + v, u - v), then every value times hadamard_scale
//      (the float of 1 / sqrt(double(p))), one rounding each;
//   2. M present: y[a, c] = ((0 + M[a,0] x[0, c]) + M[a,1] x[1, c]) + ..., each
//      product and sum rounded separately (the CPU compiles that file without FMA
//      contraction).
// Explicit __fadd_rn / __fmul_rn keep nvcc from contracting into FMAs.
#include <cuda_runtime.h>

#include <cstdint>

namespace quarot::cuda {

// A rotation as the kernels read it; m is a device copy of OnlineRotation::m
// (k * k, row-major) or null (k == 1).
struct RotationArgs {
  int k = 1;
  int p = 1;
  int inner = 1;
  float hadamard_scale = 1.0f;
  const float* m = nullptr;
  __host__ __device__ bool active() const { return p > 1 || m != nullptr; }
  __host__ __device__ int size() const { return k * p * inner; }
};

#ifdef __CUDACC__  // the device helpers; host code includes this header for RotationArgs

// Rotates the row x[0, r.size()) in shared memory in place; tmp (r.size() floats of
// shared memory) is scratch for the M mix. Every thread of the block must call it.
__device__ inline void block_rotate(const RotationArgs& r, float* x, float* tmp) {
  const int n = r.size();
  const int block = r.p * r.inner;
  if (r.p > 1) {
    const int half = r.p / 2;
    const int pairs = r.k * half * r.inner;
    for (int h = 1; h < r.p; h *= 2) {
      for (int t = threadIdx.x; t < pairs; t += blockDim.x) {
        const int c = t % r.inner;
        const int rest = t / r.inner;
        const int jh = rest % half;
        const int a = rest / half;
        const int j = (jh / h) * 2 * h + jh % h;
        float* u = x + a * block + j * r.inner + c;
        float* v = u + h * r.inner;
        const float s = *u, d = *v;
        *u = __fadd_rn(s, d);
        *v = __fsub_rn(s, d);
      }
      __syncthreads();
    }
    for (int i = threadIdx.x; i < n; i += blockDim.x) x[i] = __fmul_rn(x[i], r.hadamard_scale);
    __syncthreads();
  }
  if (r.m != nullptr) {
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      const int a = i / block, c = i % block;
      float acc = 0.0f;
      for (int a2 = 0; a2 < r.k; ++a2) acc = __fadd_rn(acc, __fmul_rn(r.m[a * r.k + a2], x[a2 * block + c]));
      tmp[i] = acc;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += blockDim.x) x[i] = tmp[i];
    __syncthreads();
  }
}

// NaN-propagating max / min (kernels/cpu/fake_quant.cpp's max_nan / min_nan): a NaN
// on either side wins, so a reduction over a group holding a NaN gives NaN.
__device__ __forceinline__ float max_nan(float a, float b) { return (isnan(a) || a > b) ? a : b; }
__device__ __forceinline__ float min_nan(float a, float b) { return (isnan(a) || a < b) ? a : b; }

struct MaxNanOp {
  __device__ float operator()(float a, float b) const { return max_nan(a, b); }
};
struct MinNanOp {
  __device__ float operator()(float a, float b) const { return min_nan(a, b); }
};
struct SumOp {
  __device__ float operator()(float a, float b) const { return __fadd_rn(a, b); }
};

// Reduces v over the block (blockDim.x a multiple of 32, at most 1024); every
// thread gets the result. `scratch` holds 32 floats of shared memory; the call
// synchronizes the block (so scratch may be reused right after).
template <typename Op>
__device__ inline float block_reduce(float v, Op op, float* scratch) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = scratch[0];
  for (int w = 1; w < warps; ++w) v = op(v, scratch[w]);
  __syncthreads();
  return v;
}

#endif  // __CUDACC__

}  // namespace quarot::cuda
