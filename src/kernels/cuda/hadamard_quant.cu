#include "kernels/cuda/hadamard_quant.cuh"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <type_traits>
#include <utility>

#include "kernels/cuda/hadamard_quant_tc.cuh"
#include "kernels/cuda/quant_code.cuh"
#include "kernels/cuda/resident_blocks.h"
#include "kernels/cuda/rmsnorm.cuh"
#include "kernels/cuda/smem_async.cuh"

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

// quant_code / quant_code_exact (quant_code.cuh): one code, bit for bit quantize_sym's.

// IntGemmActLayout::Int8EvenOdd output: words of codes covering the consecutive
// indices i0, i0 + 1, ... (i0 a multiple of 8; 8 int4 codes or 4 int8 codes per word,
// as the packed layout holds them) stored one int8 per code, each 32 indices as their
// 16 even then their 16 odd ones. int4 codes are sign-extended per byte.
__device__ __forceinline__ uint32_t sext_nibbles(uint32_t x) { return __vsub4(x ^ 0x08080808u, 0x08080808u); }
template <int BITS>
__device__ __forceinline__ void store_even_odd(uint8_t* qrow, int i0, const uint32_t* words, int nwords) {
  if constexpr (BITS == 4) {
    for (int k = 0; k < nwords; ++k) {
      const int i = i0 + 8 * k;
      uint8_t* dst = qrow + (i & ~31) + ((i & 31) >> 1);
      *reinterpret_cast<uint32_t*>(dst) = sext_nibbles(words[k] & 0x0F0F0F0Fu);
      *reinterpret_cast<uint32_t*>(dst + 16) = sext_nibbles((words[k] >> 4) & 0x0F0F0F0Fu);
    }
  } else {
    for (int k = 0; k + 1 < nwords; k += 2) {
      const int i = i0 + 4 * k;
      uint8_t* dst = qrow + (i & ~31) + ((i & 31) >> 1);
      *reinterpret_cast<uint32_t*>(dst) = __byte_perm(words[k], words[k + 1], 0x6420);
      *reinterpret_cast<uint32_t*>(dst + 16) = __byte_perm(words[k], words[k + 1], 0x7531);
    }
  }
}

// Where 16-byte unit j of a staged input row lives: XOR-ed so that the 32 threads
// of a warp reading unit c of their own 32-value runs hit distinct bank groups.
template <typename T>
__device__ __forceinline__ int staged_unit(int j) {
  constexpr int kMask = sizeof(T) == 2 ? 3 : 7;
  return j ^ ((j >> 3) & kMask);
}

// N values from N * sizeof(T) / 16 raw 16-byte units (FP16 pairs or FP32 words), in order.
template <typename T, int N>
__device__ __forceinline__ void unpack_units(const uint4 (&raw)[N * sizeof(T) / 16], float (&v)[N]) {
  constexpr int kUnits = N * sizeof(T) / 16;
#pragma unroll
  for (int c = 0; c < kUnits; ++c) {
    if constexpr (sizeof(T) == 2) {
      const __half2* h = reinterpret_cast<const __half2*>(&raw[c]);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float2 f = __half22float2(h[i]);
        v[8 * c + 2 * i] = f.x;
        v[8 * c + 2 * i + 1] = f.y;
      }
    } else {
      v[4 * c] = __uint_as_float(raw[c].x), v[4 * c + 1] = __uint_as_float(raw[c].y);
      v[4 * c + 2] = __uint_as_float(raw[c].z), v[4 * c + 3] = __uint_as_float(raw[c].w);
    }
  }
}

template <typename T>
__device__ __forceinline__ void load32_staged(const uint4* staging, int g, float (&v)[kPerThread]) {
  constexpr int kUnits = kPerThread * sizeof(T) / 16;
  uint4 raw[kUnits];
#pragma unroll
  for (int c = 0; c < kUnits; ++c) raw[c] = staging[staged_unit<T>(g * kUnits + c)];
  unpack_units<T>(raw, v);
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
                                                                    __half* __restrict__ scales_h, bool even_odd) {
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
      cp_async16(smem_addr(staging + staged_unit<T>(j)), src + j, true);
    cp_async_commit();
  };
  if constexpr (PREFETCH) {
    if (blockIdx.x < rows) prefetch(blockIdx.x);
  }

  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    if constexpr (PREFETCH) cp_async_wait<0>();
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
      if (even_odd) {
        store_even_odd<BITS>(q + row * cols, g * kPerThread, packed, kPerThread / kPerWord);
        continue;
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
                           float* scales, __half* scales_h, bool even_odd, size_t smem, cudaStream_t stream) {
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
                                                                   scales_h, even_odd);
  return cudaGetLastError();
}

template <typename T, int BITS>
cudaError_t launch_legacy(const T* x, int64_t rows, int cols, int p, float clip, uint8_t* q, float* scales,
                          __half* scales_h, bool even_odd, cudaStream_t stream) {
  int log2p = 0;
  while ((1 << log2p) < p) ++log2p;
  const size_t row_bytes = static_cast<size_t>(cols) * sizeof(float);
  const size_t staged = row_bytes + static_cast<size_t>(cols) * sizeof(T);
  // Prefetching needs room for the staged row; the largest FP32 rows go without.
  if (staged <= 200 * 1024)
    return launch_variant<T, BITS, true>(x, rows, cols, log2p, p, clip, q, scales, scales_h, even_odd, staged, stream);
  return launch_variant<T, BITS, false>(x, rows, cols, log2p, p, clip, q, scales, scales_h, even_odd, row_bytes,
                                        stream);
}

// ---------------------------------------------------------------------------
// Register-resident kernels (Direct, Staged).
//
// Why: the legacy kernel moves every value through shared memory 5-7 times (staging,
// each butterfly group with scalar accesses and per-value index arithmetic, a pass for
// the maximum, a pass to quantize) and applies 1/sqrt(p) twice, so it is bound by
// instruction issue and shared-memory bandwidth at a quarter of the copy rate. Here a
// thread holds kV = 64 values from load to store; index bits 0..5 are transformed in
// registers, the rest in at most two groups, each reached by one 128-bit transpose
// through shared memory; the row maximum is a register reduction, and the codes are
// packed straight from registers.

constexpr int kV = 64;  // values a thread holds

// Shared-memory float offset of row index i: 16-byte chunks c padded to c + c/8 + c/16,
// which keeps every 128-bit access pattern below at most 2-way bank conflicted (most
// are conflict-free). It is additive over disjoint bit fields, so a thread's part is
// computed once and the unrolled part folds into immediate offsets.
__host__ __device__ constexpr int pad_idx(int i) {
  const int c = i >> 2;
  return 4 * (c + (c >> 3) + (c >> 4)) + (i & 3);
}

// The layouts, for the index bits [B, B + G) in registers: a thread holds L = kV >> G
// lines of 2^G values, lines L*tr .. L*tr + L - 1; value e + L*j of line e, element j
// is row index f(L*tr) | e | (j << B), f spreading a line number around bits [B, B+G).
// G = 0 is the contiguous layout: index kV*tr + e.
template <int B, int G>
__device__ __forceinline__ int line_base(int tr) {
  const int l = tr * (kV >> G);
  return (l & ((1 << B) - 1)) | ((l >> B) << (B + G));
}

template <int B, int G, bool kWrite>
__device__ __forceinline__ void transfer(float* tb, int tr, float (&v)[kV]) {
  constexpr int L = kV >> G, W = L >= 4 ? 4 : L;
  float* base = tb + pad_idx(line_base<B, G>(tr));
#pragma unroll
  for (int j = 0; j < (1 << G); ++j)
#pragma unroll
    for (int s = 0; s < L / W; ++s) {
      float* p = base + pad_idx((W * s) | (j << B));
      const int i = W * s + L * j;
      if constexpr (W == 4) {
        if constexpr (kWrite) {
          *reinterpret_cast<float4*>(p) = make_float4(v[i], v[i + 1], v[i + 2], v[i + 3]);
        } else {
          const float4 f = *reinterpret_cast<const float4*>(p);
          v[i] = f.x, v[i + 1] = f.y, v[i + 2] = f.z, v[i + 3] = f.w;
        }
      } else if constexpr (W == 2) {
        if constexpr (kWrite) {
          *reinterpret_cast<float2*>(p) = make_float2(v[i], v[i + 1]);
        } else {
          const float2 f = *reinterpret_cast<const float2*>(p);
          v[i] = f.x, v[i + 1] = f.y;
        }
      } else {
        if constexpr (kWrite) {
          *p = v[i];
        } else {
          v[i] = *p;
        }
      }
    }
}

// Butterfly stages h = 1, 2, .., 2^(NST-1) over the element index j of a layout with
// L lines (lower a + b, upper a - b, as fwht_axis).
template <int L, int G, int NST, int FIRST = 0>
__device__ __forceinline__ void line_stages(float (&v)[kV]) {
#pragma unroll
  for (int st = FIRST; st < NST; ++st) {
    constexpr int kJ = 1 << G;
    const int h = 1 << st;
#pragma unroll
    for (int j = 0; j < kJ; ++j)
      if ((j & h) == 0)
#pragma unroll
        for (int e = 0; e < L; ++e) {
          const float a = v[e + L * j], b = v[e + L * (j + h)];
          v[e + L * j] = __fadd_rn(a, b);
          v[e + L * (j + h)] = __fsub_rn(a, b);
        }
  }
}

// Codes of the final layout (B, G), packed: word w holds kPer consecutive row indices.
// Codes come from the bits of y * (1/s) + 1.5 * 2^23 (the integer in the low mantissa
// bits, biased by adding (kPer-wide) 2^(BITS-1) per field and flipping its top bit), so
// packing a value costs one integer multiply-add. Without clamping (clip >= 1) |y / s|
// stays below qmax + 1/2, so no clamp is needed, and t = y * r is never rounded on its
// own: one fma gives rint(y * r) and a second the distance to it. CLAMP (clip < 1)
// clamps t first. kPow2 (p an even power of two, 1/sqrt(p) a power of two): y * r is
// v * (r / sqrt(p)) exactly, one multiply less (the caller keeps s in [1e-30, 1e30],
// so neither product is subnormal where it matters). `near` flags a value within eps
// of a rounding tie, where only the IEEE division is trusted.
// Packs the codes of a thread's values into words: value i's code comes from
// code_bits(i) as the bits of float(q) + 1.5 * 2^23 (q in the low mantissa bits). The
// codes are biased by 2^(BITS-1) so the fields never carry, and one XOR per word removes
// the bias.
template <int BITS, int G, typename CodeBits>
__device__ __forceinline__ void pack_codes(uint32_t (&words)[kV * BITS / 32], CodeBits&& code_bits) {
  constexpr int L = kV >> G, kPer = 32 / BITS;
  constexpr uint32_t kMagicBits = 0x4B400000u;  // 1.5 * 2^23
  constexpr uint32_t kOnes = BITS == 4 ? 0x11111111u : 0x01010101u;
  constexpr uint32_t kBias = (static_cast<uint32_t>(1u << (BITS - 1)) - kMagicBits) * kOnes;
#pragma unroll
  for (int j = 0; j < (1 << G); ++j)
#pragma unroll
    for (int k = 0; k < L / kPer; ++k) {
      uint32_t acc = kBias;
#pragma unroll
      for (int m = 0; m < kPer; ++m) acc += code_bits(k * kPer + m + L * j) << (BITS * m);
      words[j * (L / kPer) + k] = acc ^ (kOnes << (BITS - 1));
    }
}

template <int BITS, int B, int G, bool kClamp, bool kPow2>
__device__ __forceinline__ void quantize_fast(const float (&v)[kV], float c, float r, uint32_t (&words)[kV * BITS / 32],
                                              bool& near) {
  const float rr = kPow2 ? __fmul_rn(r, c) : r;
  float dmax = 0.0f;  // the largest |distance to rint|; one compare at the end
  pack_codes<BITS, G>(words, [&](int i) {
    const float y = kPow2 ? v[i] : __fmul_rn(v[i], c);
    return quant_code_fast<BITS, kClamp>(y, rr, dmax);
  });
  near |= dmax > kQuantNearTie<BITS>;
}

// The reference division for every value (rows with ties, zero or extreme scales).
template <int BITS, int B, int G>
__device__ __forceinline__ void quantize_exact(const float (&v)[kV], bool scaled, float c, float s, bool encode,
                                               uint32_t (&words)[kV * BITS / 32]) {
  constexpr float qmax = static_cast<float>((1 << (BITS - 1)) - 1);
  constexpr float kMagic = 12582912.0f;
  pack_codes<BITS, G>(words, [&](int i) {
    const float y = scaled ? __fmul_rn(v[i], c) : v[i];
    const float qf = encode ? fminf(fmaxf(rintf(__fdiv_rn(y, s)), -qmax - 1.0f), qmax) : 0.0f;
    return __float_as_uint(__fadd_rn(qf, kMagic));
  });
}

template <int BITS, int B, int G>
__device__ __forceinline__ void store_codes(uint8_t* qrow, int tr, const uint32_t (&words)[kV * BITS / 32]) {
  constexpr int L = kV >> G, kWpj = L * BITS / 32;  // words per element j, contiguous
  uint32_t* base = reinterpret_cast<uint32_t*>(qrow + line_base<B, G>(tr) * BITS / 8);
#pragma unroll
  for (int j = 0; j < (1 << G); ++j) {
    uint32_t* p = base + ((j << B) * BITS / 32);
    const uint32_t* w = words + j * kWpj;
    if constexpr (kWpj >= 4) {
#pragma unroll
      for (int k = 0; k < kWpj; k += 4)
        *reinterpret_cast<uint4*>(p + k) = make_uint4(w[k], w[k + 1], w[k + 2], w[k + 3]);
    } else if constexpr (kWpj == 2) {
      *reinterpret_cast<uint2*>(p) = make_uint2(w[0], w[1]);
    } else {
      *p = w[0];
    }
  }
}

// Index bits of the final layout: [6, N) in two groups when N > 9 (the last of 3 bits,
// so a thread holds 8 consecutive indices per element and packs whole words).
template <int N>
struct Plan {
  static constexpr int kPhases = N <= 6 ? 1 : N <= 9 ? 2 : 3;
  static constexpr int kG2 = N <= 9 ? N - 6 : N - 9;
  static constexpr int kB3 = N - 3;
  static constexpr int kFinalB = kPhases == 1 ? 6 : kPhases == 2 ? 6 : kB3;
  static constexpr int kFinalG = kPhases == 1 ? 0 : kPhases == 2 ? kG2 : 3;
};

// Rows are processed by groups of tr_pad threads (tr_count = cols / kV of them hold
// values; the padding makes a group a power of two within a warp or whole warps);
// a block holds rows_per_block groups and walks the rows with a grid stride.
// STAGED: the group's next row is copied into its staging buffer (cp.async, unit u at
// u + u / kUnits, conflict-free for both the coalesced copy and the per-thread reads)
// once the current one has been read out of it. L2: one lane per group asks the TMA
// unit to bring the group's next row into L2 (cp.async.bulk.prefetch) before loading
// this one, so the next loads hit L2 at no shared-memory or register cost.
// COALESCED: Direct with coalesced loads. A thread owns 8 lines of 8 consecutive values
// 256 apart (layout <8, 3>: lane = index bits 3..7), so a warp-wide 16-byte load covers
// 512 contiguous bytes instead of touching 32 lines; bits 0..2 are transformed there, then
// one warp-local transpose through shared memory gives the contiguous layout of Direct,
// which goes on from bit 3. Measured 2-5% faster than Direct: the loads were not what
// bounds it (docs/cuda.md). Needs whole warps per row (cols % (32 kV) == 0) and p >= 128
// (the transpose buffer exists), or p = 1: then nothing is transposed and the codes are
// stored from the load's layout (kFlat below).
enum RegsMode { kDirect = 0, kStaged = 1, kDirectL2 = 2, kCoalesced = 3 };

__device__ __forceinline__ void prefetch_l2(const void* p, uint32_t bytes) {
  asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(p), "r"(bytes) : "memory");
}

template <typename T, int BITS, int N, int MODE>
__global__ void __launch_bounds__(kMaxThreads, 1)
    hadamard_quant_regs_kernel(const T* __restrict__ x, int64_t rows, int cols, int tr_count, int tr_pad,
                               int rows_per_block, int tbuf_floats, int stage_bytes, float inv_sqrt_p,
                               float clip_ratio, uint8_t* __restrict__ q, float* __restrict__ scales,
                               __half* __restrict__ scales_h, bool even_odd, float rms_eps) {
  using P = Plan<N>;
  constexpr bool STAGED = MODE == kStaged;
  constexpr int kUnits = kV * static_cast<int>(sizeof(T)) / 16;  // 16-byte units per thread
  extern __shared__ float4 smem4[];
  __shared__ uint32_t red[2][kMaxThreads / 32];
  __shared__ float red_ss[2][kMaxThreads / 32];
  const int rg = threadIdx.x / tr_pad, tr = threadIdx.x - rg * tr_pad;
  const bool fold_rms = rms_eps >= 0.0f;  // uniform: the sums below cost nothing when off
  // The input's sum of squares (fold_rms): one FP32 fma chain per thread, taken on the
  // loaded values before any butterfly.
  auto sum_squares = [&](const float (&v)[kV]) {
    float ss = 0.0f;
    if (fold_rms)
#pragma unroll
      for (int i = 0; i < kV; ++i) ss = __fmaf_rn(v[i], v[i], ss);
    return ss;
  };
  float* tb = reinterpret_cast<float*>(smem4) + rg * tbuf_floats;
  uint4* stage = reinterpret_cast<uint4*>(reinterpret_cast<char*>(smem4) +
                                          static_cast<size_t>(rows_per_block) * tbuf_floats * sizeof(float) +
                                          static_cast<size_t>(rg) * stage_bytes);
  const bool warp_local = tr_pad <= 32;
  const int units = cols * static_cast<int>(sizeof(T)) / 16;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * rows_per_block;
  auto group_sync = [&]() {
    if (STAGED || !warp_local) {
      __syncthreads();
    } else {
      __syncwarp();
    }
  };
  auto prefetch = [&](int64_t r) {
    if (r < rows) {
      const uint4* src = reinterpret_cast<const uint4*>(x + r * cols);
      for (int u = tr; u < units; u += tr_pad)
        cp_async16(smem_addr(stage + u + static_cast<int>(static_cast<unsigned>(u) / kUnits)), src + u, true);
    }
    cp_async_commit();
  };

  int64_t row0 = static_cast<int64_t>(blockIdx.x) * rows_per_block;
  if constexpr (STAGED) prefetch(row0 + rg);
  for (int par = 0; row0 < rows; row0 += stride, par ^= 1) {
    const int64_t row = row0 + rg;
    const bool active = row < rows && tr < tr_count;
    float v[kV];
    float ss = 0.0f;
    if constexpr (STAGED) {
      cp_async_wait<0>();
      __syncthreads();  // the group's row landed; every thread's previous reads are done
      if (active) {
        uint4 raw[kUnits];
#pragma unroll
        for (int c = 0; c < kUnits; ++c) raw[c] = stage[tr * (kUnits + 1) + c];
        unpack_units<T>(raw, v);
        ss = sum_squares(v);
      }
    } else if constexpr (MODE == kCoalesced) {
      static_assert(N >= 7 || N == 0, "the coalesced load needs the transpose buffer (p >= 128), or no rotation");
      // Whole warps per row (coalesced_ok): `active` is uniform across each warp, and
      // the previous row's reads of tb ended before its maximum's __syncthreads.
      if (active) {
        constexpr int kLineUnits = 8 * static_cast<int>(sizeof(T)) / 16;  // 16-byte units per line
        const T* src = x + row * cols + line_base<8, 3>(tr);
        uint4 raw[kUnits];
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
          for (int u = 0; u < kLineUnits; ++u)
            raw[j * kLineUnits + u] = __ldg(reinterpret_cast<const uint4*>(src + (j << 8)) + u);
        unpack_units<T>(raw, v);  // v[e + 8 j] = index line_base | e | j << 8
        ss = sum_squares(v);
        if constexpr (N > 0) {
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            float* w = v + 8 * j;
            butterflies<3>(w, 3);
          }
          transfer<8, 3, true>(tb, tr, v);
          __syncwarp();
          transfer<6, 0, false>(tb, tr, v);  // 64 contiguous values, bits 0..2 done
        }
      }
    } else {
      if (N > 6 && warp_local) __syncwarp();  // the previous row's reads of tb are done
      if (MODE == kDirectL2 && tr == 0 && row + stride < rows)
        prefetch_l2(x + (row + stride) * cols, static_cast<uint32_t>(cols * sizeof(T)));
      if (active) {
        const uint4* src = reinterpret_cast<const uint4*>(x + row * cols) + tr * kUnits;
        uint4 raw[kUnits];
#pragma unroll
        for (int c = 0; c < kUnits; ++c) raw[c] = __ldg(src + c);
        unpack_units<T>(raw, v);
        ss = sum_squares(v);
      }
    }
    if (active) line_stages<1, 6, (N < 6 ? N : 6), (MODE == kCoalesced ? 3 : 0)>(v);
    if constexpr (P::kPhases > 1) {
      if (active) transfer<6, 0, true>(tb, tr, v);
      group_sync();
      if constexpr (STAGED) prefetch(row + stride);
      if (active) {
        transfer<6, P::kG2, false>(tb, tr, v);
        line_stages<(kV >> P::kG2), P::kG2, P::kG2>(v);
      }
      if constexpr (P::kPhases > 2) {
        if (active) transfer<6, P::kG2, true>(tb, tr, v);  // back where this thread read them
        group_sync();
        if (active) {
          transfer<P::kB3, 3, false>(tb, tr, v);
          line_stages<(kV >> 3), 3, 3>(v);
        }
      }
    }

    // max|y| = max|v| / sqrt(p) (rounding is monotonic); max.NaN keeps a NaN, whose
    // bit pattern, like infinity's, exceeds every finite one.
    float m = 0.0f;
    if (active)
#pragma unroll
      for (int i = 0; i < kV; ++i) m = max_abs_nan(m, v[i]);
    uint32_t mb = __float_as_uint(m);
    if (warp_local) {
      for (int off = tr_pad / 2; off > 0; off /= 2) {
        mb = max(mb, __shfl_xor_sync(0xffffffffu, mb, off));
        if (fold_rms) ss += __shfl_xor_sync(0xffffffffu, ss, off);
      }
      if constexpr (STAGED && P::kPhases == 1) {
        __syncthreads();  // every thread has read its staged values
        prefetch(row + stride);
      }
    } else {
#pragma unroll
      for (int off = 16; off > 0; off /= 2) {
        mb = max(mb, __shfl_xor_sync(0xffffffffu, mb, off));
        if (fold_rms) ss += __shfl_xor_sync(0xffffffffu, ss, off);
      }
      if ((threadIdx.x & 31) == 0) red[par][threadIdx.x / 32] = mb, red_ss[par][threadIdx.x / 32] = ss;
      __syncthreads();
      if constexpr (STAGED && P::kPhases == 1) prefetch(row + stride);
      mb = 0, ss = 0.0f;
      const int w0 = rg * (tr_pad / 32);
      for (int w = 0; w < tr_pad / 32; ++w) {
        mb = max(mb, red[par][w0 + w]);
        if (fold_rms) ss += red_ss[par][w0 + w];
      }
    }
    if (!active) continue;

    constexpr float qmax = static_cast<float>((1 << (BITS - 1)) - 1);
    const float amax = N > 0 ? __fmul_rn(__uint_as_float(mb), inv_sqrt_p) : __uint_as_float(mb);
    const bool bad = !(amax <= FLT_MAX);
    const float s = bad ? __int_as_float(0x7fc00000) : __fdiv_rn(__fmul_rn(clip_ratio, amax), qmax);
    if (tr == 0) {
      const float so = fold_rms ? __fmul_rn(s, rsqrtf(__fdiv_rn(ss, static_cast<float>(cols)) + rms_eps)) : s;
      scales[row] = so;
      if (scales_h != nullptr) scales_h[row] = __float2half_rn(so);
    }
    const bool encode = !bad && s != 0.0f;
    const bool fast = encode && s > 1e-30f && s < 1e30f;
    // p = 1 under Coalesced (kFlat): no rotation, so the codes are made and stored in the
    // load's layout <8, 3>, where a warp's stores cover contiguous bytes (from the
    // contiguous layout of Direct each lane writes its own 32-64 bytes, a warp's store
    // touching 32 sectors: measured 0.9 TB/s for 32768 x 8192 FP16 rows on an H100).
    constexpr bool kFlat = MODE == kCoalesced && N == 0;
    constexpr int kFB = kFlat ? 8 : P::kFinalB, kFG = kFlat ? 3 : P::kFinalG;
    constexpr bool kPow2 = N % 2 == 0;
    uint32_t words[kV * BITS / 32];
    bool near = !fast;
    if (fast) {
      const float r = __frcp_rn(s);
      if (clip_ratio < 1.0f) {
        quantize_fast<BITS, kFB, kFG, true, kPow2>(v, inv_sqrt_p, r, words, near);
      } else {
        quantize_fast<BITS, kFB, kFG, false, kPow2>(v, inv_sqrt_p, r, words, near);
      }
    }
    if (near) quantize_exact<BITS, kFB, kFG>(v, N > 0, inv_sqrt_p, s, encode, words);
    if (even_odd) {
      constexpr int L = kV >> kFG, kWpj = L * BITS / 32;
#pragma unroll
      for (int e = 0; e < (1 << kFG); ++e)
        store_even_odd<BITS>(q + row * cols, line_base<kFB, kFG>(tr) + (e << kFB), words + e * kWpj, kWpj);
    } else {
      store_codes<BITS, kFB, kFG>(q + row * (cols / (8 / BITS)), tr, words);
    }
  }
  if constexpr (STAGED) cp_async_wait<0>();
}

int next_pow2(int n) {
  int p = 1;
  while (p < n) p *= 2;
  return p;
}

struct RegsGeometry {
  int tr_count, tr_pad, rows_per_block, tbuf_floats, stage_bytes;
  size_t smem;
};

RegsGeometry regs_geometry(int cols, int log2p, size_t elem_bytes, bool staged) {
  RegsGeometry g{};
  g.tr_count = cols / kV;
  g.tr_pad = g.tr_count <= 32 ? next_pow2(g.tr_count) : (g.tr_count + 31) / 32 * 32;
  g.rows_per_block = g.tr_pad >= 64 ? 1 : 128 / g.tr_pad;
  g.tbuf_floats = log2p > 6 ? (pad_idx(cols - 1) + 4) / 4 * 4 : 0;
  const int units = static_cast<int>(cols * elem_bytes / 16), per_thread = static_cast<int>(kV * elem_bytes / 16);
  g.stage_bytes = staged ? (units + units / per_thread) * 16 : 0;
  g.smem = static_cast<size_t>(g.rows_per_block) * (static_cast<size_t>(g.tbuf_floats) * 4 + g.stage_bytes);
  return g;
}

constexpr size_t kMaxDynamicSmem = 227 * 1024 - 256;  // sm_90 opt-in limit, less the static part

template <typename T, int BITS, int N, int MODE>
cudaError_t launch_regs(const T* x, int64_t rows, int cols, float clip, uint8_t* q, float* scales, __half* scales_h,
                        bool even_odd, float rms_eps, cudaStream_t stream) {
  static ResidentBlocksCache cache;
  auto kernel = hadamard_quant_regs_kernel<T, BITS, N, MODE>;
  const RegsGeometry g = regs_geometry(cols, N, sizeof(T), MODE == kStaged);
  const int threads = g.tr_pad * g.rows_per_block;
  ResidentBlocks rb;
  if (const cudaError_t err = cache.get(kernel, threads, g.smem, rb); err != cudaSuccess) return err;
  const int per_sm = rb.per_sm, sms = rb.sms;
  if (per_sm < 1) return cudaErrorInvalidConfiguration;
  const int64_t groups = (rows + g.rows_per_block - 1) / g.rows_per_block;
  const int64_t blocks = std::min<int64_t>(groups, static_cast<int64_t>(per_sm) * sms);
  const float inv_sqrt_p = static_cast<float>(1.0 / std::sqrt(static_cast<double>(int64_t{1} << N)));
  kernel<<<static_cast<unsigned>(blocks), threads, g.smem, stream>>>(x, rows, cols, g.tr_count, g.tr_pad,
                                                                     g.rows_per_block, g.tbuf_floats, g.stage_bytes,
                                                                     inv_sqrt_p, clip, q, scales, scales_h, even_odd,
                                                                     rms_eps);
  return cudaGetLastError();
}

template <typename T, int BITS, int MODE, int... Ns>
cudaError_t launch_regs_n(int log2p, const T* x, int64_t rows, int cols, float clip, uint8_t* q, float* scales,
                          __half* scales_h, bool even_odd, float rms_eps, cudaStream_t stream,
                          std::integer_sequence<int, Ns...>) {
  cudaError_t err = cudaErrorInvalidValue;
  ((log2p == Ns
        ? (err = launch_regs<T, BITS, Ns, MODE>(x, rows, cols, clip, q, scales, scales_h, even_odd, rms_eps, stream), 0)
        : 0),
   ...);
  return err;
}

bool regs_ok(int64_t cols) { return cols % kV == 0; }
bool coalesced_ok(int64_t cols, int log2p) { return cols % (32 * kV) == 0 && (log2p >= 7 || log2p == 0); }
bool staged_ok(int64_t cols, int log2p, size_t elem_bytes) {
  return regs_ok(cols) && regs_geometry(static_cast<int>(cols), log2p, elem_bytes, true).smem <= kMaxDynamicSmem;
}

int log2_of(int64_t p) {
  int n = 0;
  while ((int64_t{1} << n) < p) ++n;
  return n;
}

// What Auto runs: Staged where a block holds a long row (1-2 rows per SM, so the next
// row's load has to overlap this one's arithmetic), DirectL2 otherwise (4-8 rows per
// SM hide most of the latency; the L2 prefetch the rest).
// Measured on the H200 (docs/cuda.md, cuda_gemm_bench --hq-variants): one row per block
// (Legacy) wins from 2 to 16 rows (5.8-8.9 vs 7.4-9.6 us: the register kernels put a
// group of rows in one block, so few blocks run); one row and 2048+ rows go to the
// register kernels, long rows staged.
// Coalesced where Direct would run and it can (2026-12-04, `docs/results/2026-12-04-h200-hq-coalesced/`:
// 2-5% less time than Direct at 2048 and 8192 rows of 4096 and 8192 values; against Staged on
// the longer rows it was even or slower, so those stay Staged).
HadamardQuantVariant auto_variant(int64_t rows, int64_t cols, int64_t p, size_t elem_bytes) {
  if (!regs_ok(cols) || (rows > 1 && rows < 128)) return HadamardQuantVariant::Legacy;
  if (cols > 8192 && staged_ok(cols, log2_of(p), elem_bytes)) return HadamardQuantVariant::Staged;
  if (rows == 1) return HadamardQuantVariant::DirectL2;
  return coalesced_ok(cols, log2_of(p)) ? HadamardQuantVariant::Coalesced : HadamardQuantVariant::Direct;
}

// Legacy's RMS fold: the FP16 copy of the folded scales.
__global__ void scales_to_half_kernel(const float* __restrict__ s, int64_t rows, __half* __restrict__ h) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < rows) h[i] = __float2half_rn(s[i]);
}
cudaError_t scales_to_half(const float* s, int64_t rows, __half* h, cudaStream_t stream) {
  scales_to_half_kernel<<<static_cast<unsigned>((rows + 255) / 256), 256, 0, stream>>>(s, rows, h);
  return cudaGetLastError();
}

template <typename T, int BITS>
cudaError_t launch(const T* x, int64_t rows, int cols, int p, float clip, uint8_t* q, float* scales,
                   __half* scales_h, bool even_odd, float rms_eps, cudaStream_t stream, HadamardQuantVariant variant) {
  const int log2p = log2_of(p);
  if (variant == HadamardQuantVariant::TensorCore) {
    if constexpr (std::is_same_v<T, __half>) {
      if (detail::hadamard_quant_tc_takes(cols, p, BITS, false, even_odd, rms_eps >= 0.0f))
        return detail::hadamard_quant_tc(x, rows, cols, p, BITS, clip, even_odd, q, scales, scales_h, stream);
    }
    variant = HadamardQuantVariant::Auto;
  }
  if (variant == HadamardQuantVariant::Auto) variant = auto_variant(rows, cols, p, sizeof(T));
  if (variant == HadamardQuantVariant::Staged && !staged_ok(cols, log2p, sizeof(T)))
    variant = HadamardQuantVariant::Direct;
  if (variant == HadamardQuantVariant::Coalesced && !coalesced_ok(cols, log2p))
    variant = HadamardQuantVariant::Direct;
  if ((variant == HadamardQuantVariant::Direct || variant == HadamardQuantVariant::DirectL2) && !regs_ok(cols))
    variant = HadamardQuantVariant::Legacy;
  constexpr auto kNs = std::make_integer_sequence<int, 16>{};
  switch (variant) {
    case HadamardQuantVariant::Staged:
      return launch_regs_n<T, BITS, kStaged>(log2p, x, rows, cols, clip, q, scales, scales_h, even_odd, rms_eps, stream,
                                                kNs);
    case HadamardQuantVariant::DirectL2:
      return launch_regs_n<T, BITS, kDirectL2>(log2p, x, rows, cols, clip, q, scales, scales_h, even_odd, rms_eps, stream,
                                                kNs);
    case HadamardQuantVariant::Direct:
      return launch_regs_n<T, BITS, kDirect>(log2p, x, rows, cols, clip, q, scales, scales_h, even_odd, rms_eps, stream,
                                                kNs);
    case HadamardQuantVariant::Coalesced:
      return launch_regs_n<T, BITS, kCoalesced>(log2p, x, rows, cols, clip, q, scales, scales_h, even_odd, rms_eps, stream,
                                                   std::integer_sequence<int, 0, 7, 8, 9, 10, 11, 12, 13, 14, 15>{});
    default: {
      // The one-block-per-row kernel has no sums of squares: the fold is a second pass.
      cudaError_t err = launch_legacy<T, BITS>(x, rows, cols, p, clip, q, scales, scales_h, even_odd, stream);
      if constexpr (std::is_same_v<T, __half>) {
        if (err == cudaSuccess && rms_eps >= 0.0f) {
          err = rows_scale_inv_rms(x, rows, cols, rms_eps, scales, stream);
          if (err == cudaSuccess && scales_h != nullptr) err = scales_to_half(scales, rows, scales_h, stream);
        }
      }
      return err;
    }
  }
}

template <typename T>
cudaError_t dispatch(const T* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip, uint8_t* q,
                     float* scales, __half* scales_h, cudaStream_t stream, HadamardQuantVariant variant,
                     IntGemmActLayout layout = IntGemmActLayout::Standard, float rms_eps = -1.0f) {
  const bool p_ok = p > 0 && (p & (p - 1)) == 0 && cols % p == 0;
  if (rows < 0 || rows > 0x7fffffff || cols < kPerThread || cols > 32768 ||
      cols % kPerThread != 0 || !p_ok || (bits != 4 && bits != 8) || !(clip > 0.0f) || !std::isfinite(clip) ||
      x == nullptr || q == nullptr || scales == nullptr || reinterpret_cast<uintptr_t>(x) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(q) % 16 != 0 || std::isnan(rms_eps) || std::isinf(rms_eps))
    return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  const int c = static_cast<int>(cols), pp = static_cast<int>(p);
  const bool even_odd = layout == IntGemmActLayout::Int8EvenOdd;
  return bits == 4 ? launch<T, 4>(x, rows, c, pp, clip, q, scales, scales_h, even_odd, rms_eps, stream, variant)
                   : launch<T, 8>(x, rows, c, pp, clip, q, scales, scales_h, even_odd, rms_eps, stream, variant);
}

}  // namespace

cudaError_t hadamard_quant_rows(const __half* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip_ratio,
                                uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream) {
  return dispatch(x, rows, cols, p, bits, clip_ratio, q, scales, scales_h, stream, HadamardQuantVariant::Auto);
}

cudaError_t hadamard_quant_rows(const float* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip_ratio,
                                uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream) {
  return dispatch(x, rows, cols, p, bits, clip_ratio, q, scales, scales_h, stream, HadamardQuantVariant::Auto);
}

cudaError_t hadamard_quant_rows(const __half* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip_ratio,
                                uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream,
                                HadamardQuantVariant variant) {
  return dispatch(x, rows, cols, p, bits, clip_ratio, q, scales, scales_h, stream, variant);
}

cudaError_t hadamard_quant_rows(const float* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip_ratio,
                                uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream,
                                HadamardQuantVariant variant) {
  return dispatch(x, rows, cols, p, bits, clip_ratio, q, scales, scales_h, stream, variant);
}

cudaError_t hadamard_quant_rows(const __half* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip_ratio,
                                uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream,
                                HadamardQuantVariant variant, IntGemmActLayout layout) {
  return dispatch(x, rows, cols, p, bits, clip_ratio, q, scales, scales_h, stream, variant, layout);
}

cudaError_t hadamard_quant_rows(const float* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip_ratio,
                                uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream,
                                HadamardQuantVariant variant, IntGemmActLayout layout) {
  return dispatch(x, rows, cols, p, bits, clip_ratio, q, scales, scales_h, stream, variant, layout);
}

cudaError_t hadamard_quant_rows(const __half* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip_ratio,
                                uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream,
                                HadamardQuantVariant variant, IntGemmActLayout layout, const RmsFold& fold) {
  if (!(fold.eps > 0.0f)) return cudaErrorInvalidValue;  // 0: an all-zero row's scale would be 0 x inf
  return dispatch(x, rows, cols, p, bits, clip_ratio, q, scales, scales_h, stream, variant, layout, fold.eps);
}

HadamardQuantVariant hadamard_quant_auto_variant(int64_t rows, int64_t cols, int64_t p, bool fp32_input) {
  return auto_variant(rows, cols, p, fp32_input ? 4 : 2);
}

bool hadamard_quant_is_exact(HadamardQuantVariant variant, int64_t cols, int64_t p, int bits, bool fp32_input,
                             IntGemmActLayout layout, bool rms_fold) {
  return variant != HadamardQuantVariant::TensorCore ||
         !detail::hadamard_quant_tc_takes(cols, p, bits, fp32_input, layout == IntGemmActLayout::Int8EvenOdd, rms_fold);
}

const char* hadamard_quant_variant_name(HadamardQuantVariant v) {
  switch (v) {
    case HadamardQuantVariant::Auto: return "auto";
    case HadamardQuantVariant::Legacy: return "legacy";
    case HadamardQuantVariant::Direct: return "direct";
    case HadamardQuantVariant::Staged: return "staged";
    case HadamardQuantVariant::DirectL2: return "direct_l2";
    case HadamardQuantVariant::Coalesced: return "coalesced";
    case HadamardQuantVariant::TensorCore: return "tensor_core";
  }
  return "?";
}

std::optional<HadamardQuantVariant> hadamard_quant_variant_from_name(std::string_view name) {
  for (HadamardQuantVariant v : kHadamardQuantVariants)
    if (name == hadamard_quant_variant_name(v)) return v;
  return std::nullopt;
}

}  // namespace quarot::cuda
