#include "kernels/cuda/cuda_act_quant.cuh"
#include "kernels/cuda/cuda_rotate.cuh"

namespace quarot::cuda {
namespace {

// std::clamp's comparisons (a NaN passes through), unlike fminf / fmaxf.
__device__ __forceinline__ float clamp_f(float v, float lo, float hi) { return v < lo ? lo : (hi < v ? hi : v); }

// Stages row `blockIdx.x` of x in shared memory and rotates it; returns the row.
__device__ inline float* load_rotated(const RotationArgs& r, const float* x, int cols, float* smem) {
  const int64_t base = static_cast<int64_t>(blockIdx.x) * cols;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) smem[i] = x[base + i];
  __syncthreads();
  if (r.active()) block_rotate(r, smem, smem + cols);
  return smem;
}

__global__ void quantize_int_kernel(RotationArgs r, const float* x, int cols, int padded_cols, int bits,
                                    int storage_bits, bool even_odd, float clip_ratio, uint8_t* q, float* scales,
                                    int* error_flag) {
  extern __shared__ float smem[];
  __shared__ float scratch[32];
  const float* y = load_rotated(r, x, cols, smem);
  float amax = 0.0f;
  int bad = 0;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) {
    if (!isfinite(y[i])) bad = 1;
    amax = fmaxf(amax, fabsf(y[i]));
  }
  amax = block_reduce(amax, MaxNanOp{}, scratch);
  const bool finite = __syncthreads_or(bad) == 0;
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  const float qmin = -qmax - 1.0f;
  const float s = __fdiv_rn(__fmul_rn(clip_ratio, amax), qmax);
  const bool zero = !finite || amax == 0.0f || s == 0.0f;
  if (threadIdx.x == 0) {
    scales[blockIdx.x] = finite ? (zero ? 0.0f : s) : __int_as_float(0x7fc00000);
    if (!finite) *error_flag = 1;
  }
  auto code = [&](int i) -> int {
    if (zero || i >= cols) return 0;
    return static_cast<int>(clamp_f(rintf(__fdiv_rn(y[i], s)), qmin, qmax));
  };
  if (storage_bits == 4) {
    uint8_t* dst = q + static_cast<int64_t>(blockIdx.x) * (padded_cols / 2);
    for (int b = threadIdx.x; b < padded_cols / 2; b += blockDim.x)
      dst[b] = static_cast<uint8_t>((code(2 * b) & 0xF) | ((code(2 * b + 1) & 0xF) << 4));
  } else {
    int8_t* dst = reinterpret_cast<int8_t*>(q) + static_cast<int64_t>(blockIdx.x) * padded_cols;
    if (even_odd) {  // each 32 codes as their 16 even then their 16 odd ones
      for (int i = threadIdx.x; i < padded_cols; i += blockDim.x)
        dst[(i & ~31) + ((i & 31) >> 1) + (i & 1) * 16] = static_cast<int8_t>(code(i));
    } else {
      for (int i = threadIdx.x; i < padded_cols; i += blockDim.x) dst[i] = static_cast<int8_t>(code(i));
    }
  }
}

// fake_quant.cpp's sym_group / asym_group on each group of the rotated row.
__global__ void fake_quant_f16_kernel(RotationArgs r, const float* x, int cols, int bits, float clip_ratio,
                                      int group, bool symmetric, __half* out) {
  extern __shared__ float smem[];
  __shared__ float scratch[32];
  float* y = load_rotated(r, x, cols, smem);
  if (bits > 0) {
    for (int g0 = 0; g0 < cols; g0 += group) {
      float* v = y + g0;
      if (symmetric) {
        float amax = 0.0f;
        for (int i = threadIdx.x; i < group; i += blockDim.x) amax = max_nan(amax, fabsf(v[i]));
        amax = block_reduce(amax, MaxNanOp{}, scratch);
        if (amax == 0.0f) continue;
        const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
        const float qmin = -qmax - 1.0f;
        const float s = __fdiv_rn(__fmul_rn(clip_ratio, amax), qmax);
        if (s == 0.0f) continue;
        for (int i = threadIdx.x; i < group; i += blockDim.x)
          v[i] = __fmul_rn(s, clamp_f(rintf(__fdiv_rn(v[i], s)), qmin, qmax));
      } else {
        float lo = 0.0f, hi = 0.0f;
        for (int i = threadIdx.x; i < group; i += blockDim.x) {
          lo = min_nan(lo, v[i]);
          hi = max_nan(hi, v[i]);
        }
        lo = block_reduce(lo, MinNanOp{}, scratch);
        hi = block_reduce(hi, MaxNanOp{}, scratch);
        lo = __fmul_rn(lo, clip_ratio);
        hi = __fmul_rn(hi, clip_ratio);
        const float qmax = static_cast<float>((1 << bits) - 1);
        const float s = __fdiv_rn(__fsub_rn(hi, lo), qmax);
        if (s == 0.0f) continue;
        const float z = rintf(__fdiv_rn(-lo, s));
        for (int i = threadIdx.x; i < group; i += blockDim.x) {
          const float qv = clamp_f(__fadd_rn(rintf(__fdiv_rn(v[i], s)), z), 0.0f, qmax);
          v[i] = __fmul_rn(s, __fsub_rn(qv, z));
        }
      }
      __syncthreads();  // every thread of the block sees the group before the next reduction
    }
  }
  const int64_t base = static_cast<int64_t>(blockIdx.x) * cols;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) out[base + i] = __float2half_rn(y[i]);
}

bool shape_ok(const RotationArgs& r, int64_t rows, int64_t cols) {
  return rows >= 0 && rows < (int64_t{1} << 31) && cols > 0 && cols < (int64_t{1} << 30) &&
         (!r.active() || r.size() == cols);
}

}  // namespace

cudaError_t quantize_rows_int(const RotationArgs& r, const float* x, int64_t rows, int64_t cols,
                              int64_t padded_cols, int bits, int storage_bits, IntGemmActLayout layout,
                              float clip_ratio, uint8_t* q, float* scales, int* error_flag, cudaStream_t stream) {
  const bool even_odd = layout == IntGemmActLayout::Int8EvenOdd;
  if (!shape_ok(r, rows, cols) || padded_cols < cols || padded_cols % 128 != 0 || bits < 2 || bits > 8 ||
      (storage_bits != 4 && storage_bits != 8) || (storage_bits == 4 && bits > 4) || (even_odd && storage_bits != 8))
    return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  const size_t smem = row_smem_bytes(cols, r.m != nullptr);
  const cudaError_t e = allow_smem(reinterpret_cast<const void*>(&quantize_int_kernel), smem);
  if (e != cudaSuccess) return e;
  quantize_int_kernel<<<static_cast<unsigned>(rows), row_threads(cols), smem, stream>>>(
      r, x, static_cast<int>(cols), static_cast<int>(padded_cols), bits, storage_bits, even_odd, clip_ratio, q, scales,
      error_flag);
  return cudaGetLastError();
}

cudaError_t fake_quant_rows_f16(const RotationArgs& r, const float* x, int64_t rows, int64_t cols, int bits,
                                float clip_ratio, int64_t group, bool symmetric, __half* out, cudaStream_t stream) {
  const int64_t g = group == 0 ? cols : group;
  if (!shape_ok(r, rows, cols) || g <= 0 || cols % g != 0 || bits < 0 || bits > 16 ||
      (bits > 0 && bits < (symmetric ? 2 : 1)))
    return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  const size_t smem = row_smem_bytes(cols, r.m != nullptr);
  const cudaError_t e = allow_smem(reinterpret_cast<const void*>(&fake_quant_f16_kernel), smem);
  if (e != cudaSuccess) return e;
  fake_quant_f16_kernel<<<static_cast<unsigned>(rows), row_threads(cols), smem, stream>>>(
      r, x, static_cast<int>(cols), bits, clip_ratio, static_cast<int>(g), symmetric, out);
  return cudaGetLastError();
}

}  // namespace quarot::cuda
