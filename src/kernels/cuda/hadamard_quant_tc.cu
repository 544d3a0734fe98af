#include "kernels/cuda/hadamard_quant_tc.cuh"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "kernels/cuda/mma_f16.cuh"
#include "kernels/cuda/quant_code.cuh"
#include "kernels/cuda/resident_blocks.h"
#include "kernels/cuda/smem_async.cuh"

namespace quarot::cuda::detail {
namespace {

// A p-block is an R x C FP16 matrix (value C i + j at row i, column j): C = 64 and
// R = p / 64 for p >= 1024, R = 16 and C = p / 16 for p = 256, 512. The row sits in shared
// memory as it is in global memory, in 128-byte lines of eight 16-byte chunks XOR-swizzled
// by the line's low 3 bits, so the 8 addresses of an ldmatrix phase fall into 8 different
// bank groups where they are 128 bytes apart. A warp's unit of work is 1024 consecutive
// output values: a 16-row stripe of one block (C = 64), or 64 / C whole blocks side by side
// (C < 64; a row's last unit may hold fewer, the rest of its view zero).
constexpr int kUnitValues = 16 * 64;
constexpr int kMaxWarps = 16;
// Two units per warp hold 64 Z values per thread. Past 12 warps a scheduler holds 4 of
// them, so 128 registers per thread is the limit: enough for p <= 4096 (4 bytes spilled
// at p = 4096), not for p = 8192 (300 bytes), which therefore takes one unit per warp
// only. One unit per warp is held to 80 registers (p <= 4096; the packed int4 kernels
// spill nothing, some 8-bit and even/odd ones 16 bytes): the kernel waits on latency
// (Nsight Compute, H100, 8192 x 4096: half the issue slots busy at 20 warps per SM), and
// 80 instead of 96 registers lets 6 blocks of 4 warps share an SM instead of 5.
constexpr int kMaxWarpsTwoUnits = 14;
constexpr uint32_t kPlusOne = 0x3C00u, kMinusOne = 0xBC00u;  // FP16 +1, -1
constexpr uint32_t kNegate = 0x80008000u;                    // flips both halves' signs

// Sylvester's H_16[r][c] = (-1)^popcount(r & c) as FP16, two entries per register.
__device__ __forceinline__ uint32_t h16(int r, int c) { return (__popc(r & c) & 1) ? kMinusOne : kPlusOne; }
__device__ __forceinline__ uint32_t h16_pair(int r0, int c0, int r1, int c1) {
  return h16(r0, c0) | (h16(r1, c1) << 16);
}

// Byte offset in the staged row of the 16-byte chunk holding values v .. v + 7.
__device__ __forceinline__ uint32_t staged_chunk(int v) {
  const int line = v >> 6;
  return static_cast<uint32_t>(line * 128 + ((((v >> 3) & 7) ^ (line & 7)) << 4));
}

// Position of value v (even) and v + 1 in IntGemmActLayout::Int8EvenOdd: each 32 values as
// their 16 even then their 16 odd indices, one byte each.
__host__ __device__ constexpr int even_odd_pos(int v) { return (v & ~31) + ((v & 31) >> 1); }

// One block per row at a time over a persistent grid, the next row copied in (cp.async)
// while this one is transformed. Warp w takes units w, w + W, ... (U of them); each unit,
// as a 16 x 64 view (C = 64: rows of one block; C < 64: the blocks' rows side by side):
//   P = H_R[stripe] X          R / 16 k-steps x 8 n-tiles, H_R's 16 x 16 blocks are +-H_16
//   hi, lo = split(P * 2^e)    the C fragments are the next A fragments (no shuffle)
//   Z = (lo + hi) H_C          per block C / 16 k-steps x C / 8 n-tiles x 2, H_C's blocks
//                              +-H_16 halves
// Z stays in registers until the row's max is known (one barrier), then the codes go out
// through a per-warp staging buffer so each warp's global stores are 16 contiguous bytes
// per lane.
template <int C, int R, int U, int BITS, bool kClamp, bool kEvenOdd>
__global__ void __launch_bounds__((U == 1 ? kMaxWarps : kMaxWarpsTwoUnits) * 32, 1)
    __maxnreg__(U == 1 && R <= 64 ? 80 : 128)
        hadamard_quant_tc_kernel(const __half* __restrict__ x, int64_t rows, int cols, float inv_sqrt_p, float clip,
                             uint8_t* __restrict__ q, float* __restrict__ scales, __half* __restrict__ scales_h) {
  static_assert((C == 64 && R % 16 == 0) || ((C == 16 || C == 32) && R == 16), "p = R C as documented");
  constexpr int kP = R * C;
  constexpr int kStripes = R / 16;  // per block (C = 64)
  constexpr int kBlocksPerUnit = C == 64 ? 1 : 64 / C;
  constexpr int kTiles = C / 8, kKs = C / 16;        // a block's n-tiles and k-steps in the second product
  constexpr int kStoredBits = kEvenOdd ? 8 : BITS;  // the even/odd layout: a byte per code
  constexpr int kUnitBytes = kUnitValues * kStoredBits / 8;
  extern __shared__ __align__(128) uint8_t smem[];
  __shared__ uint32_t red[kMaxWarps];
  const int warps = static_cast<int>(blockDim.x) / 32;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) & 31;
  const int g = lane >> 2, t = lane & 3;
  const int units = (cols + kUnitValues - 1) / kUnitValues;
  const int row_bytes = units * kUnitValues * 2;  // a row's staging buffer; past cols: zero
  uint8_t* const stage = smem + 2 * row_bytes + warp * kUnitBytes;

  // H_16 as an A fragment (rows g, g + 8; columns 2t.., 2t + 8..), and its two 8-column
  // halves as B fragments (k = 2t.., 2t + 8..; column g): H_16 is symmetric.
  const uint32_t ha[4] = {h16_pair(g, 2 * t, g, 2 * t + 1), h16_pair(g + 8, 2 * t, g + 8, 2 * t + 1),
                          h16_pair(g, 2 * t + 8, g, 2 * t + 9), h16_pair(g + 8, 2 * t + 8, g + 8, 2 * t + 9)};
  uint32_t hb[2][2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    hb[h][0] = h16_pair(2 * t, 8 * h + g, 2 * t + 1, 8 * h + g);
    hb[h][1] = h16_pair(2 * t + 8, 8 * h + g, 2 * t + 9, 8 * h + g);
  }
  // ldmatrix.x4.trans: lane l addresses row l & 7 of matrix l >> 3; matrices 0, 1 are
  // k rows 0-7, 8-15 of n-tile 2m, matrices 2, 3 the same of n-tile 2m + 1. With C = 64
  // those are 128-byte lines (offsets fixed per lane); with C < 64 they depend on the unit
  // (computed where the product runs).
  const int lrow = ((lane >> 3) & 1) * 8 + (lane & 7);
  uint32_t loff[4];
#pragma unroll
  for (int m = 0; m < 4; ++m) loff[m] = lrow * 128 + (((2 * m + (lane >> 4)) ^ (lane & 7)) << 4);
  // The view's tail past the row's end, zero in both buffers (never copied over; the
  // first row's barrier publishes it).
  for (int i = static_cast<int>(threadIdx.x); i < 2 * (row_bytes / 16 - cols / 8); i += static_cast<int>(blockDim.x))
    *reinterpret_cast<uint4*>(smem + (i & 1) * row_bytes + staged_chunk(cols + 8 * (i >> 1))) = make_uint4(0, 0, 0, 0);

  auto prefetch = [&](int64_t r, int buf) {
    const __half* src = x + r * cols;
    const uint32_t base = smem_addr(smem + buf * row_bytes);
    for (int c = static_cast<int>(threadIdx.x); c < cols / 8; c += static_cast<int>(blockDim.x))
      cp_async16(base + staged_chunk(8 * c), src + static_cast<int64_t>(c) * 8, true);
    cp_async_commit();
  };

  int buf = 0;
  int64_t row = blockIdx.x;
  if (row < rows) prefetch(row, 0);
  for (; row < rows; row += gridDim.x, buf ^= 1) {
    cp_async_wait<0>();
    __syncthreads();  // this row is in shared memory; every read of the other buffer is done
    if (row + gridDim.x < rows) prefetch(row + gridDim.x, buf ^ 1);
    const uint32_t xs = smem_addr(smem + buf * row_bytes);

    float z[U][8][4];
    float unscale[U];  // 2^-e of each unit
    uint32_t mb = 0;   // the row's max |Z| as bits (NaN's exceed every finite one)
#pragma unroll
    for (int j = 0; j < U; ++j) {
      const int unit = warp + j * warps;
      float acc[8][4];
#pragma unroll
      for (int n = 0; n < 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
      if constexpr (C == 64) {
        const int tile = unit / kStripes, stripe = unit % kStripes;
        const uint32_t tb = xs + tile * (R * 128);
#pragma unroll
        for (int kb = 0; kb < kStripes; ++kb) {
          const uint32_t sign = (__popc(stripe & kb) & 1) ? kNegate : 0u;
          const uint32_t a[4] = {ha[0] ^ sign, ha[1] ^ sign, ha[2] ^ sign, ha[3] ^ sign};
#pragma unroll
          for (int m = 0; m < 4; ++m) {
            uint32_t b[4];
            ldmatrix_x4_trans(b, tb + kb * 16 * 128 + loff[m]);
            mma_f16(acc[2 * m], a, b[0], b[1]);
            mma_f16(acc[2 * m + 1], a, b[2], b[3]);
          }
        }
      } else {
        // One k-step (R = 16): lane l's row k of the view's columns 8q .. 8q + 7 are
        // values C k + 8q % C of block unit * 64 / C + 8q / C.
#pragma unroll
        for (int m = 0; m < 4; ++m) {
          const int q = 2 * m + (lane >> 4), blk = unit * kBlocksPerUnit + (8 * q) / C;
          uint32_t b[4];
          ldmatrix_x4_trans(b, xs + staged_chunk(blk * kP + lrow * C + (8 * q) % C));
          // A copy: passing ha itself by reference put it in local memory (16 bytes of stack).
          const uint32_t a[4] = {ha[0], ha[1], ha[2], ha[3]};
          mma_f16(acc[2 * m], a, b[0], b[1]);
          mma_f16(acc[2 * m + 1], a, b[2], b[3]);
        }
      }
      // 2^e puts the stripe's max |P| in [2^14, 2^15): hi stays a normal FP16 number and
      // lo keeps the bits below it. A zero or non-finite stripe keeps e = 0 (NaN and
      // infinity flow on into Z and flag the row).
      const float pm = max_abs_nan_tree<32>(&acc[0][0]);
      const uint32_t pb = __reduce_max_sync(0xffffffffu, __float_as_uint(pm));
      int e = 0;
      if (pb != 0u && pb < 0x7f800000u) e = min(14 - (max(static_cast<int>(pb >> 23), 1) - 127), 126);
      const float up = __uint_as_float(static_cast<uint32_t>(127 + e) << 23);
      unscale[j] = __uint_as_float(static_cast<uint32_t>(127 - e) << 23);
      uint32_t ahi[4][4], alo[4][4];
#pragma unroll
      for (int kb = 0; kb < 4; ++kb)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int n = 2 * kb + (r >> 1), i = (r & 1) * 2;
          const float v0 = __fmul_rn(acc[n][i], up), v1 = __fmul_rn(acc[n][i + 1], up);
          const __half2 hi = __floats2half2_rn(v0, v1);
          const float2 hf = __half22float2(hi);
          ahi[kb][r] = *reinterpret_cast<const uint32_t*>(&hi);
          alo[kb][r] = pack_half2(__fsub_rn(v0, hf.x), __fsub_rn(v1, hf.y));
        }
#pragma unroll
      for (int n = 0; n < 8; ++n) {
        z[j][n][0] = z[j][n][1] = z[j][n][2] = z[j][n][3] = 0.0f;
        // n-tile n is local n-tile nl of the unit's block bb; that block's k-blocks are
        // bb C / 16 + kl. H_C = H_(C/16) (x) H_16: block (kl, nl) is H_(C/16)[kl][nl / 2]
        // times H_16's half nl % 2.
        const int bb = n / kTiles, nl = n % kTiles;
#pragma unroll
        for (int kl = 0; kl < kKs; ++kl) {
          const uint32_t sign = (__popc(kl & (nl >> 1)) & 1) ? kNegate : 0u;
          const uint32_t b0 = hb[nl & 1][0] ^ sign, b1 = hb[nl & 1][1] ^ sign;
          mma_f16(z[j][n], alo[bb * kKs + kl], b0, b1);  // the small parts first
          mma_f16(z[j][n], ahi[bb * kKs + kl], b0, b1);
        }
      }
      const float zm = max_abs_nan_tree<32>(&z[j][0][0]);
      mb = max(mb, __float_as_uint(__fmul_rn(zm, unscale[j])));  // exact: a power of two
    }
    mb = __reduce_max_sync(0xffffffffu, mb);
    if (lane == 0) red[warp] = mb;
    __syncthreads();
    mb = 0;
    for (int w = 0; w < warps; ++w) mb = max(mb, red[w]);

    // The scale as the CPU computes it from max|y| = max|Z| / sqrt(p) (rounding is monotonic).
    constexpr float qmax = static_cast<float>((1 << (BITS - 1)) - 1);
    constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23: rint into the low mantissa bits
    const float amax = __fmul_rn(__uint_as_float(mb), inv_sqrt_p);
    const bool bad = !(amax <= FLT_MAX);
    const float s = bad ? __int_as_float(0x7fc00000) : __fdiv_rn(__fmul_rn(clip, amax), qmax);
    if (threadIdx.x == 0) {
      scales[row] = s;
      if (scales_h != nullptr) scales_h[row] = __float2half_rn(s);
    }
    const bool encode = !bad && s != 0.0f;
    const bool fast = encode && s > 1e-30f && s < 1e30f;
    const float rcp = fast ? __frcp_rn(s) : 0.0f;
    uint8_t* const qrow = q + row * cols * kStoredBits / 8;
#pragma unroll
    for (int j = 0; j < U; ++j) {
      const float rr = __fmul_rn(__fmul_rn(rcp, inv_sqrt_p), unscale[j]);
      auto code = [&](float v) -> uint32_t {
        if (fast) {
          if constexpr (kClamp) {
            const float tq = fminf(fmaxf(__fmul_rn(v, rr), -qmax - 1.0f), qmax);
            return __float_as_uint(__fadd_rn(tq, kMagic));
          } else {
            return __float_as_uint(__fmaf_rn(v, rr, kMagic));
          }
        }
        // Scales outside [1e-30, 1e30] (their reciprocal may not be a normal float) or
        // no encoding at all (zero or non-finite row: codes 0).
        return encode ? quant_code_exact<BITS>(__fmul_rn(__fmul_rn(v, unscale[j]), inv_sqrt_p), s) : 0u;
      };
#pragma unroll
      for (int n = 0; n < 8; ++n) {
        const uint32_t c0 = code(z[j][n][0]), c1 = code(z[j][n][1]);
        const uint32_t c2 = code(z[j][n][2]), c3 = code(z[j][n][3]);
        // Row i (g, then g + 8) of n-tile n holds the unit's values bb p + C i + 8 nl + 2t, + 1:
        // the lane's part (C g + 2t) once, the rest immediates.
        const int bb = n / kTiles, nl = n % kTiles;
        if constexpr (kEvenOdd) {
          // The lane's and the constant parts add without a carry past 31 (2t + 8 nl % 32 <= 30,
          // and C g's low 5 bits are 0 or 16 with nl < 2), so their positions add too.
          uint8_t* const at = stage + even_odd_pos(g * C + 2 * t) + even_odd_pos(bb * kP + 8 * nl);
          at[0] = static_cast<uint8_t>(c0 & 0xFFu);
          at[16] = static_cast<uint8_t>(c1 & 0xFFu);
          at[8 * C] = static_cast<uint8_t>(c2 & 0xFFu);
          at[8 * C + 16] = static_cast<uint8_t>(c3 & 0xFFu);
        } else if constexpr (BITS == 4) {
          uint8_t* const at = stage + (g * C + 2 * t) / 2 + (bb * kP + 8 * nl) / 2;
          at[0] = static_cast<uint8_t>((c0 & 0xFu) | ((c1 & 0xFu) << 4));
          at[4 * C] = static_cast<uint8_t>((c2 & 0xFu) | ((c3 & 0xFu) << 4));
        } else {
          uint8_t* const at = stage + (g * C + 2 * t) + (bb * kP + 8 * nl);
          *reinterpret_cast<uint16_t*>(at) = static_cast<uint16_t>((c0 & 0xFFu) | ((c1 & 0xFFu) << 8));
          *reinterpret_cast<uint16_t*>(at + 8 * C) = static_cast<uint16_t>((c2 & 0xFFu) | ((c3 & 0xFFu) << 8));
        }
      }
      __syncwarp();
      const int unit = warp + j * warps;
      uint8_t* const dst = qrow + static_cast<int64_t>(unit) * kUnitBytes;
      const int bytes = min(kUnitBytes, (cols - unit * kUnitValues) * kStoredBits / 8);  // a row's last unit may be short
#pragma unroll
      for (int b = lane * 16; b < kUnitBytes; b += 32 * 16)
        if (b < bytes) *reinterpret_cast<uint4*>(dst + b) = *reinterpret_cast<const uint4*>(stage + b);
      __syncwarp();
    }
  }
}

struct TcShape {
  int units_per_warp = 0, warps = 0;
};

TcShape tc_shape(int64_t cols) {
  if (cols % 256 != 0 || cols > 32768) return {};
  const int units = static_cast<int>((cols + kUnitValues - 1) / kUnitValues);
  if (units <= kMaxWarps) return {1, units};
  if (units % 2 == 0 && units <= 2 * kMaxWarpsTwoUnits) return {2, units / 2};
  return {};
}

template <int C, int R, int U, int BITS, bool kClamp, bool kEvenOdd>
cudaError_t launch(const __half* x, int64_t rows, int cols, float clip, uint8_t* q, float* scales, __half* scales_h,
                   cudaStream_t stream, int warps) {
  static ResidentBlocksCache cache;
  auto kernel = hadamard_quant_tc_kernel<C, R, U, BITS, kClamp, kEvenOdd>;
  const int threads = 32 * warps;
  const size_t units = (static_cast<size_t>(cols) + kUnitValues - 1) / kUnitValues;
  const size_t smem = 4 * units * kUnitValues + static_cast<size_t>(warps) * kUnitValues * (kEvenOdd ? 8 : BITS) / 8;
  ResidentBlocks rb;
  if (const cudaError_t err = cache.get(kernel, threads, smem, rb); err != cudaSuccess) return err;
  if (rb.per_sm < 1) return cudaErrorInvalidConfiguration;
  const int64_t blocks = std::min<int64_t>(rows, static_cast<int64_t>(rb.per_sm) * rb.sms);
  const float inv_sqrt_p = static_cast<float>(1.0 / std::sqrt(static_cast<double>(R * C)));
  kernel<<<static_cast<unsigned>(blocks), threads, smem, stream>>>(x, rows, cols, inv_sqrt_p, clip, q, scales,
                                                                   scales_h);
  return cudaGetLastError();
}

template <int C, int R, int U, bool kEvenOdd>
cudaError_t launch_bits(const __half* x, int64_t rows, int cols, int bits, float clip, uint8_t* q, float* scales,
                        __half* scales_h, cudaStream_t stream, int warps) {
  // clip >= 1 keeps |y / s| <= qmax (up to rounding that rint absorbs): no clamp needed.
  const bool clamp = clip < 1.0f;
  if (bits == 4)
    return clamp ? launch<C, R, U, 4, true, kEvenOdd>(x, rows, cols, clip, q, scales, scales_h, stream, warps)
                 : launch<C, R, U, 4, false, kEvenOdd>(x, rows, cols, clip, q, scales, scales_h, stream, warps);
  return clamp ? launch<C, R, U, 8, true, kEvenOdd>(x, rows, cols, clip, q, scales, scales_h, stream, warps)
               : launch<C, R, U, 8, false, kEvenOdd>(x, rows, cols, clip, q, scales, scales_h, stream, warps);
}

template <int C, int R, int U>
cudaError_t launch_layout(const __half* x, int64_t rows, int cols, int bits, float clip, bool even_odd, uint8_t* q,
                          float* scales, __half* scales_h, cudaStream_t stream, int warps) {
  return even_odd ? launch_bits<C, R, U, true>(x, rows, cols, bits, clip, q, scales, scales_h, stream, warps)
                  : launch_bits<C, R, U, false>(x, rows, cols, bits, clip, q, scales, scales_h, stream, warps);
}

template <int C, int R>
cudaError_t launch_r(const __half* x, int64_t rows, int cols, int bits, float clip, bool even_odd, uint8_t* q,
                     float* scales, __half* scales_h, cudaStream_t stream) {
  const TcShape shape = tc_shape(cols);
  if constexpr (R > 64) {
    return launch_layout<C, R, 1>(x, rows, cols, bits, clip, even_odd, q, scales, scales_h, stream, shape.warps);
  } else {
    return shape.units_per_warp == 1
               ? launch_layout<C, R, 1>(x, rows, cols, bits, clip, even_odd, q, scales, scales_h, stream, shape.warps)
               : launch_layout<C, R, 2>(x, rows, cols, bits, clip, even_odd, q, scales, scales_h, stream, shape.warps);
  }
}

}  // namespace

bool hadamard_quant_tc_takes(int64_t cols, int64_t p, int bits, bool fp32_input, bool even_odd, bool rms_fold) {
  const bool p_ok = p == 256 || p == 512 || p == 1024 || p == 2048 || p == 4096 || p == 8192;
  const TcShape shape = tc_shape(cols);
  return p_ok && cols % p == 0 && shape.warps > 0 && (p <= 4096 || shape.units_per_warp == 1) &&
         (bits == 4 || bits == 8) && !fp32_input && !rms_fold;
}

cudaError_t hadamard_quant_tc(const __half* x, int64_t rows, int cols, int p, int bits, float clip, bool even_odd,
                              uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream) {
  switch (p) {
    case 256: return launch_r<16, 16>(x, rows, cols, bits, clip, even_odd, q, scales, scales_h, stream);
    case 512: return launch_r<32, 16>(x, rows, cols, bits, clip, even_odd, q, scales, scales_h, stream);
    case 1024: return launch_r<64, 16>(x, rows, cols, bits, clip, even_odd, q, scales, scales_h, stream);
    case 2048: return launch_r<64, 32>(x, rows, cols, bits, clip, even_odd, q, scales, scales_h, stream);
    case 4096: return launch_r<64, 64>(x, rows, cols, bits, clip, even_odd, q, scales, scales_h, stream);
    case 8192: return launch_r<64, 128>(x, rows, cols, bits, clip, even_odd, q, scales, scales_h, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace quarot::cuda::detail
