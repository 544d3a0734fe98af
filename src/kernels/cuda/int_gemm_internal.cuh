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

// wgmma m64nNk32 s8 x s8 -> s32 with A (16 rows x 32 k per warp, the m16n8k32 fragment
// layout) from registers and B (N rows x 32 k, K-major, 128-byte swizzle) through a
// matrix descriptor, accumulating into the N / 2 registers of d. N: 16, 64, 128, 256.
template <int N>
__device__ __forceinline__ void wgmma_s8_rega(int32_t (&d)[N / 2], const uint32_t (&a)[4], uint64_t desc_b);
template <>
__device__ __forceinline__ void wgmma_s8_rega<16>(int32_t (&d)[8], const uint32_t (&a)[4], uint64_t desc_b) {
  asm volatile(
      "{\n"
      "wgmma.mma_async.sync.aligned.m64n16k32.s32.s8.s8 "
      "{%0, %1, %2, %3, %4, %5, %6, %7}, "
      "{%8, %9, %10, %11}, %12, 1;\n"
      "}\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b)
      : "memory");
}
template <>
__device__ __forceinline__ void wgmma_s8_rega<64>(int32_t (&d)[32], const uint32_t (&a)[4], uint64_t desc_b) {
  asm volatile(
      "{\n"
      "wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
      "{%32, %33, %34, %35}, %36, 1;\n"
      "}\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]), "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b)
      : "memory");
}
template <>
__device__ __forceinline__ void wgmma_s8_rega<128>(int32_t (&d)[64], const uint32_t (&a)[4], uint64_t desc_b) {
  asm volatile(
      "{\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, "
      "{%64, %65, %66, %67}, %68, 1;\n"
      "}\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]), "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]), "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]), "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]), "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]), "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b)
      : "memory");
}
template <>
__device__ __forceinline__ void wgmma_s8_rega<256>(int32_t (&d)[128], const uint32_t (&a)[4], uint64_t desc_b) {
  asm volatile(
      "{\n"
      "wgmma.mma_async.sync.aligned.m64n256k32.s32.s8.s8 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, "
      "{%128, %129, %130, %131}, %132, 1;\n"
      "}\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]), "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]), "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]), "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]), "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]), "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63]), "+r"(d[64]), "+r"(d[65]), "+r"(d[66]), "+r"(d[67]), "+r"(d[68]), "+r"(d[69]), "+r"(d[70]), "+r"(d[71]), "+r"(d[72]), "+r"(d[73]), "+r"(d[74]), "+r"(d[75]), "+r"(d[76]), "+r"(d[77]), "+r"(d[78]), "+r"(d[79]), "+r"(d[80]), "+r"(d[81]), "+r"(d[82]), "+r"(d[83]), "+r"(d[84]), "+r"(d[85]), "+r"(d[86]), "+r"(d[87]), "+r"(d[88]), "+r"(d[89]), "+r"(d[90]), "+r"(d[91]), "+r"(d[92]), "+r"(d[93]), "+r"(d[94]), "+r"(d[95]), "+r"(d[96]), "+r"(d[97]), "+r"(d[98]), "+r"(d[99]), "+r"(d[100]), "+r"(d[101]), "+r"(d[102]), "+r"(d[103]), "+r"(d[104]), "+r"(d[105]), "+r"(d[106]), "+r"(d[107]), "+r"(d[108]), "+r"(d[109]), "+r"(d[110]), "+r"(d[111]), "+r"(d[112]), "+r"(d[113]), "+r"(d[114]), "+r"(d[115]), "+r"(d[116]), "+r"(d[117]), "+r"(d[118]), "+r"(d[119]), "+r"(d[120]), "+r"(d[121]), "+r"(d[122]), "+r"(d[123]), "+r"(d[124]), "+r"(d[125]), "+r"(d[126]), "+r"(d[127])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b)
      : "memory");
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
