#pragma once
// Pieces the integer GEMM kernels share (int_gemm.cu, int_gemm_ws.cu): the kernel
// parameters, int4 widening, the epilogue that int_gemm.cuh's contract spells out,
// the grouped tile raster and the wgmma wrappers. Device code for sm_90a; internal
// to the library (not installed, not for callers).
#include <cuda.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/int_gemm.cuh"
#include "kernels/cuda/smem_async.cuh"

namespace quarot::cuda::int_gemm_detail {

// K values per pipeline step of every tiled kernel (K % kKBlock == 0 is the contract).
constexpr int kKBlock = 128;

// ---------------------------------------------------------------------------
// Register-level helpers.

// int4 -> int8 widening: a 32-bit word of 8 nibbles (k = 0..7, low nibble first)
// becomes two words of 4 int8 each holding 16 * q: `lo` the even k, `hi` the odd k.
// Which k a tensor-core lane sees is a permutation both operands share, so a dot
// product over it is unchanged.
__device__ __forceinline__ uint32_t nib_lo(uint32_t w) { return (w << 4) & 0xF0F0F0F0u; }
__device__ __forceinline__ uint32_t nib_hi(uint32_t w) { return w & 0xF0F0F0F0u; }
// The int8 bytes of the same k split: bytes 0, 2, 4, 6 and 1, 3, 5, 7 of x0:x1.
__device__ __forceinline__ uint32_t even_bytes(uint32_t x0, uint32_t x1) { return __byte_perm(x0, x1, 0x6420); }
__device__ __forceinline__ uint32_t odd_bytes(uint32_t x0, uint32_t x1) { return __byte_perm(x0, x1, 0x7531); }

__device__ __forceinline__ void mma_s8(int32_t (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Weights are read once per launch: keep them out of L1.
__device__ __forceinline__ uint4 ld_stream(const void* p) {
  uint4 r;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "l"(p));
  return r;
}

__host__ __device__ constexpr bool a_is_int4(IntGemmKind k) { return k == IntGemmKind::W4A4; }
__host__ __device__ constexpr bool b_is_int4(IntGemmKind k) { return k != IntGemmKind::W8A8; }
// log2 of the factor by which the widened operands inflate the sums (16 per int4 side).
__host__ __device__ constexpr int acc_shift(IntGemmKind k) { return k == IntGemmKind::W4A4 ? 8 : k == IntGemmKind::W4A8 ? 4 : 0; }

struct Params {
  int m, n, k;
  const uint8_t* qa;
  const uint8_t* qb;
  const float* sa;
  const float* sb;
  const __half* residual;
  __half* y;
  int32_t* acc_out;
  float* y_f32;
  const float* bias;
  int rs_tile = 0;                // IntGemmArgs::rs_token_tile
  bool weights_constant = false;  // IntGemmArgs::weights_constant
};

// The epilogue for two adjacent columns (col, col + 1) of one row, with the row's
// scale sa and the columns' scales sb0, sb1 already at hand (unused for acc_out).
template <int SHIFT>
__device__ __forceinline__ void store_pair_scaled(const Params& p, int row, int col, int32_t c0, int32_t c1, float sa,
                                                  float sb0, float sb1) {
  if (row >= p.m || col >= p.n) return;
  const int64_t idx = static_cast<int64_t>(row) * p.n + col;
  const int32_t v0 = c0 >> SHIFT, v1 = c1 >> SHIFT;  // exact: the sums are multiples of 2^SHIFT
  const bool two = col + 1 < p.n;
  if (p.acc_out != nullptr) {
    p.acc_out[idx] = v0;
    if (two) p.acc_out[idx + 1] = v1;
    return;
  }
  float y0 = __fmul_rn(static_cast<float>(v0), __fmul_rn(sa, sb0));
  float y1 = two ? __fmul_rn(static_cast<float>(v1), __fmul_rn(sa, sb1)) : 0.0f;
  if (p.y_f32 != nullptr) {
    if (p.bias != nullptr) {
      y0 = __fadd_rn(y0, p.bias[col]);
      if (two) y1 = __fadd_rn(y1, p.bias[col + 1]);
    }
    if (two) {
      *reinterpret_cast<float2*>(p.y_f32 + idx) = make_float2(y0, y1);
    } else {
      p.y_f32[idx] = y0;
    }
    return;
  }
  if (p.residual != nullptr) {
    y0 = __fadd_rn(y0, __half2float(p.residual[idx]));
    if (two) y1 = __fadd_rn(y1, __half2float(p.residual[idx + 1]));
  }
  if (two) {
    *reinterpret_cast<__half2*>(p.y + idx) = __floats2half2_rn(y0, y1);
  } else {
    p.y[idx] = __float2half_rn(y0);
  }
}

// The same, reading the scales from p.
template <int SHIFT>
__device__ __forceinline__ void store_pair(const Params& p, int row, int col, int32_t c0, int32_t c1) {
  if (row >= p.m || col >= p.n) return;
  if (p.acc_out != nullptr) return store_pair_scaled<SHIFT>(p, row, col, c0, c1, 0.0f, 0.0f, 0.0f);
  store_pair_scaled<SHIFT>(p, row, col, c0, c1, p.sa[row], p.sb[col], col + 1 < p.n ? p.sb[col + 1] : 0.0f);
}

// Byte offset of 16-byte chunk `chunk` of `row` in a tile of ROW_BYTES-byte rows (64:
// packed int4 k-blocks, 128: int8 ones), the chunks XOR-swizzled by row so 8 rows read
// or written together hit distinct banks (128: the wgmma / TMA 128-byte swizzle).
template <int ROW_BYTES>
__device__ __forceinline__ int swizzled(int row, int chunk) {
  if constexpr (ROW_BYTES == 64) {
    return row * 64 + ((chunk ^ ((row >> 1) & 3)) << 4);
  } else {
    return row * 128 + ((chunk ^ (row & 7)) << 4);
  }
}

// Grouped raster: blocks walk kGroup consecutive block rows per block column, so
// those rows' activations and the column's weights are read from L2 while they run.
struct TileCoord {
  int m0, n0;
};
template <int BM, int BN>
__device__ __forceinline__ TileCoord grouped_tile(int bid, int m, int n) {
  constexpr int kGroup = 8;
  const int tiles_m = (m + BM - 1) / BM, tiles_n = (n + BN - 1) / BN;
  const int group = bid / (kGroup * tiles_n);
  const int first_m = group * kGroup;
  const int group_m = min(tiles_m - first_m, kGroup);
  const int tile_m = first_m + (bid % (kGroup * tiles_n)) % group_m;
  const int tile_n = (bid % (kGroup * tiles_n)) / group_m;
  return {tile_m * BM, tile_n * BN};
}

// ---------------------------------------------------------------------------
// wgmma helpers (sm_90a).

__device__ __forceinline__ uint64_t wgmma_desc_sw128(uint32_t smem_byte_addr) {
  // start address, leading offset (unused for K-major swizzled tiles: 1), stride
  // offset 1024 bytes between 8-row groups, 128-byte swizzle.
  return (static_cast<uint64_t>((smem_byte_addr & 0x3FFFF) >> 4)) | (static_cast<uint64_t>(1) << 16) |
         (static_cast<uint64_t>(1024 >> 4) << 32) | (static_cast<uint64_t>(1) << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Pins the accumulators in place around the asynchronous products, so the compiler
// neither reads nor moves them while a wgmma is in flight.
template <int N>
__device__ __forceinline__ void fence_operands(int32_t (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+r"(d[i])::"memory");
}
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// ---------------------------------------------------------------------------
// TMA and mbarrier helpers of the warp-specialized kernels (int_gemm_ws.cu, int_gemm_rs.cu).

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.expect_tx.shared::cta.b64 state, [%0], %1;\n}\n" ::"r"(bar),
               "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.expect_tx.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}
// A 2-D box (x bytes along the row, y rows) of `map` into shared memory; completion
// counted in bytes on `bar`. Rows past the tensor's end arrive as zeros.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, int x, int y, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
          dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(x), "r"(y), "r"(bar)
      : "memory");
}

// Lets this warpgroup's warps hold more (inc) or fewer (dec) registers than the launch
// gave them: the producer hands its share to the consumers.
template <int REGS>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(REGS));
}
template <int REGS>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(REGS));
}

// Host side (int_gemm_ws.cu): the multiprocessor count (132 when it cannot be read),
// and a tensor map of a row-major byte matrix [rows, row_bytes] read in boxes of box_x
// bytes x box_y rows, shared memory swizzled by the copy in 64- or 128-byte rows (or
// not, swizzle_bytes 0). False where the driver's encoder is missing or refuses.
int multiprocessors();
// Whether the driver's tensor-map encoder is there (the warp-specialized paths need it).
bool tma_available();
bool encode_rows(CUtensorMap* map, const void* base, int64_t rows, int64_t row_bytes, int box_x, int box_y,
                 int swizzle_bytes);

// The warp-specialized warpgroup kernel (int_gemm_ws.cu): IntGemmPath::WgmmaWs.
cudaError_t launch_wgmma_ws(const Params& p, IntGemmKind kind, cudaStream_t stream);
// The register-weights kernel (int_gemm_rs.cu): IntGemmPath::WgmmaRs, int8 activations
// in the even/odd layout (IntGemmActLayout::Int8EvenOdd); token_tile as
// IntGemmArgs::rs_token_tile (0: rs_token_tile(M, N, K), the measured fastest).
int rs_token_tile(int64_t m, int64_t n, int64_t k);
cudaError_t launch_wgmma_rs(const Params& p, int token_tile, cudaStream_t stream);

}  // namespace quarot::cuda::int_gemm_detail
