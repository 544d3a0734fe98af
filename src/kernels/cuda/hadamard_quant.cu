#include "kernels/cuda/hadamard_quant.cuh"

#include <cmath>

namespace quarot::cuda {
namespace {

constexpr int kMaxThreads = 512;
constexpr int kLaneStages = 256;  // butterflies with h < 256 stay inside a warp (8 values x 32 lanes)

// One block per row. Thread t holds the 8-value chunks c = t + j * blockDim.x
// (j < J), so a value's index is [j | warp | lane | e] in bits, low to high; the
// butterfly stages run in increasing h as in the CPU reference: h = 1, 2, 4 inside
// a thread's registers, h = 8 .. 128 across lanes (shuffles), h >= 256 in shared
// memory. blockDim.x is a multiple of 32, so a chunk's low five bits are its lane.
template <typename T>
__device__ __forceinline__ void load8(const T* src, float (&v)[8]);

template <>
__device__ __forceinline__ void load8<__half>(const __half* src, float (&v)[8]) {
  const uint4 raw = __ldg(reinterpret_cast<const uint4*>(src));
  const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __half22float2(h[i]);
    v[2 * i] = f.x;
    v[2 * i + 1] = f.y;
  }
}

template <>
__device__ __forceinline__ void load8<float>(const float* src, float (&v)[8]) {
  const float4 a = __ldg(reinterpret_cast<const float4*>(src));
  const float4 b = __ldg(reinterpret_cast<const float4*>(src) + 1);
  v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
}

template <typename T, int J, int BITS>
__global__ void __launch_bounds__(kMaxThreads) hadamard_quant_kernel(const T* __restrict__ x, int cols, int p,
                                                                    float inv_sqrt_p, float clip_ratio,
                                                                    uint8_t* __restrict__ q,
                                                                    float* __restrict__ scales,
                                                                    __half* __restrict__ scales_h) {
  extern __shared__ float row_smem[];  // cols floats, only when p > kLaneStages
  __shared__ float warp_max[kMaxThreads / 32];
  __shared__ int warp_bad[kMaxThreads / 32];
  const int chunks = cols / 8;
  const int lane = threadIdx.x & 31;
  const int64_t row = blockIdx.x;
  const T* xr = x + row * cols;

  float v[J][8];
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int c = threadIdx.x + j * blockDim.x;
    if (c < chunks) {
      load8(xr + c * 8, v[j]);
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) v[j][e] = 0.0f;
    }
  }

  if (p > 1) {
    // h = 1, 2, 4: inside the chunk. Lower index gets a + b, upper a - b, as fwht_axis.
#pragma unroll
    for (int h = 1; h < 8; h *= 2) {
      if (h < p) {
#pragma unroll
        for (int j = 0; j < J; ++j)
#pragma unroll
          for (int e = 0; e < 8; ++e)
            if ((e & h) == 0) {
              const float a = v[j][e], b = v[j][e + h];
              v[j][e] = __fadd_rn(a, b);
              v[j][e + h] = __fsub_rn(a, b);
            }
      }
    }
    // h = 8 .. 128: partner chunk is lane ^ (h / 8), same j.
#pragma unroll
    for (int m = 1; m < 32; m *= 2) {
      if (8 * m < p) {
        const bool upper = (lane & m) != 0;
#pragma unroll
        for (int j = 0; j < J; ++j)
#pragma unroll
          for (int e = 0; e < 8; ++e) {
            const float other = __shfl_xor_sync(0xffffffffu, v[j][e], m);
            v[j][e] = upper ? __fsub_rn(other, v[j][e]) : __fadd_rn(v[j][e], other);
          }
      }
    }
    // h >= 256: through shared memory, one barrier per stage.
    if (p > kLaneStages) {
#pragma unroll
      for (int j = 0; j < J; ++j) {
        const int c = threadIdx.x + j * blockDim.x;
        if (c < chunks)
#pragma unroll
          for (int e = 0; e < 8; ++e) row_smem[c * 8 + e] = v[j][e];
      }
      __syncthreads();
      for (int h = kLaneStages; h < p; h *= 2) {
        for (int idx = threadIdx.x; idx < cols / 2; idx += blockDim.x) {
          const int i = (idx / h) * 2 * h + (idx % h);
          const float a = row_smem[i], b = row_smem[i + h];
          row_smem[i] = __fadd_rn(a, b);
          row_smem[i + h] = __fsub_rn(a, b);
        }
        __syncthreads();
      }
#pragma unroll
      for (int j = 0; j < J; ++j) {
        const int c = threadIdx.x + j * blockDim.x;
        if (c < chunks)
#pragma unroll
          for (int e = 0; e < 8; ++e) v[j][e] = row_smem[c * 8 + e];
      }
    }
#pragma unroll
    for (int j = 0; j < J; ++j)
#pragma unroll
      for (int e = 0; e < 8; ++e) v[j][e] = __fmul_rn(v[j][e], inv_sqrt_p);
  }

  // Row max|y| and a non-finite flag (fmaxf would drop a NaN silently).
  float amax = 0.0f;
  int bad = 0;
#pragma unroll
  for (int j = 0; j < J; ++j)
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      amax = fmaxf(amax, fabsf(v[j][e]));
      bad |= !isfinite(v[j][e]);
    }
#pragma unroll
  for (int m = 16; m > 0; m /= 2) {
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, m));
    bad |= __shfl_xor_sync(0xffffffffu, bad, m);
  }
  if (lane == 0) {
    warp_max[threadIdx.x / 32] = amax;
    warp_bad[threadIdx.x / 32] = bad;
  }
  __syncthreads();
  amax = 0.0f;
  bad = 0;
  for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) {
    amax = fmaxf(amax, warp_max[w]);
    bad |= warp_bad[w];
  }

  constexpr float qmax = static_cast<float>((1 << (BITS - 1)) - 1);
  const float s = bad ? __int_as_float(0x7fc00000) : __fdiv_rn(__fmul_rn(clip_ratio, amax), qmax);
  const bool encode = !bad && s != 0.0f;
  if (threadIdx.x == 0) {
    scales[row] = s;
    if (scales_h != nullptr) scales_h[row] = __float2half_rn(s);
  }
#pragma unroll
  for (int j = 0; j < J; ++j) {
    const int c = threadIdx.x + j * blockDim.x;
    if (c >= chunks) continue;
    int qi[8];
#pragma unroll
    for (int e = 0; e < 8; ++e)
      qi[e] = encode ? static_cast<int>(fminf(fmaxf(rintf(__fdiv_rn(v[j][e], s)), -qmax - 1.0f), qmax)) : 0;
    if constexpr (BITS == 4) {
      uint32_t packed = 0;
#pragma unroll
      for (int e = 0; e < 8; ++e) packed |= static_cast<uint32_t>(qi[e] & 0xF) << (4 * e);
      reinterpret_cast<uint32_t*>(q + row * (cols / 2))[c] = packed;
    } else {
      uint2 packed{0, 0};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        packed.x |= static_cast<uint32_t>(qi[e] & 0xFF) << (8 * e);
        packed.y |= static_cast<uint32_t>(qi[e + 4] & 0xFF) << (8 * e);
      }
      reinterpret_cast<uint2*>(q + row * cols)[c] = packed;
    }
  }
}

template <typename T, int J, int BITS>
cudaError_t launch_j(const T* x, int64_t rows, int cols, int p, float clip, uint8_t* q, float* scales,
                     __half* scales_h, int threads, cudaStream_t stream) {
  const size_t smem = p > kLaneStages ? static_cast<size_t>(cols) * sizeof(float) : 0;
  auto kernel = hadamard_quant_kernel<T, J, BITS>;
  if (smem > 48 * 1024) {
    const cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 static_cast<int>(smem));
    if (err != cudaSuccess) return err;
  }
  const float inv_sqrt_p = static_cast<float>(1.0 / std::sqrt(static_cast<double>(p)));
  kernel<<<static_cast<unsigned>(rows), threads, smem, stream>>>(x, cols, p, inv_sqrt_p, clip, q, scales, scales_h);
  return cudaGetLastError();
}

template <typename T, int BITS>
cudaError_t launch_bits(const T* x, int64_t rows, int cols, int p, float clip, uint8_t* q, float* scales,
                        __half* scales_h, cudaStream_t stream) {
  const int chunks = cols / 8;
  // The fewest chunks per thread that keep the block within kMaxThreads.
  for (int j = 1; j <= 8; j *= 2) {
    const int threads = ((chunks + j - 1) / j + 31) / 32 * 32;
    if (threads > kMaxThreads) continue;
    switch (j) {
      case 1: return launch_j<T, 1, BITS>(x, rows, cols, p, clip, q, scales, scales_h, threads, stream);
      case 2: return launch_j<T, 2, BITS>(x, rows, cols, p, clip, q, scales, scales_h, threads, stream);
      case 4: return launch_j<T, 4, BITS>(x, rows, cols, p, clip, q, scales, scales_h, threads, stream);
      default: return launch_j<T, 8, BITS>(x, rows, cols, p, clip, q, scales, scales_h, threads, stream);
    }
  }
  return cudaErrorInvalidValue;
}

template <typename T>
cudaError_t dispatch(const T* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip, uint8_t* q,
                     float* scales, __half* scales_h, cudaStream_t stream) {
  const bool p_ok = p > 0 && (p & (p - 1)) == 0 && cols % p == 0;
  if (rows < 0 || rows > 0x7fffffff || cols < 8 || cols > 32768 || cols % 8 != 0 || !p_ok ||
      (bits != 4 && bits != 8) || !(clip > 0.0f) || !std::isfinite(clip) ||
      reinterpret_cast<uintptr_t>(x) % 16 != 0 || x == nullptr || q == nullptr || scales == nullptr)
    return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  const int c = static_cast<int>(cols), pp = static_cast<int>(p);
  return bits == 4 ? launch_bits<T, 4>(x, rows, c, pp, clip, q, scales, scales_h, stream)
                   : launch_bits<T, 8>(x, rows, c, pp, clip, q, scales, scales_h, stream);
}

}  // namespace

cudaError_t hadamard_quant_rows(const __half* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip_ratio,
                                uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream) {
  return dispatch(x, rows, cols, p, bits, clip_ratio, q, scales, scales_h, stream);
}

cudaError_t hadamard_quant_rows(const float* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip_ratio,
                                uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream) {
  return dispatch(x, rows, cols, p, bits, clip_ratio, q, scales, scales_h, stream);
}

}  // namespace quarot::cuda
