#pragma once
// Integer GEMMs on Hopper's int8 tensor cores (mma.sync m16n8k32, wgmma m64n128k32 and
// m64n256k32, s8.s8.s32), the products behind QuaRot's W4A4 / W4A8 / W8A8 linear layers:
//   acc[m, n] = sum_k qa[m, k] * qb[n, k]                     (exact, int32)
//   y[m, n]   = fp16( float(acc[m, n]) * (sa[m] * sb[n]) [+ float(residual[m, n])] )
// qa: activations [M, K], qb: weights [N, K] (an nn.Linear's [out, in]), both
// K-contiguous (qa in the order IntGemmArgs::act_layout names: k in order, or the
// even/odd int8 layout of the WgmmaRs path). int4 operands are packed two per byte, low nibble first (as
// hadamard_quant.cuh writes them), rows of K/2 bytes; int8 operands one per byte.
// The float arithmetic of the epilogue is exactly the expression above (product of
// the two scales first, then times the accumulator, then the residual, each rounded
// to float, one final round to FP16), so a host reference can reproduce y bit for bit.
//
// int4 values are widened in registers with a nibble shift: (byte & 0xF0) and
// (byte << 4) are int8 bytes holding 16 * q exactly, so the tensor cores see
// 16 * qa and/or 16 * qb and the kernels shift the exact int32 sums back before the
// epilogue. |16 q| <= 128 (and |int8 code| <= 128) keeps every int32 partial sum exact
// for K <= kIntGemmMaxK = 2^16, whatever the codes (2^16 * 128 * 128 = 2^30).
//
// Shapes (cudaErrorInvalidValue otherwise, nothing launched): M, N >= 1,
// K % 128 == 0, 128 <= K <= kIntGemmMaxK, every pointer 16-byte aligned; N % 2 == 0.
// residual may be null, or equal to y (the residual stream updated in place: each
// element is read and then written by the same thread). When acc_out is not null the kernels write the exact int32
// acc[m, n] there instead of y (the bit-exactness hook for tests).
// FP32 output (the CUDA backend's linear layers): when y_f32 is not null (and y,
// acc_out are null) the epilogue writes
//   y_f32[m, n] = float(acc[m, n]) * (sa[m] * sb[n]) [+ bias[n]]
// in FP32, each operation rounded to float: the CPU integer GEMM's epilogue
// (kernels/cpu/int_gemm.h, one block) bit for bit. y_f32 must be 8-byte aligned;
// residual is not used on this path.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace quarot::cuda {

// The largest K: at 2^17 codes of -8 (-128) on both sides would sum to exactly 2^31.
inline constexpr int64_t kIntGemmMaxK = 65536;
// The largest M and N: the kernels count tiles as (x + tile - 1) / tile in 32-bit ints
// (tiles of at most 256 rows), which must not wrap.
inline constexpr int64_t kIntGemmMaxRows = (int64_t{1} << 31) - 512;

enum class IntGemmKind { W4A4, W4A8, W8A8 };

// How qa holds the activation codes.
enum class IntGemmActLayout {
  Standard,    // as the kind stores them: int4 packed (W4A4) or int8, k in order
  Int8EvenOdd  // one int8 per code (W4A4's 4-bit codes too), each 32 k as their 16 even k
               // then their 16 odd k: what IntGemmPath::WgmmaRs reads (int4 weights only);
               // hadamard_quant_rows writes it on request
};

struct IntGemmArgs {
  IntGemmKind kind = IntGemmKind::W4A4;
  int64_t m = 0, n = 0, k = 0;
  const void* qa = nullptr;            // [M, K] int4 packed (W4A4) or int8
  const void* qb = nullptr;            // [N, K] int4 packed (W4A4, W4A8) or int8
  const float* sa = nullptr;           // [M] per-token scales
  const float* sb = nullptr;           // [N] per-output-channel scales
  const __half* residual = nullptr;    // [M, N] or null
  __half* y = nullptr;                 // [M, N]
  int32_t* acc_out = nullptr;          // [M, N]: raw sums instead of y, or null
  float* y_f32 = nullptr;              // [M, N]: FP32 output instead of y, or null
  const float* bias = nullptr;         // [N], FP32 output only, or null
  IntGemmActLayout act_layout = IntGemmActLayout::Standard;
  // WgmmaRs only: tokens per tile, 16, 64, 128 or 256 (0: the size M calls for). For
  // benchmarks and tests that time or check each; anything else is rejected.
  int rs_token_tile = 0;
  // The weights (qb) are not written by the kernel launched just before this one on the
  // stream (model weights uploaded at load time are not): the skinny (decode) path then
  // launches as a programmatic dependent and starts streaming them while that kernel
  // finishes; everything else it reads only once that kernel has completed. Opt-in: on
  // the H200 it speeds back-to-back decode products (4096x4096 M = 1: 5.86 -> 4.41 us) and
  // a decode layer step by 3%, not under CUDA graphs (docs/cuda.md). The CUDA backend
  // sets it: its weights are uploaded once, at pack time.
  bool weights_constant = false;
};

// Kernel families the dispatcher picks from; exposed so benchmarks can time each.
enum class IntGemmPath {
  Auto,        // the dispatcher's choice for the shape
  Skinny,      // M <= 64: weights streamed from memory into registers, K split across warps
  Tile64,      // 64 x 128 block tile, 4 warps
  Tile128,     // 128 x 128 block tile, 8 warps
  Tile128x256,  // 128 x 256 block tile, 8 warps
  Wgmma,        // 128 x 128 block tile, two warpgroups on wgmma (int4 weights: W4A4, W4A8);
                // widens and multiplies in turn, two blocks per multiprocessor
  WgmmaOverlap,  // the same, widening the next k-block while the tensor cores run, one
                 // block per multiprocessor (more registers); slower on the H200 (docs/cuda.md)
  WgmmaWs,       // warp-specialized: a producer warpgroup loads and widens k-blocks into a
                 // 4-stage ring, two consumer warpgroups run wgmma m64n256k32 on a 128 x 256
                 // tile (int4 weights: W4A4, W4A8)
  WgmmaRs        // warp-specialized, the weights wgmma's register operand (widened in
                 // registers), the activations copied by the TMA as int8 in the even/odd
                 // layout (IntGemmActLayout::Int8EvenOdd; int4 weights: W4A4, W4A8)
};

// Every path, in declaration order, and its name ("auto", "skinny", ..., "wgmma_rs").
inline constexpr IntGemmPath kIntGemmPaths[] = {IntGemmPath::Auto,        IntGemmPath::Skinny, IntGemmPath::Tile64,
                                                IntGemmPath::Tile128,     IntGemmPath::Tile128x256,
                                                IntGemmPath::Wgmma,       IntGemmPath::WgmmaOverlap,
                                                IntGemmPath::WgmmaWs,     IntGemmPath::WgmmaRs};
const char* int_gemm_path_name(IntGemmPath path);
// Whether `path` can run `kind` at all (the warpgroup paths widen int4 weights; the
// skinny path takes M <= 64).
bool int_gemm_path_supports(IntGemmPath path, IntGemmKind kind, int64_t m);
// The activation layout `path` reads (Auto: any; it follows args.act_layout).
IntGemmActLayout int_gemm_path_layout(IntGemmPath path);

// WgmmaWs and WgmmaRs build TMA descriptors through the driver (cuTensorMapEncodeTiled)
// and return cudaErrorNotSupported where that is missing; Auto then runs Wgmma instead of
// WgmmaWs, and int_gemm_preferred_layout never asks for the even/odd layout.
cudaError_t int_gemm(const IntGemmArgs& args, cudaStream_t stream, IntGemmPath path = IntGemmPath::Auto);

// The path int_gemm takes for this shape under IntGemmPath::Auto with activations in
// `layout` (Int8EvenOdd: always WgmmaRs).
IntGemmPath int_gemm_auto_path(IntGemmKind kind, int64_t m, int64_t n, int64_t k,
                               IntGemmActLayout layout = IntGemmActLayout::Standard);
// The activation layout that runs this shape fastest (what a caller quantizing the
// activations should write): Int8EvenOdd where WgmmaRs is the fastest path.
IntGemmActLayout int_gemm_preferred_layout(IntGemmKind kind, int64_t m, int64_t n, int64_t k);

}  // namespace quarot::cuda
