// The register-weights warpgroup GEMM (IntGemmPath::WgmmaRs): int4 weights x int8
// activation codes (W4A4's 4-bit codes or W4A8's 8-bit ones, one per byte, in the
// even/odd layout of IntGemmActLayout::Int8EvenOdd), for prefill-sized M.
//
// Why this shape: wgmma reads its B operand from shared memory as int8 and may take A
// from registers. WgmmaWs makes the weights B, so every k-block of packed weights is
// widened through shared memory (stores, then the tensor cores' reads of the widened
// tile): 176 KiB of shared-memory traffic per 128-deep k-block of a 128 x 256 tile,
// which holds it near 1.0 POPS on the H200 (docs/cuda.md). Here the roles swap: the
// weights are the register A operand (wgmma's M side), widened in registers right
// after ldmatrix, and the activations are B, copied by the TMA straight into the
// 128-byte-swizzled int8 layout the tensor cores read. Per k-block of a 128-weight x
// 256-token tile: TMA writes 32 + 8 KiB, ldmatrix reads 8 KiB, the tensor cores read
// 2 x 32 KiB = 112 KiB, less than cuBLASLt's int8 kernel moves for the same tile.
// The price is the activations' size (one byte per code, 4-bit codes included), small
// next to the weights at the shapes this path is for.
//
// Block: three warpgroups (384 threads), persistent over tiles like WgmmaWs:
//   * warpgroup 0: one thread has the TMA copy k-block after k-block (256 activation
//     rows x 128 bytes, 128-byte swizzle; 128 weight rows x 64 packed bytes, 64-byte
//     swizzle) into a kStages ring, running ahead across tiles; its registers go to
//     the consumers (setmaxnreg).
//   * warpgroups 1 and 2: 64 weight rows each; per k-block a warp ldmatrix-es its 16
//     packed rows (four k32 steps), widens them to 16 q (nib_lo / nib_hi: the even k of
//     each 8 in fragment bytes 4 tig.., the odd k 16 bytes on, which is why the
//     activations come in the even/odd layout), and issues four wgmma m64n256k32 with
//     A from those registers. Two register sets alternate, so the next k-block is
//     widened while the previous one's products run.
// The accumulators hold C transposed (rows: weights, columns: tokens). Epilogues, all
// with store_pair_scaled's float operations in its order (outputs bit-identical to the
// other paths), the output kind chosen once per tile:
//   * whole tiles, FP16 outputs the TMA can address: rs_store_tile_tma (in place,
//     stmatrix.trans into a swizzled box, one TMA store per 128 tokens; the residual's box
//     TMA-loaded into the same buffer first and read with ldmatrix.trans);
//   * other whole tiles: rs_store_full_tile (one shuffle per pair turns two lanes' values
//     into two (token, weight pair) outputs; no bounds checks, so no branches);
//   * edge tiles: the checked loop in the kernel.
// The epilogue is where the tensor cores idle between tiles; the checked loop's
// iterations ran one after another and cost the K = 8192 shapes 8-17% (docs/cuda.md).
#include <algorithm>
#include <mutex>

#include "kernels/cuda/int_gemm_internal.cuh"

namespace quarot::cuda::int_gemm_detail {
namespace {

// A tile shape: BA activation rows (tokens, wgmma's N) x 64 CW weight rows (CW consumer
// warpgroups, wgmma's M), STAGES k-blocks in the ring. Prefill takes 256 x 128; the
// smaller token tiles keep decode and mid M from multiplying zero rows, and their
// weight tiles of 64 rows give more tiles to spread over the multiprocessors.
template <int BA, int CW, int STAGES>
struct RsConfig {
  static constexpr int kBA = BA, kBW = 64 * CW, kStages = STAGES;
  static constexpr int kConsumers = 128 * CW, kThreads = 128 + kConsumers;
  static constexpr int kActTile = kBA * 128;  // int8 activation bytes per k-block
  static constexpr int kWTile = kBW * 64;     // packed int4 weight bytes per k-block
  static constexpr int kStageBytes = kActTile + kWTile;
  static constexpr int kScaleFloats = kBA + kBW;
  static constexpr int kAcc = kBA / 2;  // accumulators per consumer thread
  // Cluster split-K (the small token tiles): the leader's shared memory takes each other
  // CTA's accumulators, one slot per rank past the first.
  static constexpr int kMaxCluster = 4;
  static constexpr bool kClusterSplit = CW == 1 && BA <= 64;
  static constexpr int kSlotBytes = kClusterSplit ? kConsumers * kAcc * 4 : 0;
  // full and empty per stage, red_full, red_empty, one per consumer warpgroup for its residual box
  static constexpr int kResBarriers = CW;
  static constexpr int kBarriers = 2 * kStages + 2 + kResBarriers;
  // FP16 outputs of whole tiles leave through shared memory and the TMA (the 128- and
  // 256-token tiles): each consumer warpgroup stages 128 tokens x its 64 weights at a time,
  // 128-byte rows in the 128-byte swizzle, and one of its threads has the TMA store them.
  static constexpr bool kTmaStore = BA >= 128 && CW == 2;
  static constexpr int kOutTokens = 128, kOutBytes = kTmaStore ? CW * kOutTokens * 128 : 0;
  // The scales and the cluster slots (16-byte stores) follow the barriers: 16-byte multiple.
  static constexpr int kBarrierBytes = (8 * kBarriers + 15) / 16 * 16;
  static_assert(2 * kScaleFloats * 4 % 16 == 0, "the slots after the scales take 16-byte stores");
  static constexpr int kSmem = 1024 /* alignment slack */ + kStages * kStageBytes + kOutBytes + kBarrierBytes +
                               2 * kScaleFloats * 4 + (kMaxCluster - 1) * kSlotBytes;
  // The 256-token tile needs 128 accumulators per thread: the producer gives registers away.
  static constexpr bool kRebalance = BA == 256;
  static_assert(kSmem <= 227 * 1024, "shared memory");
  static_assert(kConsumers >= kBA && kConsumers >= kBW, "one consumer thread per scale");
};
constexpr int kConsumerRegs = 232, kProducerRegs = 40;  // 2 x 128 x 232 + 128 x 40 <= 65536
using RsPrefill = RsConfig<256, 2, 4>;
using RsMid = RsConfig<128, 2, 6>;
using RsSmall = RsConfig<64, 1, 8>;
using RsDecode = RsConfig<16, 1, 12>;

__device__ __forceinline__ uint32_t cluster_rank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}
// The address of `local` (this CTA's shared memory) in CTA `rank` of the cluster.
__device__ __forceinline__ uint32_t cluster_addr(uint32_t local, uint32_t rank) {
  uint32_t r;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(r) : "r"(local), "r"(rank));
  return r;
}
__device__ __forceinline__ void st_cluster_v4(uint32_t addr, int32_t a, int32_t b, int32_t c, int32_t d) {
  asm volatile("st.shared::cluster.v4.s32 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(a), "r"(b), "r"(c), "r"(d)
               : "memory");
}
// Arrival on a barrier of another CTA; releases this thread's earlier writes to the cluster.
__device__ __forceinline__ void mbar_arrive_cluster(uint32_t remote_bar) {
  asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];\n" ::"r"(remote_bar) : "memory");
}
// Waits with acquire at cluster scope: the other CTAs' writes before their arrivals are visible.
__device__ __forceinline__ void mbar_wait_cluster(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, "
        "p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}

// Four 8 x 8 b16 matrices from the mma fragment layout (register j: row lane / 4, columns
// 2 (lane % 4) and + 1 of matrix j), each stored transposed: its column c becomes a
// 16-byte row at the address lane 8 j + c gives.
__device__ __forceinline__ void stmatrix_x4_trans(uint32_t addr, uint32_t r0, uint32_t r1, uint32_t r2, uint32_t r3) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r0), "r"(r1),
               "r"(r2), "r"(r3)
               : "memory");
}
// A 2-D box of shared memory to `map` at (x bytes, y rows), in this thread's bulk group.
__device__ __forceinline__ void tma_store_2d(const CUtensorMap* map, int x, int y, uint32_t src) {
  asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%1, %2}], [%3];\n" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(x), "r"(y), "r"(src)
               : "memory");
}
__device__ __forceinline__ void bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
// This thread's bulk stores have read their shared memory (it may be written again).
__device__ __forceinline__ void bulk_wait_read() { asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory"); }
__device__ __forceinline__ void bulk_wait_all() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }
__device__ __forceinline__ void warpgroup_bar(int id) {
  asm volatile("bar.sync %0, 128;\n" ::"r"(id) : "memory");
}

// The FP16 epilogue of a whole tile through shared memory: no lane exchange and no
// global stores in the consumers. Per 128 tokens, each thread converts its accumulators
// in place (acc[4i + e]: weight w = 16 wi + g (+ 8 for e >= 2), token 8 i + 2 tig + (e & 1)),
// packs (token t, t + 1) of one weight into a half2, which is the mma fragment of the 8 x 8
// block [weights][tokens], and stmatrix.trans writes the blocks as token rows of 8 weights
// (16 bytes) into the warpgroup's buffer; the elected thread has the TMA store the box
// while the warps go on. RES: the elected thread first has the TMA load the residual's box
// into the buffer (on res_bar), and ldmatrix.trans from the same addresses gives each
// thread the residual of exactly its outputs. The float operations are store_pair_scaled's:
// y = fp16(float(acc >> 4) * (sa[t] * sb[w]) [+ float(residual)]). buf: the warpgroup's
// 16 KiB (1024-aligned), sa: the tile's token scales, sb0 / sb1: this thread's weight scales
// (w, w + 8); res_uses: the warpgroup's residual boxes so far (res_bar's phase).
template <bool RES, int kAcc>
__device__ __forceinline__ void rs_store_tile_tma(const CUtensorMap* map_y, const CUtensorMap* map_r, int32_t (&acc)[kAcc],
                                                  uint32_t buf, uint32_t res_bar, uint32_t& res_uses, const float* sa,
                                                  float sb0, float sb1, int wi, int lane, bool elected, int bar_id,
                                                  int x_bytes, int m0) {
  constexpr int kTokens = kAcc / 4, kPassTokens = 128 / 8;  // 8-token groups per pass
  constexpr uint32_t kBoxBytes = 128 * 128;
  const int tig = lane & 3;
  // stmatrix / ldmatrix addresses: lane 8 j + r gives row r of matrix j; matrices (i, top),
  // (i, bottom), (i + 1, top), (i + 1, bottom): token 8 (i + (j >> 1)) + r, 16-byte chunk
  // 2 wi + (j & 1), in the 128-byte swizzle.
  const int j = lane >> 3, r = lane & 7;
  const uint32_t lane_off = (8 * (j >> 1) + r) * 128 + (((2 * wi + (j & 1)) ^ r) << 4);
#pragma unroll
  for (int q = 0; q < kTokens / kPassTokens; ++q) {
    if (RES && elected) {
      bulk_wait_read();  // the buffer's previous box has left
      mbar_arrive_expect_tx(res_bar, kBoxBytes);
      tma_load_2d(buf, map_r, x_bytes, m0 + q * 128, res_bar);
    }
    // The products, in place as float bits (RES: the residual is added after its load).
#pragma unroll
    for (int ii = 0; ii < kPassTokens; ++ii) {
      const int i = q * kPassTokens + ii;
      const float2 s2 = *reinterpret_cast<const float2*>(sa + 8 * i + 2 * tig);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float sw = h == 0 ? sb0 : sb1;
        int32_t& a0 = acc[4 * i + 2 * h];
        int32_t& a1 = acc[4 * i + 2 * h + 1];
        a0 = __float_as_int(__fmul_rn(static_cast<float>(a0 >> 4), __fmul_rn(s2.x, sw)));
        a1 = __float_as_int(__fmul_rn(static_cast<float>(a1 >> 4), __fmul_rn(s2.y, sw)));
      }
    }
    auto pack = [&](int i, int h, uint32_t res) {
      float y0 = __int_as_float(acc[4 * i + 2 * h]), y1 = __int_as_float(acc[4 * i + 2 * h + 1]);
      if constexpr (RES) {
        const float2 rf = __half22float2(*reinterpret_cast<const __half2*>(&res));
        y0 = __fadd_rn(y0, rf.x), y1 = __fadd_rn(y1, rf.y);
      }
      const __half2 y2 = __floats2half2_rn(y0, y1);
      return *reinterpret_cast<const uint32_t*>(&y2);
    };
    if constexpr (RES) {
      mbar_wait(res_bar, res_uses & 1);
      ++res_uses;
    } else {
      if (elected) bulk_wait_read();  // the buffer's previous box has left
      warpgroup_bar(bar_id);
    }
#pragma unroll
    for (int ii = 0; ii < kPassTokens; ii += 2) {
      const int i = q * kPassTokens + ii;
      const uint32_t addr = buf + ii * 8 * 128 + lane_off;
      uint32_t res[4] = {0, 0, 0, 0};
      if constexpr (RES) ldmatrix_x4_trans(res, addr);
      stmatrix_x4_trans(addr, pack(i, 0, res[0]), pack(i, 1, res[1]), pack(i + 1, 0, res[2]), pack(i + 1, 1, res[3]));
    }
    fence_proxy_async();  // the TMA (async proxy) reads what these generic stores wrote
    warpgroup_bar(bar_id);
    if (elected) {
      tma_store_2d(map_y, x_bytes, m0 + q * 128, buf);
      bulk_commit();
    }
  }
}

// The epilogue of a tile that lies wholly inside the output, which every tile but the
// last row and column of tiles does. Without the bounds checks of the general loop
// below it has no branches, so the compiler can interleave its iterations: the general
// loop's iterations ran one after another (a shuffle, a shared-memory load, the address
// arithmetic and the store, each waiting on the one before), about 9,500 cycles per
// tile at K = 8192 with the tensor cores idle. The exchange of all pairs comes first;
// the residuals are loaded a batch of kBatch tokens ahead of their use (each element is
// read and written by this lane only, so loading ahead is safe even when y aliases the
// residual). The float operations are store_pair_scaled's, in its order.
// acc: this lane's accumulators, rows w (acc[4i], acc[4i + 1]) and w + 8 (acc[4i + 2],
// acc[4i + 3]), tokens 8 i + 2 tig and + 1; sa_tok: the scale of token 8 i + tok_off
// at sa_tok[8 i]; out0: the element offset of this lane's first output (token tok_off,
// column col0); col1 = col0 + 8; sb: the scales of columns col0, col0 + 1, col1, col1 + 1.
enum class RsOut { kAcc, kF32, kF16Residual, kF16 };
template <RsOut OUT, int kAcc>
__device__ __forceinline__ void rs_store_full_tile(const Params& p, int32_t (&acc)[kAcc], bool even,
                                                   const float* sa_tok, int64_t out0, int col0,
                                                   const float (&sb)[4]) {
  constexpr int kTokens = kAcc / 4, kBatch = kTokens < 8 ? kTokens : 8;
#pragma unroll
  for (int i = 0; i < kTokens; ++i)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      int32_t& v0 = acc[4 * i + 2 * h];
      int32_t& v1 = acc[4 * i + 2 * h + 1];
      const int32_t got = __shfl_xor_sync(0xffffffffu, even ? v1 : v0, 4);
      v0 = even ? v0 : got;
      v1 = even ? got : v1;
    }
  const int64_t step = 8 * static_cast<int64_t>(p.n);
  float bias[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (OUT == RsOut::kF32 && p.bias != nullptr)
    bias[0] = p.bias[col0], bias[1] = p.bias[col0 + 1], bias[2] = p.bias[col0 + 8], bias[3] = p.bias[col0 + 9];
#pragma unroll
  for (int i0 = 0; i0 < kTokens; i0 += kBatch) {
    float2 r[kBatch][2];
    if constexpr (OUT == RsOut::kF16Residual) {
#pragma unroll
      for (int b = 0; b < kBatch; ++b)
#pragma unroll
        for (int h = 0; h < 2; ++h)
          r[b][h] = __half22float2(
              *reinterpret_cast<const __half2*>(p.residual + out0 + (i0 + b) * step + 8 * h));
    }
#pragma unroll
    for (int b = 0; b < kBatch; ++b) {
      const int i = i0 + b;
      const float sa = sa_tok[8 * i];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int64_t idx = out0 + i * step + 8 * h;
        const int32_t v0 = acc[4 * i + 2 * h] >> 4, v1 = acc[4 * i + 2 * h + 1] >> 4;
        if constexpr (OUT == RsOut::kAcc) {
          *reinterpret_cast<int2*>(p.acc_out + idx) = make_int2(v0, v1);
        } else {
          const float s0 = __fmul_rn(sa, sb[2 * h]), s1 = __fmul_rn(sa, sb[2 * h + 1]);
          float y0 = __fmul_rn(static_cast<float>(v0), s0), y1 = __fmul_rn(static_cast<float>(v1), s1);
          if constexpr (OUT == RsOut::kF32) {
            if (p.bias != nullptr) y0 = __fadd_rn(y0, bias[2 * h]), y1 = __fadd_rn(y1, bias[2 * h + 1]);
            *reinterpret_cast<float2*>(p.y_f32 + idx) = make_float2(y0, y1);
          } else {
            if constexpr (OUT == RsOut::kF16Residual) y0 = __fadd_rn(y0, r[b][h].x), y1 = __fadd_rn(y1, r[b][h].y);
            *reinterpret_cast<__half2*>(p.y + idx) = __floats2half2_rn(y0, y1);
          }
        }
      }
    }
  }
}

// splits: shares of K per tile. CLUSTER false: work units are (tile, share) pairs
// spread over the blocks, the shares added with atomics into `partial` when splits > 1.
// CLUSTER true: the blocks form clusters of `splits` (the launch's cluster size), a
// cluster takes a tile at a time, CTA r its share r, and the shares meet in the leader's
// shared memory (exact int32 sums; no scratch, no second kernel).
template <class C, bool CLUSTER>
__global__ void __launch_bounds__(C::kThreads, 1)
    wgmma_rs_kernel(const __grid_constant__ CUtensorMap tma_a, const __grid_constant__ CUtensorMap tma_b,
                    const __grid_constant__ CUtensorMap tma_y, const __grid_constant__ CUtensorMap tma_r, Params p,
                    int splits, int32_t* partial, bool store_tma) {
  constexpr int kBA = C::kBA, kBW = C::kBW, kStages = C::kStages, kStageBytes = C::kStageBytes, kAcc = C::kAcc;
  extern __shared__ uint8_t smem_raw[];
  // The swizzles work on address bits, so the ring starts on 1024 bytes.
  const uint32_t raw_addr = smem_addr(smem_raw);
  uint8_t* smem = smem_raw + ((1024 - (raw_addr & 1023)) & 1023);
  const uint32_t stage0 = smem_addr(smem);
  const uint32_t out_buf0 = stage0 + kStages * kStageBytes;  // C::kOutBytes, 1024-aligned
  const uint32_t full0 = out_buf0 + C::kOutBytes, empty0 = full0 + 8 * kStages;
  const uint32_t red_full = empty0 + 8 * kStages, red_empty = red_full + 8, res_bar0 = red_empty + 8;
  float* scale_buf = reinterpret_cast<float*>(smem + kStages * kStageBytes + C::kOutBytes + C::kBarrierBytes);
  uint8_t* slots = smem + kStages * kStageBytes + C::kOutBytes + C::kBarrierBytes + 2 * C::kScaleFloats * 4;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int wg = warp >> 2;
  const int crank = CLUSTER ? static_cast<int>(cluster_rank()) : 0;
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full0 + 8 * s, 1);
      mbar_init(empty0 + 8 * s, C::kConsumers / 32);  // one arrival per consumer warp
    }
    for (int w = 0; w < C::kResBarriers; ++w) mbar_init(res_bar0 + 8 * w, 1);
    if constexpr (CLUSTER) {
      mbar_init(red_full, (splits - 1) * C::kConsumers);  // every consumer thread of every other CTA
      mbar_init(red_empty, C::kConsumers);                // every consumer thread of the leader
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  if constexpr (CLUSTER) {
    cluster_sync();  // the barriers exist before any CTA of the cluster arrives on them
  } else {
    __syncthreads();
  }

  // Persistent: a block takes work units unit0, unit0 + stride, ...; a unit is a tile's
  // share of K (plain: unit u is share u / tiles of tile u % tiles; cluster: the unit is
  // the tile, the share the CTA's rank). The block's k-blocks are numbered j = 0, 1, ...
  // across its units; j % kStages is the stage, j / kStages the round.
  const int ktiles = p.k / kKBlock;
  const int tiles = ((p.m + kBA - 1) / kBA) * ((p.n + kBW - 1) / kBW);
  const int unit0 = CLUSTER ? blockIdx.x / splits : blockIdx.x;
  const int stride = CLUSTER ? gridDim.x / splits : gridDim.x;
  const int units = CLUSTER ? tiles : tiles * splits;
  const int my_units = unit0 < units ? (units - 1 - unit0) / stride + 1 : 0;
  const int kper = (ktiles + splits - 1) / splits;
  // m0: the tile's first activation row, n0: its first weight row; [k0, k1): its k-blocks.
  auto tile_of = [&](int t) { return grouped_tile<kBA, kBW>((unit0 + t * stride) % tiles, p.m, p.n); };
  auto k_range = [&](int t, int& k0, int& k1) {
    const int s = CLUSTER ? crank : (unit0 + t * stride) / tiles;
    k0 = min(ktiles, s * kper);
    k1 = min(ktiles, k0 + kper);
  };

  if (wg == 0) {
    if constexpr (C::kRebalance) setmaxnreg_dec<kProducerRegs>();
    if (tid == 0) {
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&tma_a)) : "memory");
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&tma_b)) : "memory");
      if (store_tma) asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&tma_y)) : "memory");
      if (store_tma && p.residual != nullptr)
        asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&tma_r)) : "memory");
      int j = 0;
      for (int u = 0; u < my_units; ++u) {
        const TileCoord t = tile_of(u);
        int k0, k1;
        k_range(u, k0, k1);
        for (int kt = k0; kt < k1; ++kt, ++j) {
          const int s = j % kStages;
          mbar_wait(empty0 + 8 * s, ((j / kStages) & 1) ^ 1);  // the first round passes at once
          const uint32_t bar = full0 + 8 * s, dst = stage0 + s * kStageBytes;
          mbar_arrive_expect_tx(bar, kStageBytes);
          tma_load_2d(dst, &tma_a, kt * 128, t.m0, bar);
          tma_load_2d(dst + C::kActTile, &tma_b, kt * 64, t.n0, bar);
        }
      }
    }
    // A cluster's CTAs write into the leader's shared memory: none exits before all are
    // done (the final barrier counts every thread, the producers' too).
    __syncwarp();
    if constexpr (CLUSTER) cluster_sync();
    return;
  }
  if constexpr (C::kRebalance) setmaxnreg_inc<kConsumerRegs>();

  // Consumers: warpgroup cw owns weight rows 64 cw .. 64 cw + 63 of each tile, its
  // warp wi rows 16 wi .. 16 wi + 15 of those.
  const int cw = wg - 1, wi = warp & 3;
  const int g = lane >> 2, tig = lane & 3;
  const int ct = tid - 128;  // 0 .. kConsumers - 1
  // ldmatrix x4: lanes 0-7 address rows 0-7 of chunk s, 8-15 rows 8-15 of chunk s,
  // 16-23 rows 0-7 of chunk s + 1, 24-31 rows 8-15 of chunk s + 1.
  const int ld_row = cw * 64 + wi * 16 + ((lane >> 3) & 1) * 8 + (lane & 7);
  auto load_a = [&](int s, uint32_t (&a)[4][4]) {
    const uint8_t* w = smem + s * kStageBytes + C::kActTile;
#pragma unroll
    for (int ks = 0; ks < 4; ks += 2) {
      uint32_t r[4];
      ldmatrix_x4(r, smem_addr(w + swizzled<64>(ld_row, ks + (lane >> 4))));
      a[ks][0] = nib_lo(r[0]), a[ks][1] = nib_lo(r[1]), a[ks][2] = nib_hi(r[0]), a[ks][3] = nib_hi(r[1]);
      a[ks + 1][0] = nib_lo(r[2]), a[ks + 1][1] = nib_lo(r[3]), a[ks + 1][2] = nib_hi(r[2]),
                a[ks + 1][3] = nib_hi(r[3]);
    }
  };
  const bool scaled = p.acc_out == nullptr;
  // Who applies the epilogue: every unit when K is not split, else finish_split_kernel
  // (plain) or the cluster's leader.
  const bool finisher = CLUSTER ? crank == 0 : splits == 1;
  int32_t acc[kAcc];
  uint32_t res_uses = 0;  // residual boxes this warpgroup has loaded (rs_store_tile_tma)
  uint32_t a_even[4][4], a_odd[4][4];
  int j = 0;
  // One k-block: its weights into `a`, four products on them, then wait for the
  // previous k-block's products and hand their stage back to the producer.
  auto step = [&](bool first, uint32_t (&a)[4][4]) {
    const int s = j % kStages;
    mbar_wait(full0 + 8 * s, (j / kStages) & 1);
    load_a(s, a);
    const uint32_t b_addr = stage0 + s * kStageBytes;
    fence_operands(acc);
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) wgmma_s8_rega<kBA>(acc, a[ks], wgmma_desc_sw128(b_addr + 32 * ks));
    wgmma_commit();
    wgmma_wait<1>();
    fence_operands(acc);
    if (!first && lane == 0) mbar_arrive(empty0 + 8 * ((j - 1) % kStages));
    ++j;
  };
  for (int t = 0; t < my_units; ++t) {
    // The tile's scales, loaded now so their latency hides behind the products.
    const TileCoord tc = tile_of(t);
    int k0, k1;
    k_range(t, k0, k1);
    const float pre_sa = scaled && finisher && ct < kBA && tc.m0 + ct < p.m ? p.sa[tc.m0 + ct] : 0.0f;
    const float pre_sb = scaled && finisher && ct < kBW && tc.n0 + ct < p.n ? p.sb[tc.n0 + ct] : 0.0f;
#pragma unroll
    for (int i = 0; i < kAcc; ++i) acc[i] = 0;
    if (k0 < k1) {  // a share can be empty (9 k-blocks over a cluster of 4: 3, 3, 3, 0)
      int kt = k0;
      for (; kt + 1 < k1; kt += 2) {
        step(kt == k0, a_even);
        step(false, a_odd);
      }
      if (kt < k1) step(kt == k0, a_even);
      wgmma_wait<0>();
      fence_operands(acc);
      if (lane == 0) mbar_arrive(empty0 + 8 * ((j - 1) % kStages));  // the unit's last stage
    }

    if constexpr (CLUSTER) {
      if (splits > 1) {
        // Slot (rank - 1) of the leader holds rank's sums, 16 bytes per thread per 4
        // accumulators, consecutive threads in consecutive 16 bytes.
        if (crank != 0) {
          mbar_wait_cluster(red_empty, (t & 1) ^ 1);  // the leader has read this slot's previous tile
          const uint32_t slot = cluster_addr(smem_addr(slots), 0) + (crank - 1) * C::kSlotBytes;
#pragma unroll
          for (int i = 0; i < kAcc; i += 4)
            st_cluster_v4(slot + ((i / 4) * C::kConsumers + ct) * 16, acc[i], acc[i + 1], acc[i + 2], acc[i + 3]);
          mbar_arrive_cluster(cluster_addr(red_full, 0));
          continue;
        }
        mbar_wait_cluster(red_full, t & 1);
        for (int r = 1; r < splits; ++r) {
          const int4* slot = reinterpret_cast<const int4*>(slots + (r - 1) * C::kSlotBytes);
#pragma unroll
          for (int i = 0; i < kAcc; i += 4) {
            const int4 v = slot[(i / 4) * C::kConsumers + ct];
            acc[i] += v.x, acc[i + 1] += v.y, acc[i + 2] += v.z, acc[i + 3] += v.w;
          }
        }
        // The slots are free again: tell the others, unless this was the last tile
        // (nobody waits for that arrival).
        if (t + 1 < my_units)
          for (int r = 1; r < splits; ++r) mbar_arrive_cluster(cluster_addr(red_empty, r));
      }
    } else if (splits > 1) {
      // A share of K: add the exact partial sums into `partial` (integer additions, so
      // the order the shares arrive in changes nothing); finish_split_kernel applies
      // the epilogue once every share is in.
      const int w0 = tc.n0 + cw * 64 + wi * 16 + g;
#pragma unroll
      for (int i = 0; i < kAcc / 4; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int row = tc.m0 + 8 * i + 2 * tig + (e & 1), col = w0 + 8 * (e >> 1);
          if (row < p.m && col < p.n) atomicAdd(partial + static_cast<int64_t>(row) * p.n + col, acc[4 * i + e] >> 4);
        }
      continue;
    }

    float* sc = scale_buf + (t & 1) * C::kScaleFloats;
    if (ct < kBA) sc[ct] = pre_sa;
    if (ct < kBW) sc[kBA + ct] = pre_sb;
    asm volatile("bar.sync 1, %0;\n" ::"n"(C::kConsumers) : "memory");  // every consumer's scales are in place

    // acc[4i], acc[4i + 1]: weight row w, tokens 8 i + 2 tig and + 1; acc[4i + 2], acc[4i + 3]:
    // weight row w + 8. Lanes g and g ^ 1 (lane ^ 4) trade one value per pair: the even
    // lane stores token c at weights (w, w + 1), the odd lane token c + 1 at (w - 1, w).
    const bool even = (g & 1) == 0;
    const int w_base = cw * 64 + wi * 16 + g;
    // This lane's two column pairs (h = 0, 1) and their scales, the same for every i.
    const int wl0 = w_base - (even ? 0 : 1), wl1 = wl0 + 8;
    const int col0 = tc.n0 + wl0, col1 = tc.n0 + wl1;  // even, so col + 1 < N whenever col < N
    const float sb00 = sc[kBA + wl0], sb01 = sc[kBA + wl0 + 1], sb10 = sc[kBA + wl1], sb11 = sc[kBA + wl1 + 1];
    const int tok_off = 2 * tig + (even ? 0 : 1);
    const bool whole_tile = tc.m0 + kBA <= p.m && tc.n0 + kBW <= p.n;
    if constexpr (C::kTmaStore) {
      if (store_tma && whole_tile) {
        const int w_own = cw * 64 + wi * 16 + g;
        const uint32_t buf = out_buf0 + cw * (C::kOutTokens * 128), rbar = res_bar0 + 8 * cw;
        const bool elected = ct == cw * 128;
        const int x_bytes = (tc.n0 + cw * 64) * 2;
        if (p.residual != nullptr) {
          rs_store_tile_tma<true>(&tma_y, &tma_r, acc, buf, rbar, res_uses, sc, sc[kBA + w_own], sc[kBA + w_own + 8],
                                  wi, lane, elected, 2 + cw, x_bytes, tc.m0);
        } else {
          rs_store_tile_tma<false>(&tma_y, &tma_r, acc, buf, rbar, res_uses, sc, sc[kBA + w_own], sc[kBA + w_own + 8],
                                   wi, lane, elected, 2 + cw, x_bytes, tc.m0);
        }
        continue;
      }
    }
    if (whole_tile) {
      const float sb[4] = {sb00, sb01, sb10, sb11};
      const float* sa_tok = sc + tok_off;
      const int64_t out0 = static_cast<int64_t>(tc.m0 + tok_off) * p.n + col0;
      if (!scaled) {
        rs_store_full_tile<RsOut::kAcc>(p, acc, even, sa_tok, out0, col0, sb);
      } else if (p.y_f32 != nullptr) {
        rs_store_full_tile<RsOut::kF32>(p, acc, even, sa_tok, out0, col0, sb);
      } else if (p.residual != nullptr) {
        rs_store_full_tile<RsOut::kF16Residual>(p, acc, even, sa_tok, out0, col0, sb);
      } else {
        rs_store_full_tile<RsOut::kF16>(p, acc, even, sa_tok, out0, col0, sb);
      }
      continue;
    }
    // A tile at the output's edge: the same arithmetic, every store checked.
    auto epilogue = [&](auto store) {
#pragma unroll
      for (int i = 0; i < kAcc / 4; ++i) {
        int32_t c[2][2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int32_t v0 = acc[4 * i + 2 * h], v1 = acc[4 * i + 2 * h + 1];
          const int32_t got = __shfl_xor_sync(0xffffffffu, even ? v1 : v0, 4);
          c[h][0] = even ? v0 : got;
          c[h][1] = even ? got : v1;
        }
        const int tok = 8 * i + tok_off, row = tc.m0 + tok;
        if (row >= p.m) continue;
        const float sa = sc[tok];
        const int64_t base = static_cast<int64_t>(row) * p.n;
        if (col0 < p.n) store(base + col0, c[0][0] >> 4, c[0][1] >> 4, __fmul_rn(sa, sb00), __fmul_rn(sa, sb01), col0);
        if (col1 < p.n) store(base + col1, c[1][0] >> 4, c[1][1] >> 4, __fmul_rn(sa, sb10), __fmul_rn(sa, sb11), col1);
      }
    };
    if (!scaled) {
      epilogue([&](int64_t idx, int32_t v0, int32_t v1, float, float, int) {
        *reinterpret_cast<int2*>(p.acc_out + idx) = make_int2(v0, v1);
      });
    } else if (p.y_f32 != nullptr) {
      epilogue([&](int64_t idx, int32_t v0, int32_t v1, float s0, float s1, int col) {
        float y0 = __fmul_rn(static_cast<float>(v0), s0), y1 = __fmul_rn(static_cast<float>(v1), s1);
        if (p.bias != nullptr) y0 = __fadd_rn(y0, p.bias[col]), y1 = __fadd_rn(y1, p.bias[col + 1]);
        *reinterpret_cast<float2*>(p.y_f32 + idx) = make_float2(y0, y1);
      });
    } else if (p.residual != nullptr) {
      epilogue([&](int64_t idx, int32_t v0, int32_t v1, float s0, float s1, int) {
        const float2 r = __half22float2(*reinterpret_cast<const __half2*>(p.residual + idx));
        const float y0 = __fadd_rn(__fmul_rn(static_cast<float>(v0), s0), r.x);
        const float y1 = __fadd_rn(__fmul_rn(static_cast<float>(v1), s1), r.y);
        *reinterpret_cast<__half2*>(p.y + idx) = __floats2half2_rn(y0, y1);
      });
    } else {
      epilogue([&](int64_t idx, int32_t v0, int32_t v1, float s0, float s1, int) {
        *reinterpret_cast<__half2*>(p.y + idx) =
            __floats2half2_rn(__fmul_rn(static_cast<float>(v0), s0), __fmul_rn(static_cast<float>(v1), s1));
      });
    }
  }
  // The boxes' shared memory must outlive their reads.
  if (C::kTmaStore && store_tma && (ct & 127) == 0) bulk_wait_all();
  if constexpr (CLUSTER) cluster_sync();
}

// The epilogue of a split-K product, from the summed shares (already shifted).
__global__ void finish_split_kernel(Params p, const int32_t* partial) {
  const int64_t pairs = static_cast<int64_t>(p.m) * (p.n / 2);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < pairs;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int row = static_cast<int>(i / (p.n / 2)), col = 2 * static_cast<int>(i % (p.n / 2));
    const int64_t idx = static_cast<int64_t>(row) * p.n + col;
    store_pair<0>(p, row, col, partial[idx], partial[idx + 1]);
  }
}

// The split-K scratch comes from a memory pool of this file's own that keeps what it
// has allocated (the default pool hands memory back at every synchronization, and
// getting it again costs more than a small product), one per device.
cudaError_t split_pool(cudaMemPool_t* pool) {
  constexpr int kMaxDevices = 64;
  static cudaMemPool_t pools[kMaxDevices] = {};
  static std::mutex mu;
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  if (device < 0 || device >= kMaxDevices) return cudaErrorInvalidDevice;
  std::lock_guard<std::mutex> lock(mu);
  if (pools[device] == nullptr) {
    cudaMemPoolProps props{};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = device;
    err = cudaMemPoolCreate(&pools[device], &props);
    if (err != cudaSuccess) return err;
    uint64_t keep = ~uint64_t{0};
    err = cudaMemPoolSetAttribute(pools[device], cudaMemPoolAttrReleaseThreshold, &keep);
    if (err != cudaSuccess) return err;
  }
  *pool = pools[device];
  return cudaSuccess;
}

// K split in shares when the tiles alone would leave most multiprocessors idle
// (prefill-sized M on narrow layers), each share at least 8 k-blocks long.
int choose_splits(int64_t tiles, int ktiles, int sms) {
  if (tiles * 2 > sms) return 1;
  int s = static_cast<int>(std::min<int64_t>(4, sms / tiles));
  s = std::min(s, ktiles / 8);
  return std::max(s, 1);
}

// How many clusters of `cs` CTAs of this kernel fit on the device at once (clusters
// live inside one GPC, so fewer than SMs / cs where the GPCs' sizes do not divide).
template <class C>
int max_active_clusters(int cs) {
  constexpr int kMaxDevices = 16;
  static int cache[kMaxDevices][C::kMaxCluster + 1] = {};
  static std::mutex mu;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices) return multiprocessors() / cs;
  std::lock_guard<std::mutex> lock(mu);
  int& n = cache[device][cs];
  if (n == 0) {
    // The query counts on the kernel's shared-memory size being allowed already.
    if (cudaFuncSetAttribute(wgmma_rs_kernel<C, true>, cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmem) !=
        cudaSuccess) {
      (void)cudaGetLastError();
      return multiprocessors() / cs;
    }
    cudaLaunchConfig_t cfg{};
    cfg.gridDim = dim3(static_cast<unsigned>(cs * multiprocessors()));
    cfg.blockDim = dim3(C::kThreads);
    cfg.dynamicSmemBytes = C::kSmem;
    cudaLaunchAttribute attr{};
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = static_cast<unsigned>(cs), attr.val.clusterDim.y = 1, attr.val.clusterDim.z = 1;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    int got = 0;
    if (cudaOccupancyMaxActiveClusters(&got, wgmma_rs_kernel<C, true>, &cfg) != cudaSuccess || got <= 0) {
      (void)cudaGetLastError();
      got = multiprocessors() / cs;
    }
    n = got;
  }
  return n;
}

// The cluster size for a small-token-tile product: the one that finishes soonest when
// each round of clusters streams its tiles' shares of K (rounds x k-blocks per share,
// plus two k-blocks' worth for the reduction through shared memory), the smaller on ties.
template <class C>
int choose_cluster(int64_t tiles, int ktiles) {
  int best = 1;
  int64_t best_cost = -1;
  for (int cs = 1; cs <= C::kMaxCluster; ++cs) {
    if (cs > 1 && ktiles / cs < 2) break;
    const int64_t slots = cs == 1 ? multiprocessors() : max_active_clusters<C>(cs);
    if (slots <= 0) continue;
    const int64_t rounds = (tiles + slots - 1) / slots;
    const int64_t cost = rounds * ((ktiles + cs - 1) / cs + (cs > 1 ? 2 : 0));
    if (best_cost < 0 || cost < best_cost) best = cs, best_cost = cost;
  }
  return best;
}

template <class C>
cudaError_t launch_rs(const Params& p, cudaStream_t stream) {
  CUtensorMap map_a{}, map_b{}, map_y{}, map_r{};
  if (!encode_rows(&map_a, p.qa, p.m, p.k, 128, C::kBA, 128) ||
      !encode_rows(&map_b, p.qb, p.n, p.k / 2, 64, C::kBW, 64)) {
    return cudaErrorNotSupported;
  }
  // Whole tiles' FP16 outputs (and residuals) by TMA: FP16 outputs (not FP32 or int32)
  // whose rows the TMA can address (16-byte aligned, N % 8 == 0).
  auto tma_rows = [&](CUtensorMap* map, const __half* base) {
    return (reinterpret_cast<uintptr_t>(base) & 15) == 0 &&
           encode_rows(map, base, p.m, static_cast<int64_t>(p.n) * 2, 128, C::kOutTokens, 128);
  };
  const bool store_tma = C::kTmaStore && p.y != nullptr && p.y_f32 == nullptr && p.acc_out == nullptr &&
                         p.n % 8 == 0 && tma_rows(&map_y, p.y) &&
                         (p.residual == nullptr || tma_rows(&map_r, p.residual));
  const int64_t tiles = static_cast<int64_t>((p.m + C::kBA - 1) / C::kBA) * ((p.n + C::kBW - 1) / C::kBW);
  if (tiles > 0x7fffffff) return cudaErrorInvalidValue;
  const int ktiles = p.k / kKBlock, sms = multiprocessors();
  if constexpr (C::kClusterSplit) {
    const int cs = choose_cluster<C>(tiles, ktiles);
    if (cs > 1) {
      cudaError_t err =
          cudaFuncSetAttribute(wgmma_rs_kernel<C, true>, cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmem);
      if (err != cudaSuccess) return err;
      const int64_t clusters = std::min<int64_t>(tiles, max_active_clusters<C>(cs));
      cudaLaunchConfig_t cfg{};
      cfg.gridDim = dim3(static_cast<unsigned>(clusters * cs));
      cfg.blockDim = dim3(C::kThreads);
      cfg.dynamicSmemBytes = C::kSmem;
      cfg.stream = stream;
      cudaLaunchAttribute attr{};
      attr.id = cudaLaunchAttributeClusterDimension;
      attr.val.clusterDim.x = static_cast<unsigned>(cs), attr.val.clusterDim.y = 1, attr.val.clusterDim.z = 1;
      cfg.attrs = &attr;
      cfg.numAttrs = 1;
      return cudaLaunchKernelEx(&cfg, wgmma_rs_kernel<C, true>, map_a, map_b, map_y, map_r, p, cs,
                                static_cast<int32_t*>(nullptr), store_tma);
    }
  }
  auto kernel = wgmma_rs_kernel<C, false>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmem);
  if (err != cudaSuccess) return err;
  const int splits = C::kClusterSplit ? 1 : choose_splits(tiles, ktiles, sms);
  const int64_t units = tiles * splits;
  const int64_t blocks = units < sms ? units : sms;
  if (splits == 1) {
    kernel<<<static_cast<unsigned>(blocks), C::kThreads, C::kSmem, stream>>>(map_a, map_b, map_y, map_r, p, 1, nullptr,
                                                                              store_tma);
    return cudaGetLastError();
  }
  // The shares' sums: stream-ordered scratch from the device's memory pool.
  int32_t* partial = nullptr;
  const size_t bytes = static_cast<size_t>(p.m) * p.n * sizeof(int32_t);
  cudaMemPool_t pool = nullptr;
  err = split_pool(&pool);
  if (err != cudaSuccess) return err;
  err = cudaMallocFromPoolAsync(reinterpret_cast<void**>(&partial), bytes, pool, stream);
  if (err != cudaSuccess) return err;
  err = cudaMemsetAsync(partial, 0, bytes, stream);
  if (err == cudaSuccess) {
    kernel<<<static_cast<unsigned>(blocks), C::kThreads, C::kSmem, stream>>>(map_a, map_b, map_y, map_r, p, splits, partial,
                                                                              false);
    err = cudaGetLastError();
  }
  if (err == cudaSuccess) {
    const int64_t pairs = static_cast<int64_t>(p.m) * (p.n / 2);
    const int64_t fblocks = std::min<int64_t>((pairs + 255) / 256, 8 * sms);
    finish_split_kernel<<<static_cast<unsigned>(fblocks), 256, 0, stream>>>(p, partial);
    err = cudaGetLastError();
  }
  const cudaError_t freed = cudaFreeAsync(partial, stream);
  return err != cudaSuccess ? err : freed;
}

}  // namespace

int rs_token_tile(int64_t m, int64_t n, int64_t k) {
  // H200, every tile timed on the 7B and 70B shapes at M = 1..512
  // (docs/results/2026-12-03-h200-rs-tiles/): 64 tokens win to M = 64 (e.g. 28672x8192:
  // 46.7 us vs 73.3 for 128 and 124.7 for 256), and on the N = 4096 layers to M = 128;
  // 128 tokens from there to M = 256 except on the widest layers and K = 4096 with N =
  // 11008, where 256-token tiles already fill the GPU (8192x28672 M = 256: 93.6 us vs
  // 110.5); at M = 257..512 128 tokens where 256 would leave multiprocessors idle or
  // waiting on split-K's extra passes (4096x4096 M = 512: 18.0 us vs 33.5), else 256.
  // 16 tokens only by request: at M <= 16 the skinny mma.sync stream is as fast or
  // faster on all but one shape.
  if (m <= 64) return 64;
  if (m <= 128) return n <= 4096 ? 64 : 128;
  if (m <= 256) {
    if (n <= 4096 && k <= 4096) return 64;
    if (n >= 16384 || (n >= 11008 && k <= 4096)) return 256;
    return 128;
  }
  if (m <= 512) return n <= 4096 || (n <= 11008 && k <= 4096) ? 128 : 256;
  return 256;
}

cudaError_t launch_wgmma_rs(const Params& p, int token_tile, cudaStream_t stream) {
  switch (token_tile == 0 ? rs_token_tile(p.m, p.n, p.k) : token_tile) {
    case 16: return launch_rs<RsDecode>(p, stream);
    case 64: return launch_rs<RsSmall>(p, stream);
    case 128: return launch_rs<RsMid>(p, stream);
    case 256: return launch_rs<RsPrefill>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace quarot::cuda::int_gemm_detail
