#include "kernels/cuda/swiglu_hadamard_quant.cuh"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "kernels/cuda/quant_code.cuh"
#include "kernels/cuda/resident_blocks.h"
#include "kernels/cuda/smem_async.cuh"
#include "kernels/cuda/swiglu_math.cuh"

namespace quarot::cuda {
namespace {

// Shared-memory float index of block index j: the 16-byte chunk bits (2..4) XOR-ed
// with bits 5..7. Phase 0 writes 8 consecutive values per thread (two float4 per
// 8-lane phase land in 8 distinct bank groups); phase 1 accesses, per warp, 4 runs of 8
// consecutive values 64 apart, which the XOR spreads over all 32 banks; later phases
// access 32 consecutive values per warp. So every access below is conflict-free.
__device__ __forceinline__ int swz(int j) { return j ^ (((j >> 5) & 7) << 2); }

// Block index of value e of thread t in phase g: bits [3g, 3g + 3) = e, the thread's
// bits around them.
template <int G>
__device__ __forceinline__ int place(int t, int e) {
  constexpr int kLow = 3 * G;
  return (t & ((1 << kLow) - 1)) | (e << kLow) | ((t >> kLow) << (kLow + 3));
}

// Butterfly stages h = 1, 2, 4 over e (lower a + b, upper a - b, as fwht_axis).
template <int K>
__device__ __forceinline__ void stages3(float (&v)[K][8]) {
#pragma unroll
  for (int h = 1; h < 8; h *= 2)
#pragma unroll
    for (int a = 0; a < K; ++a)
#pragma unroll
      for (int e = 0; e < 8; ++e)
        if ((e & h) == 0) {
          const float x = v[a][e], y = v[a][e + h];
          v[a][e] = __fadd_rn(x, y);
          v[a][e + h] = __fsub_rn(x, y);
        }
}

// Phase g -> g + 1: every value to shared memory at its block index, then back in the
// next phase's places. The first barrier keeps the previous transpose's readers (or the
// previous row's) ahead of these writes; after_barrier runs right behind it.
template <int K, int N, int G, typename AfterBarrier>
__device__ __forceinline__ void transpose_to_next(float* tb, int t, float (&v)[K][8], AfterBarrier&& after_barrier) {
  constexpr int B = 1 << N;
  __syncthreads();
  after_barrier();
#pragma unroll
  for (int a = 0; a < K; ++a) {
    float* blk = tb + a * B;
    if constexpr (G == 0) {  // 8 consecutive values: two 16-byte chunks, kept whole by swz
      *reinterpret_cast<float4*>(blk + swz(8 * t)) = make_float4(v[a][0], v[a][1], v[a][2], v[a][3]);
      *reinterpret_cast<float4*>(blk + swz(8 * t + 4)) = make_float4(v[a][4], v[a][5], v[a][6], v[a][7]);
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) blk[swz(place<G>(t, e))] = v[a][e];
    }
  }
  __syncthreads();
#pragma unroll
  for (int a = 0; a < K; ++a)
#pragma unroll
    for (int e = 0; e < 8; ++e) v[a][e] = tb[a * B + swz(place<G + 1>(t, e))];
}

__device__ __forceinline__ uint32_t max_abs_nan_bits(uint32_t m, float v) {
  return __float_as_uint(max_abs_nan(__uint_as_float(m), v));
}

// The next row's gate/up values are copied into shared memory (cp.async) while this
// one is transformed, where that fits beside the transpose buffer (k = 7, p = 4096:
// 112 + 112 KB of the 227 KB): with one 512-thread block per SM nothing else hides the
// loads' latency.
template <int K, int N>
constexpr bool kStagedRows = size_t{8} * K * (size_t{1} << N) + 1024 <= 227 * 1024;

template <int K, int N, int BITS>
__global__ void __launch_bounds__(1 << (N - 3), 1)
    swiglu_hq_kernel(const __half* __restrict__ gu, int64_t rows, SwigluMix mix, float inv_sqrt_p, float clip_ratio,
                     uint8_t* __restrict__ q, float* __restrict__ scales, __half* __restrict__ scales_h,
                     bool even_odd) {
  constexpr int B = 1 << N, T = B / 8, kInter = K * B, kPhases = N / 3;
  static_assert(N % 3 == 0 && T % 32 == 0, "three index bits per phase, whole warps");
  constexpr bool kStaged = kStagedRows<K, N>;
  constexpr int kUnits = 2 * kInter / 8;  // 16-byte units of a gate/up row
  extern __shared__ float4 smem4[];
  float* tb = reinterpret_cast<float*>(smem4);                // K * B floats
  uint4* stage = reinterpret_cast<uint4*>(tb + kInter);       // kStaged: the next gate/up row
  __shared__ uint32_t red[T / 32];
  auto prefetch = [&](int64_t r) {
    if (r < rows) {
      const uint4* src = reinterpret_cast<const uint4*>(gu + r * 2 * kInter);
      for (int u = threadIdx.x; u < kUnits; u += T) cp_async16(smem_addr(stage + u), src + u, true);
    }
    cp_async_commit();
  };
  if constexpr (kStaged) prefetch(blockIdx.x);

  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    // The thread index made opaque per row, so addresses derived from it are not hoisted
    // out of the loop into long-lived registers. Added with the store positions below
    // (offsets from one base) when a version with a position per value spilled 728 bytes
    // at k = 7; this kernel compiles without spills either way (112 / 114 registers,
    // docs/results/2026-12-05-cpu-models/sass_resources.log). Kept: it is what ran.
    int t = static_cast<int>(threadIdx.x);
    asm volatile("" : "+r"(t));
    // SwiGLU and the mixing of the k blocks' values at the same index (phase 0:
    // indices 8t .. 8t + 7 of each block), rounded to FP16 as swiglu_rows stores them.
    float v[K][8];
    if constexpr (kStaged) {
      cp_async_wait<0>();
      __syncthreads();  // the row landed, from every thread's copies
#pragma unroll
      for (int c = 0; c < K; ++c) {
        float gf[8], uf[8];
        unpack_half8(stage[c * (B / 8) + t], gf);
        unpack_half8(stage[(kInter + c * B) / 8 + t], uf);
#pragma unroll
        for (int e = 0; e < 8; ++e) v[c][e] = silu_times(gf[e], uf[e]);
      }
    } else {
      // Loads two blocks ahead of the arithmetic: all 2k loads at once would need 8k
      // more registers than the 128 a 512-thread block allows (measured: 760 bytes of
      // spills at k = 7), and two blocks in flight per thread (32 KB per SM) cover the
      // memory latency.
      constexpr int kAhead = K < 3 ? K : 3;
      const __half* g = gu + row * 2 * kInter + 8 * t;
      uint4 graw[kAhead], uraw[kAhead];
#pragma unroll
      for (int c = 0; c < kAhead - 1; ++c) {
        graw[c] = __ldg(reinterpret_cast<const uint4*>(g + c * B));
        uraw[c] = __ldg(reinterpret_cast<const uint4*>(g + kInter + c * B));
      }
#pragma unroll
      for (int c = 0; c < K; ++c) {
        const int next = c + kAhead - 1;
        if (next < K) {
          graw[next % kAhead] = __ldg(reinterpret_cast<const uint4*>(g + next * B));
          uraw[next % kAhead] = __ldg(reinterpret_cast<const uint4*>(g + kInter + next * B));
        }
        float gf[8], uf[8];
        unpack_half8(graw[c % kAhead], gf);
        unpack_half8(uraw[c % kAhead], uf);
#pragma unroll
        for (int e = 0; e < 8; ++e) v[c][e] = silu_times(gf[e], uf[e]);
      }
    }
    mix_blocks<K>(mix, v, [](float x) { return __half2float(__float2half_rn(x)); });  // as swiglu_rows stores it

    // H_B on each block: bits 0..2 here, three more per transpose.
    auto nothing = [] {};
    stages3<K>(v);
    transpose_to_next<K, N, 0>(tb, t, v, [&] {
      if constexpr (kStaged) prefetch(row + gridDim.x);  // every thread has read the staged row
    });
    stages3<K>(v);
    transpose_to_next<K, N, 1>(tb, t, v, nothing);
    stages3<K>(v);
    if constexpr (kPhases > 3) {
      transpose_to_next<K, N, 2>(tb, t, v, nothing);
      stages3<K>(v);
    }
    constexpr int kLast = kPhases - 1;

    // max|y| = max|v| / sqrt(B); max.NaN keeps a NaN (its pattern, like infinity's,
    // exceeds every finite one).
    uint32_t mb = 0;
#pragma unroll
    for (int a = 0; a < K; ++a)
#pragma unroll
      for (int e = 0; e < 8; ++e) mb = max_abs_nan_bits(mb, v[a][e]);
#pragma unroll
    for (int off = 16; off > 0; off /= 2) mb = max(mb, __shfl_xor_sync(0xffffffffu, mb, off));
    if ((t & 31) == 0) red[t / 32] = mb;  // the previous row's readers passed two barriers since
    __syncthreads();
    mb = 0;
#pragma unroll
    for (int w = 0; w < T / 32; ++w) mb = max(mb, red[w]);

    constexpr float qmax = static_cast<float>((1 << (BITS - 1)) - 1);
    const float amax = __fmul_rn(__uint_as_float(mb), inv_sqrt_p);
    const bool bad = !(amax <= FLT_MAX);
    const float s = bad ? __int_as_float(0x7fc00000) : __fdiv_rn(__fmul_rn(clip_ratio, amax), qmax);
    if (t == 0) {
      scales[row] = s;
      if (scales_h != nullptr) scales_h[row] = __float2half_rn(s);
    }
    const bool encode = !bad && s != 0.0f;
    const bool fast = encode && s > 1e-30f && s < 1e30f;
    const float r = fast ? __frcp_rn(s) : 0.0f;
    // Store positions: the last phase's index bits [0, 5) come from t alone (e sits at bit
    // 3 (kPhases - 1) >= 6), so the even/odd permutation of each 32 is t's, and e and a
    // are plain offsets.
    constexpr int kShift = 3 * kLast;
    const int base = place<kLast>(t, 0);
    uint8_t* qrow = q + row * kInter + (even_odd ? (base & ~31) + ((base & 31) >> 1) + (base & 1) * 16 : base);
#pragma unroll
    for (int a = 0; a < K; ++a)
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const float y = __fmul_rn(v[a][e], inv_sqrt_p);
        uint32_t code = 0;
        if (fast) {
          bool near = false;
          code = quant_code<BITS>(y, r, near);
          if (near) code = quant_code_exact<BITS>(y, s);
        } else if (encode) {
          code = quant_code_exact<BITS>(y, s);
        }
        qrow[a * B + (e << kShift)] = static_cast<uint8_t>(code & 0xffu);
      }
  }
}

template <int K, int N, int BITS>
cudaError_t launch(const __half* gu, int64_t rows, const SwigluMix& mix, float clip, bool even_odd, uint8_t* q,
                   float* scales, __half* scales_h, cudaStream_t stream) {
  static ResidentBlocksCache cache;
  auto kernel = swiglu_hq_kernel<K, N, BITS>;
  constexpr int kThreads = 1 << (N - 3);
  constexpr size_t kSmem = sizeof(float) * K * (size_t{1} << N) * (kStagedRows<K, N> ? 2 : 1);
  ResidentBlocks rb;
  if (const cudaError_t err = cache.get(kernel, kThreads, kSmem, rb); err != cudaSuccess) return err;
  const int per_sm = rb.per_sm, sms = rb.sms;
  if (per_sm < 1) return cudaErrorInvalidConfiguration;
  const int64_t blocks = std::min<int64_t>(rows, static_cast<int64_t>(per_sm) * sms);
  const float inv_sqrt_p = static_cast<float>(1.0 / std::sqrt(static_cast<double>(int64_t{1} << N)));
  kernel<<<static_cast<unsigned>(blocks), kThreads, kSmem, stream>>>(gu, rows, mix, inv_sqrt_p, clip, q, scales,
                                                                    scales_h, even_odd);
  return cudaGetLastError();
}

template <int N, int BITS>
cudaError_t launch_k(int k, const __half* gu, int64_t rows, const SwigluMix& mix, float clip, bool even_odd,
                     uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream) {
  switch (k) {
    case 1: return launch<1, N, BITS>(gu, rows, mix, clip, even_odd, q, scales, scales_h, stream);
    case 2: return launch<2, N, BITS>(gu, rows, mix, clip, even_odd, q, scales, scales_h, stream);
    case 3: return launch<3, N, BITS>(gu, rows, mix, clip, even_odd, q, scales, scales_h, stream);
    case 4: return launch<4, N, BITS>(gu, rows, mix, clip, even_odd, q, scales, scales_h, stream);
    case 5: return launch<5, N, BITS>(gu, rows, mix, clip, even_odd, q, scales, scales_h, stream);
    case 6: return launch<6, N, BITS>(gu, rows, mix, clip, even_odd, q, scales, scales_h, stream);
    case 7: return launch<7, N, BITS>(gu, rows, mix, clip, even_odd, q, scales, scales_h, stream);
    default: return launch<8, N, BITS>(gu, rows, mix, clip, even_odd, q, scales, scales_h, stream);
  }
}

}  // namespace

bool swiglu_hadamard_quant_supported(int64_t inter, int k, int bits, IntGemmActLayout layout) {
  if (k < 1 || k > kSwigluMaxK || inter % k != 0) return false;
  const int64_t p = inter / k;
  const bool one_byte = layout == IntGemmActLayout::Int8EvenOdd || bits == 8;
  return (p == 512 || p == 4096) && (bits == 4 || bits == 8) && one_byte;
}

cudaError_t swiglu_hadamard_quant_rows(const __half* gu, int64_t rows, int64_t inter, int k, const float* mix,
                                       int bits, float clip_ratio, IntGemmActLayout layout, uint8_t* q,
                                       float* scales, __half* scales_h, cudaStream_t stream) {
  if (!swiglu_hadamard_quant_supported(inter, k, bits, layout) || gu == nullptr || q == nullptr ||
      scales == nullptr || rows < 0 || rows > 0x7fffffff || !(clip_ratio > 0.0f) || !std::isfinite(clip_ratio) ||
      (k > 1 && mix == nullptr) || reinterpret_cast<uintptr_t>(gu) % 16 != 0)
    return cudaErrorInvalidValue;
  SwigluMix m;
  if (!make_swiglu_mix(mix, k, m)) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  const bool even_odd = layout == IntGemmActLayout::Int8EvenOdd;
  const int64_t p = inter / k;
  if (p == 512)
    return bits == 4 ? launch_k<9, 4>(k, gu, rows, m, clip_ratio, even_odd, q, scales, scales_h, stream)
                     : launch_k<9, 8>(k, gu, rows, m, clip_ratio, even_odd, q, scales, scales_h, stream);
  return bits == 4 ? launch_k<12, 4>(k, gu, rows, m, clip_ratio, even_odd, q, scales, scales_h, stream)
                   : launch_k<12, 8>(k, gu, rows, m, clip_ratio, even_odd, q, scales, scales_h, stream);
}

}  // namespace quarot::cuda
