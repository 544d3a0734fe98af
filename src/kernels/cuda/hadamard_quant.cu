#include "kernels/cuda/hadamard_quant.cuh"

#include <algorithm>
#include <cmath>

namespace quarot::cuda {
namespace {

constexpr int kMaxThreads = 512;
constexpr int kPerThread = 32;  // contiguous values a thread owns at load and at store

// Where value i of a row lives in shared memory: the 16-byte chunk index (bits 2..4)
// XOR-ed with bits 5..7, so 8 threads storing their 32 contiguous values as float4
// hit 8 different bank groups, and a warp reading 32 consecutive values (the
// strided butterfly groups) stays conflict-free.
__device__ __forceinline__ int swz(int i) { return i ^ (((i >> 5) & 7) << 2); }

template <typename T>
__device__ __forceinline__ void load32(const T* src, float (&v)[kPerThread]);

template <>
__device__ __forceinline__ void load32<__half>(const __half* src, float (&v)[kPerThread]) {
  uint4 raw[4];
#pragma unroll
  for (int c = 0; c < 4; ++c) raw[c] = __ldg(reinterpret_cast<const uint4*>(src) + c);
#pragma unroll
  for (int c = 0; c < 4; ++c) {
    const __half2* h = reinterpret_cast<const __half2*>(&raw[c]);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 f = __half22float2(h[i]);
      v[8 * c + 2 * i] = f.x;
      v[8 * c + 2 * i + 1] = f.y;
    }
  }
}

template <>
__device__ __forceinline__ void load32<float>(const float* src, float (&v)[kPerThread]) {
  float4 raw[8];
#pragma unroll
  for (int c = 0; c < 8; ++c) raw[c] = __ldg(reinterpret_cast<const float4*>(src) + c);
#pragma unroll
  for (int c = 0; c < 8; ++c) {
    v[4 * c] = raw[c].x, v[4 * c + 1] = raw[c].y, v[4 * c + 2] = raw[c].z, v[4 * c + 3] = raw[c].w;
  }
}

// Butterfly stages h = 1, 2, .., 2^(NB-1) over w (lower index a + b, upper a - b, as fwht_axis).
template <int NB>
__device__ __forceinline__ void butterflies(float* w, int stages) {
#pragma unroll
  for (int st = 0; st < NB; ++st) {
    if (st < stages) {
      const int h = 1 << st;
#pragma unroll
      for (int e = 0; e < (1 << NB); ++e)
        if ((e & h) == 0) {
          const float a = w[e], b = w[e + h];
          w[e] = __fadd_rn(a, b);
          w[e + h] = __fsub_rn(a, b);
        }
    }
  }
}

// Stages on index bits b0 .. b0 + NB - 1 (b0 >= 5): each thread gathers 2^NB values
// at stride 2^b0 from shared memory, transforms them in registers, scatters back.
template <int NB>
__device__ __forceinline__ void smem_group(float* sm, int cols, int b0) {
  const int lines = cols >> NB;
  for (int l = threadIdx.x; l < lines; l += blockDim.x) {
    const int low = l & ((1 << b0) - 1), high = l >> b0;
    const int base = low + (high << (b0 + NB));
    float w[1 << NB];
#pragma unroll
    for (int i = 0; i < (1 << NB); ++i) w[i] = sm[swz(base + (i << b0))];
    butterflies<NB>(w, NB);
#pragma unroll
    for (int i = 0; i < (1 << NB); ++i) sm[swz(base + (i << b0))] = w[i];
  }
}

// q = clamp(rint(y / s)) without a division per value: t = y * (1 / s) differs from
// the correctly rounded y / s by a few ulp, which changes rint() only when y / s
// is within that distance of a half-integer; such values (and only they) take
// the exact IEEE division. Clamping first is the same because the bounds are integers.
// Rounding adds 1.5 * 2^23: the float's low mantissa bits are then the two's
// complement integer, so no float -> int conversion (a quarter-rate instruction) runs.
template <int BITS>
__device__ __forceinline__ uint32_t quant_code(float y, float r, bool& near_tie) {
  constexpr float qmax = static_cast<float>((1 << (BITS - 1)) - 1);
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  // |t| <= 2^(BITS-1) + 1 after clamping, |t - y/s| <= 2^-22 * that; margin x4.
  constexpr float kTieEps = BITS == 4 ? 1.0f / (1 << 17) : 1.0f / (1 << 13);
  const float t = fminf(fmaxf(__fmul_rn(y, r), -qmax - 1.0f), qmax);
  const float big = __fadd_rn(t, kMagic);
  const float rounded = __fsub_rn(big, kMagic);
  near_tie |= fabsf(fabsf(__fsub_rn(t, rounded)) - 0.5f) < kTieEps;
  return __float_as_uint(big);
}

template <int BITS>
__device__ __forceinline__ uint32_t quant_code_exact(float y, float s) {
  constexpr float qmax = static_cast<float>((1 << (BITS - 1)) - 1);
  const float q = fminf(fmaxf(rintf(__fdiv_rn(y, s)), -qmax - 1.0f), qmax);
  return static_cast<uint32_t>(static_cast<int>(q));
}

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src));
}

// Where 16-byte unit j of a staged input row lives: XOR-ed so that the 32 threads
// of a warp reading unit c of their own 32-value runs hit distinct bank groups.
template <typename T>
__device__ __forceinline__ int staged_unit(int j) {
  constexpr int kMask = sizeof(T) == 2 ? 3 : 7;
  return j ^ ((j >> 3) & kMask);
}

template <typename T>
__device__ __forceinline__ void load32_staged(const uint4* staging, int g, float (&v)[kPerThread]) {
  constexpr int kUnits = kPerThread * sizeof(T) / 16;
  uint4 raw[kUnits];
#pragma unroll
  for (int c = 0; c < kUnits; ++c) raw[c] = staging[staged_unit<T>(g * kUnits + c)];
  if constexpr (sizeof(T) == 2) {
#pragma unroll
    for (int c = 0; c < kUnits; ++c) {
      const __half2* h = reinterpret_cast<const __half2*>(&raw[c]);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float2 f = __half22float2(h[i]);
        v[8 * c + 2 * i] = f.x;
        v[8 * c + 2 * i + 1] = f.y;
      }
    }
  } else {
#pragma unroll
    for (int c = 0; c < kUnits; ++c) {
      v[4 * c] = __uint_as_float(raw[c].x), v[4 * c + 1] = __uint_as_float(raw[c].y);
      v[4 * c + 2] = __uint_as_float(raw[c].z), v[4 * c + 3] = __uint_as_float(raw[c].w);
    }
  }
}

// A persistent grid: block b transforms rows b, b + gridDim.x, ... Index bits of a
// value: bits 0..4 inside a thread (stages h = 1 .. 16 in registers), bits 5.. in
// groups of up to 5 through shared memory, so the stages run in the reference
// order h = 1, 2, 4, ...; then each thread re-reads its own runs of 32 values to
// find the row's max, and once more to scale, quantize and pack them (16-byte
// stores). Thread t owns the 32-value runs t, t + blockDim.x, ... With PREFETCH
// the next row is copied into a staging buffer (cp.async) while this one is
// transformed, which hides the memory latency that one block per row exposes.
template <typename T, int BITS, bool PREFETCH>
__global__ void __launch_bounds__(kMaxThreads) hadamard_quant_kernel(const T* __restrict__ x, int64_t rows, int cols,
                                                                    int log2p, float inv_sqrt_p, float clip_ratio,
                                                                    uint8_t* __restrict__ q,
                                                                    float* __restrict__ scales,
                                                                    __half* __restrict__ scales_h) {
  extern __shared__ float4 smem4[];  // cols floats, then (PREFETCH) the staged input row
  float* sm = reinterpret_cast<float*>(smem4);
  uint4* staging = reinterpret_cast<uint4*>(sm + cols);
  __shared__ uint32_t warp_max[kMaxThreads / 32];
  const int t = threadIdx.x, lane = t & 31;
  const int runs = cols / kPerThread;
  const int p = 1 << log2p;
  const int units = static_cast<int>(cols * sizeof(T) / 16);

  auto prefetch = [&](int64_t r) {
    const uint4* src = reinterpret_cast<const uint4*>(x + r * cols);
    for (int j = t; j < units; j += blockDim.x)
      cp_async16(static_cast<uint32_t>(__cvta_generic_to_shared(staging + staged_unit<T>(j))), src + j);
    asm volatile("cp.async.commit_group;\n" ::);
  };
  if constexpr (PREFETCH) {
    if (blockIdx.x < rows) prefetch(blockIdx.x);
  }

  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    if constexpr (PREFETCH) asm volatile("cp.async.wait_all;\n" ::);
    __syncthreads();  // the staged row landed; the previous row's reads are done

    float v[kPerThread];
    for (int g = t; g < runs; g += blockDim.x) {
      if constexpr (PREFETCH) {
        load32_staged<T>(staging, g, v);
      } else {
        load32(x + row * cols + g * kPerThread, v);
      }
      butterflies<5>(v, min(log2p, 5));
#pragma unroll
      for (int c = 0; c < 8; ++c)
        smem4[g * 8 + (c ^ (g & 7))] = make_float4(v[4 * c], v[4 * c + 1], v[4 * c + 2], v[4 * c + 3]);
    }
    __syncthreads();
    if constexpr (PREFETCH) {
      if (row + gridDim.x < rows) prefetch(row + gridDim.x);
    }
    for (int b0 = 5; b0 < log2p; b0 += 5) {
      switch (min(5, log2p - b0)) {
        case 1: smem_group<1>(sm, cols, b0); break;
        case 2: smem_group<2>(sm, cols, b0); break;
        case 3: smem_group<3>(sm, cols, b0); break;
        case 4: smem_group<4>(sm, cols, b0); break;
        default: smem_group<5>(sm, cols, b0); break;
      }
      __syncthreads();
    }
    // Run g's final values y = Hx / sqrt(p) (the same float ops every time it is called).
    auto read_run = [&](int g) {
#pragma unroll
      for (int c = 0; c < 8; ++c) {
        const float4 f = smem4[g * 8 + (c ^ (g & 7))];
        v[4 * c] = f.x, v[4 * c + 1] = f.y, v[4 * c + 2] = f.z, v[4 * c + 3] = f.w;
      }
      if (p > 1)
#pragma unroll
        for (int e = 0; e < kPerThread; ++e) v[e] = __fmul_rn(v[e], inv_sqrt_p);
    };

    // max|y| on the bit patterns: for |y| integer order is float order, and NaN / inf
    // patterns exceed every finite one, so one max also flags a non-finite row.
    uint32_t mbits = 0;
    for (int g = t; g < runs; g += blockDim.x) {
      read_run(g);
#pragma unroll
      for (int e = 0; e < kPerThread; ++e) mbits = max(mbits, __float_as_uint(v[e]) & 0x7fffffffu);
    }
#pragma unroll
    for (int m = 16; m > 0; m /= 2) mbits = max(mbits, __shfl_xor_sync(0xffffffffu, mbits, m));
    if (lane == 0) warp_max[t / 32] = mbits;
    __syncthreads();
    mbits = 0;
    for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) mbits = max(mbits, warp_max[w]);
    const bool bad = mbits >= 0x7f800000u;

    constexpr float qmax = static_cast<float>((1 << (BITS - 1)) - 1);
    const float s =
        bad ? __int_as_float(0x7fc00000) : __fdiv_rn(__fmul_rn(clip_ratio, __uint_as_float(mbits)), qmax);
    if (t == 0) {
      scales[row] = s;
      if (scales_h != nullptr) scales_h[row] = __float2half_rn(s);
    }
    const bool encode = !bad && s != 0.0f;
    const float r = encode ? __frcp_rn(s) : 0.0f;
    const bool fast = encode && isfinite(r) && s > 1e-30f;
    constexpr int kPerWord = 32 / BITS;
    constexpr uint32_t kMask = (1u << BITS) - 1;
    for (int g = t; g < runs; g += blockDim.x) {
      read_run(g);
      uint32_t packed[kPerThread / kPerWord];
#pragma unroll
      for (int w = 0; w < kPerThread / kPerWord; ++w) packed[w] = 0;
      bool near_tie = !fast;
      if (fast)
#pragma unroll
        for (int e = 0; e < kPerThread; ++e)
          packed[e / kPerWord] |= (quant_code<BITS>(v[e], r, near_tie) & kMask) << (BITS * (e % kPerWord));
      if (near_tie) {  // rare: this run again with the exact division
        read_run(g);
#pragma unroll
        for (int w = 0; w < kPerThread / kPerWord; ++w) packed[w] = 0;
        if (encode)
#pragma unroll
          for (int e = 0; e < kPerThread; ++e)
            packed[e / kPerWord] |= (quant_code_exact<BITS>(v[e], s) & kMask) << (BITS * (e % kPerWord));
      }
      uint4* dst = reinterpret_cast<uint4*>(q + row * (cols / (8 / BITS))) + g * (BITS / 4);
#pragma unroll
      for (int i = 0; i < BITS / 4; ++i)
        dst[i] = make_uint4(packed[4 * i], packed[4 * i + 1], packed[4 * i + 2], packed[4 * i + 3]);
    }
  }
}

template <typename T, int BITS, bool PREFETCH>
cudaError_t launch_variant(const T* x, int64_t rows, int cols, int log2p, int p, float clip, uint8_t* q,
                           float* scales, __half* scales_h, size_t smem, cudaStream_t stream) {
  auto kernel = hadamard_quant_kernel<T, BITS, PREFETCH>;
  // Always raised: the static reduction buffer counts against the default 48 KB too.
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (err != cudaSuccess) return err;
  const int threads = std::min(kMaxThreads, (cols / kPerThread + 31) / 32 * 32);
  int dev = 0, sms = 0, per_sm = 0;
  err = cudaGetDevice(&dev);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  if (err == cudaSuccess) err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem);
  if (err != cudaSuccess) return err;
  if (per_sm < 1) return cudaErrorInvalidConfiguration;
  const int64_t blocks = std::min<int64_t>(rows, static_cast<int64_t>(per_sm) * sms);
  const float inv_sqrt_p = static_cast<float>(1.0 / std::sqrt(static_cast<double>(p)));
  kernel<<<static_cast<unsigned>(blocks), threads, smem, stream>>>(x, rows, cols, log2p, inv_sqrt_p, clip, q, scales,
                                                                   scales_h);
  return cudaGetLastError();
}

template <typename T, int BITS>
cudaError_t launch(const T* x, int64_t rows, int cols, int p, float clip, uint8_t* q, float* scales,
                   __half* scales_h, cudaStream_t stream) {
  int log2p = 0;
  while ((1 << log2p) < p) ++log2p;
  const size_t row_bytes = static_cast<size_t>(cols) * sizeof(float);
  const size_t staged = row_bytes + static_cast<size_t>(cols) * sizeof(T);
  // Prefetching needs room for the staged row; the largest FP32 rows go without.
  if (staged <= 200 * 1024)
    return launch_variant<T, BITS, true>(x, rows, cols, log2p, p, clip, q, scales, scales_h, staged, stream);
  return launch_variant<T, BITS, false>(x, rows, cols, log2p, p, clip, q, scales, scales_h, row_bytes, stream);
}

template <typename T>
cudaError_t dispatch(const T* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip, uint8_t* q,
                     float* scales, __half* scales_h, cudaStream_t stream) {
  const bool p_ok = p > 0 && (p & (p - 1)) == 0 && cols % p == 0;
  if (rows < 0 || rows > 0x7fffffff || cols < kPerThread || cols > 32768 ||
      cols % kPerThread != 0 || !p_ok || (bits != 4 && bits != 8) || !(clip > 0.0f) || !std::isfinite(clip) ||
      x == nullptr || q == nullptr || scales == nullptr || reinterpret_cast<uintptr_t>(x) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(q) % 16 != 0)
    return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  const int c = static_cast<int>(cols), pp = static_cast<int>(p);
  return bits == 4 ? launch<T, 4>(x, rows, c, pp, clip, q, scales, scales_h, stream)
                   : launch<T, 8>(x, rows, c, pp, clip, q, scales, scales_h, stream);
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
