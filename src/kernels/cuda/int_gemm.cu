#include "kernels/cuda/int_gemm.cuh"

#include "kernels/cuda/int_gemm_internal.cuh"

#include <algorithm>
#include <mutex>

namespace quarot::cuda {
using namespace int_gemm_detail;
namespace {

// ---------------------------------------------------------------------------
// Tiled kernel (prefill). Block tile BM x BN, K in steps of 128 values staged
// through shared memory by cp.async (STAGES deep); each warp owns a WM x WN tile
// of m16n8k32 products. Shared rows are 64 (int4) or 128 (int8) bytes, their
// 16-byte chunks XOR-swizzled by row so every ldmatrix / 8-byte read of 8 rows
// hits distinct banks.

template <IntGemmKind KIND, int BM, int BN, int WM, int WN, int STAGES>
struct TileConfig {
  static constexpr int kRowA = a_is_int4(KIND) ? 64 : 128;
  static constexpr int kRowB = b_is_int4(KIND) ? 64 : 128;
  static constexpr int kWarpsM = BM / WM, kWarpsN = BN / WN;
  static constexpr int kThreads = kWarpsM * kWarpsN * 32;
  static constexpr int kStageBytes = BM * kRowA + BN * kRowB;
  static constexpr int kSmem = STAGES * kStageBytes;
  static constexpr int kMT = WM / 16, kNT = WN / 8;
};

template <IntGemmKind KIND, int BM, int BN, int WM, int WN, int STAGES>
__global__ void __launch_bounds__(TileConfig<KIND, BM, BN, WM, WN, STAGES>::kThreads, 1)
    tile_gemm_kernel(Params p) {
  using C = TileConfig<KIND, BM, BN, WM, WN, STAGES>;
  constexpr int MT = C::kMT, NT = C::kNT;
  extern __shared__ __align__(128) uint8_t smem[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int warp_m = warp % C::kWarpsM, warp_n = warp / C::kWarpsM;
  const int g = lane >> 2, tig = lane & 3;

  const TileCoord tile = grouped_tile<BM, BN>(blockIdx.x, p.m, p.n);
  const int m0 = tile.m0, n0 = tile.n0;

  const int64_t lda = a_is_int4(KIND) ? p.k / 2 : p.k;
  const int64_t ldb = b_is_int4(KIND) ? p.k / 2 : p.k;
  const int ktiles = p.k / kKBlock;

  auto load_stage = [&](int stage, int kt) {
    uint8_t* sa = smem + stage * C::kStageBytes;
    uint8_t* sb = sa + BM * C::kRowA;
    constexpr int kChunksA = BM * C::kRowA / 16, kChunksB = BN * C::kRowB / 16;
    constexpr int kPerRowA = C::kRowA / 16, kPerRowB = C::kRowB / 16;
#pragma unroll
    for (int i = tid; i < kChunksA; i += C::kThreads) {
      const int row = i / kPerRowA, ch = i % kPerRowA;
      const bool ok = m0 + row < p.m;
      const uint8_t* src = ok ? p.qa + (m0 + row) * lda + kt * C::kRowA + ch * 16 : p.qa;
      cp_async16(smem_addr(sa + swizzled<C::kRowA>(row, ch)), src, ok);
    }
#pragma unroll
    for (int i = tid; i < kChunksB; i += C::kThreads) {
      const int row = i / kPerRowB, ch = i % kPerRowB;
      const bool ok = n0 + row < p.n;
      const uint8_t* src = ok ? p.qb + (n0 + row) * ldb + kt * C::kRowB + ch * 16 : p.qb;
      cp_async16(smem_addr(sb + swizzled<C::kRowB>(row, ch)), src, ok);
    }
  };

  int32_t acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[i][j][r] = 0;

#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < ktiles) load_stage(s, s);
    cp_async_commit();
  }

  const int a_row0 = warp_m * WM, b_row0 = warp_n * WN;
  for (int kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    if (kt + STAGES - 1 < ktiles) load_stage((kt + STAGES - 1) % STAGES, kt + STAGES - 1);
    cp_async_commit();

    const uint8_t* sa = smem + (kt % STAGES) * C::kStageBytes;
    const uint8_t* sb = sa + BM * C::kRowA;
#pragma unroll
    for (int s = 0; s < 4; ++s) {  // k32 steps
      uint32_t a[MT][4];
      uint32_t b[NT][2];
      if constexpr (KIND == IntGemmKind::W4A4) {
        // 16-byte chunk s of each row holds this step's 32 values.
#pragma unroll
        for (int mt = 0; mt < MT; mt += 2) {
          uint32_t r[4];
          const int row = a_row0 + mt * 16 + (lane >> 3) * 8 + (lane & 7);
          ldmatrix_x4(r, smem_addr(sa + swizzled<64>(row, s)));
          a[mt][0] = nib_lo(r[0]), a[mt][1] = nib_lo(r[1]), a[mt][2] = nib_hi(r[0]), a[mt][3] = nib_hi(r[1]);
          if (mt + 1 < MT)
            a[mt + 1][0] = nib_lo(r[2]), a[mt + 1][1] = nib_lo(r[3]), a[mt + 1][2] = nib_hi(r[2]),
                      a[mt + 1][3] = nib_hi(r[3]);
        }
      } else if constexpr (KIND == IntGemmKind::W8A8) {
        // Natural mma layout: chunks 2s and 2s + 1 of each 128-byte row.
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          uint32_t r[4];
          const int row = a_row0 + mt * 16 + ((lane >> 3) & 1) * 8 + (lane & 7);
          ldmatrix_x4(r, smem_addr(sa + swizzled<128>(row, 2 * s + (lane >> 4))));
          a[mt][0] = r[0], a[mt][1] = r[1], a[mt][2] = r[2], a[mt][3] = r[3];
        }
      } else {
        // W4A8: lane (g, tig) needs bytes 32s + 8 tig .. + 7 of rows g and g + 8,
        // the k of the int4 weight word it pairs with, split even / odd.
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          const int row = a_row0 + mt * 16 + g;
          const int ch = 2 * s + (tig >> 1), off = (tig & 1) * 8;
          const uint2 x0 = *reinterpret_cast<const uint2*>(sa + swizzled<128>(row, ch) + off);
          const uint2 x1 = *reinterpret_cast<const uint2*>(sa + swizzled<128>(row + 8, ch) + off);
          a[mt][0] = even_bytes(x0.x, x0.y), a[mt][1] = even_bytes(x1.x, x1.y);
          a[mt][2] = odd_bytes(x0.x, x0.y), a[mt][3] = odd_bytes(x1.x, x1.y);
        }
      }
      if constexpr (b_is_int4(KIND)) {
#pragma unroll
        for (int nt = 0; nt < NT; nt += 4) {
          uint32_t r[4];
          const int row = b_row0 + nt * 8 + (lane >> 3) * 8 + (lane & 7);
          ldmatrix_x4(r, smem_addr(sb + swizzled<64>(row, s)));
#pragma unroll
          for (int i = 0; i < 4; ++i)
            if (nt + i < NT) b[nt + i][0] = nib_lo(r[i]), b[nt + i][1] = nib_hi(r[i]);
        }
      } else {
#pragma unroll
        for (int nt = 0; nt < NT; nt += 2) {
          uint32_t r[4];
          const int row = b_row0 + nt * 8 + ((lane >> 3) & 1) * 8 + (lane & 7);
          ldmatrix_x4(r, smem_addr(sb + swizzled<128>(row, 2 * s + (lane >> 4))));
          b[nt][0] = r[0], b[nt][1] = r[2];
          if (nt + 1 < NT) b[nt + 1][0] = r[1], b[nt + 1][1] = r[3];
        }
      }
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) mma_s8(acc[mt][nt], a[mt], b[nt]);
    }
  }
  cp_async_wait<0>();

#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const int row = m0 + a_row0 + mt * 16 + g;
      const int col = n0 + b_row0 + nt * 8 + 2 * tig;
      store_pair<acc_shift(KIND)>(p, row, col, acc[mt][nt][0], acc[mt][nt][1]);
      store_pair<acc_shift(KIND)>(p, row + 8, col, acc[mt][nt][2], acc[mt][nt][3]);
    }
}

// ---------------------------------------------------------------------------
// What both skinny kernels do with one 128-value chunk and with a finished tile.

// The four k32 steps of one chunk: activation words aw (rows g and g + 8 of each
// m16 tile) and weight words bw (row g of each n8 tile) into the m16n8k32 fragments
// (int4 widened to 16 q), multiplied into acc.
template <IntGemmKind KIND, int MT, int NT>
__device__ __forceinline__ void skinny_chunk_products(int32_t (&acc)[MT][NT][4],
                                                      const uint4 (&aw)[MT][2][a_is_int4(KIND) ? 1 : 2],
                                                      const uint4 (&bw)[NT][b_is_int4(KIND) ? 1 : 2]) {
#pragma unroll
  for (int j = 0; j < 4; ++j) {  // k32 steps of the chunk
    uint32_t a[MT][4];
    uint32_t b[NT][2];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      const uint32_t* w0 = reinterpret_cast<const uint32_t*>(aw[mt][0]);
      const uint32_t* w1 = reinterpret_cast<const uint32_t*>(aw[mt][1]);
      if constexpr (KIND == IntGemmKind::W4A4) {
        a[mt][0] = nib_lo(w0[j]), a[mt][1] = nib_lo(w1[j]), a[mt][2] = nib_hi(w0[j]), a[mt][3] = nib_hi(w1[j]);
      } else if constexpr (KIND == IntGemmKind::W4A8) {
        // int4 weight word j (k = 8 j' .. 8 j' + 7) pairs with activation bytes 8 j .. 8 j + 7.
        a[mt][0] = even_bytes(w0[2 * j], w0[2 * j + 1]), a[mt][1] = even_bytes(w1[2 * j], w1[2 * j + 1]);
        a[mt][2] = odd_bytes(w0[2 * j], w0[2 * j + 1]), a[mt][3] = odd_bytes(w1[2 * j], w1[2 * j + 1]);
      } else {
        a[mt][0] = w0[2 * j], a[mt][1] = w1[2 * j], a[mt][2] = w0[2 * j + 1], a[mt][3] = w1[2 * j + 1];
      }
    }
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const uint32_t* w = reinterpret_cast<const uint32_t*>(bw[nt]);
      if constexpr (b_is_int4(KIND)) {
        b[nt][0] = nib_lo(w[j]), b[nt][1] = nib_hi(w[j]);
      } else {
        b[nt][0] = w[2 * j], b[nt][1] = w[2 * j + 1];
      }
    }
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) mma_s8(acc[mt][nt], a[mt], b[nt]);
  }
}

// The KW warps' partial sums of the tile at n0 added in shared memory (int32: exact,
// order-free) and stored through the epilogue. Ends after a barrier, with red free to
// be read again only after the caller's next barrier.
template <IntGemmKind KIND, int MT, int NT, int KW>
__device__ __forceinline__ void skinny_reduce_store(const Params& p, int32_t (*red)[MT * NT * 128],
                                                    const int32_t (&acc)[MT][NT][4], int n0) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int r = 0; r < 4; ++r) red[warp][(mt * NT + nt) * 128 + lane * 4 + r] = acc[mt][nt][r];
  __syncthreads();
  // Thread t finalizes fragment pairs (r = 0,1 or 2,3) of one lane of one tile.
  for (int t = threadIdx.x; t < MT * NT * 64; t += KW * 32) {
    const int tile = t / 64, l = (t % 64) / 2, half = t % 2;
    const int mt = tile / NT, nt = tile % NT;
    int32_t s0 = 0, s1 = 0;
#pragma unroll
    for (int w = 0; w < KW; ++w) {
      s0 += red[w][tile * 128 + l * 4 + 2 * half];
      s1 += red[w][tile * 128 + l * 4 + 2 * half + 1];
    }
    const int row = mt * 16 + (l >> 2) + 8 * half;
    const int col = n0 + nt * 8 + 2 * (l & 3);
    store_pair<acc_shift(KIND)>(p, row, col, s0, s1);
  }
}

// ---------------------------------------------------------------------------
// Skinny kernel (M = 17..64; decode at M <= 16 runs skinny_stream_kernel below): a
// memory-bound stream over the weights.
// A block owns NT n8 tiles and splits K across KW warps, interleaved by 128-value
// chunks so the warps of a block read adjacent bytes. Each lane loads 16 (int4)
// or 32 (int8) contiguous bytes of a row per chunk straight into registers; k-step
// j of the chunk takes word j of those (both operands use the same permutation of
// k). The KW partial sums are added in shared memory (int32: order-free, exact).

template <IntGemmKind KIND, int MT, int NT, int KW, int UNROLL>
__global__ void __launch_bounds__(KW * 32) skinny_gemm_kernel(Params p) {
  __shared__ int32_t red[KW][MT * NT * 128];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, tig = lane & 3;
  const int n0 = blockIdx.x * NT * 8;
  constexpr int kBytesA = a_is_int4(KIND) ? 16 : 32;  // per lane per chunk
  constexpr int kBytesB = b_is_int4(KIND) ? 16 : 32;
  const int64_t lda = a_is_int4(KIND) ? p.k / 2 : p.k;
  const int64_t ldb = b_is_int4(KIND) ? p.k / 2 : p.k;
  const int chunks = p.k / kKBlock;

  // Row pointers (rows past M or N read as zeros).
  const uint8_t* arow[MT][2];
  bool aok[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = mt * 16 + h * 8 + g;
      aok[mt][h] = row < p.m;
      arow[mt][h] = p.qa + (aok[mt][h] ? row : 0) * lda + tig * kBytesA;
    }
  const uint8_t* brow[NT];
  bool bok[NT];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const int row = n0 + nt * 8 + g;
    bok[nt] = row < p.n;
    brow[nt] = p.qb + (bok[nt] ? row : 0) * ldb + tig * kBytesB;
  }

  int32_t acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int r = 0; r < 4; ++r) acc[i][j][r] = 0;

  constexpr int kUnroll = UNROLL;  // chunks in flight per warp
  // Under programmatic dependent launch (IntGemmArgs::weights_constant) this kernel may
  // start while the previous one in the stream finishes. The weights, which that kernel
  // does not write, are asked into L2 first (the first round of this warp's loads; no
  // registers held); everything is read after the wait. An ordinary launch skips both
  // (the prefetches alone cost it ~0.8 us on 4096x4096, H200).
  if (p.weights_constant) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = warp + u * KW;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
        if (c < chunks && bok[nt]) asm volatile("prefetch.global.L2 [%0];\n" ::"l"(brow[nt] + c * (kBytesB * 4)));
    }
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
  }
  for (int c0 = warp; c0 < chunks; c0 += KW * kUnroll) {
    uint4 bw[kUnroll][NT][kBytesB / 16];
    uint4 aw[kUnroll][MT][2][kBytesA / 16];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * KW;
      const bool live = c < chunks;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int v = 0; v < kBytesB / 16; ++v)
          bw[u][nt][v] = (live && bok[nt]) ? ld_stream(brow[nt] + c * (kBytesB * 4) + v * 16) : make_uint4(0, 0, 0, 0);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int v = 0; v < kBytesA / 16; ++v)
            aw[u][mt][h][v] = (live && aok[mt][h])
                                  ? __ldg(reinterpret_cast<const uint4*>(arow[mt][h] + c * (kBytesA * 4) + v * 16))
                                  : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) skinny_chunk_products<KIND, MT, NT>(acc, aw[u], bw[u]);
  }
  // The next kernel (if launched as a programmatic dependent) may start now; it waits
  // for this grid's completion before reading anything this one writes.
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
  skinny_reduce_store<KIND, MT, NT, KW>(p, red, acc, n0);
}


// ---------------------------------------------------------------------------
// Streaming skinny kernel (decode, M <= 16 * MT): the same products as
// skinny_gemm_kernel, but the weights reach registers through a per-warp ring of
// S stages in shared memory filled by cp.async, and the grid is persistent (at most
// what fits at once), each block taking tiles blockIdx.x, + gridDim.x, ... The
// activations, read by every tile, come through L1 (__ldg) when they are used: staged
// through L2 with the weights they doubled the traffic at M = 16 (and tripled it for
// W4A8) and ran slower than the old kernel.
//
// Why: skinny_gemm_kernel holds its loads in registers (78 per thread), so three
// blocks fit per SM and a 4096 x 11008 decode product needs 1.74 waves, each a
// latency-bound burst of loads followed by the products (H200, Nsight Compute: DRAM
// 38% busy; 11.0 us where a plain read of the same 22.5 MB takes 7.5 us). Here the
// bytes in flight live in shared memory (52-90 registers per thread, ptxas), and a warp's
// stream of (tile, chunk) items runs on across tile boundaries with S items always in
// flight (S = 1 measured fastest: the next item is copied while this one is multiplied,
// and more warps per SM beat deeper rings).
//
// Each lane stages and reads back only its own 16-byte pieces (the piece p of lane l
// at (p * 32 + l) * 16 in its warp's stage), so cp.async.wait_group alone orders a
// lane's copies before its reads: no barrier inside the stream. Chunk c of a tile goes
// to warp c % KW, as in skinny_gemm_kernel; the KW partial sums are added in shared
// memory (int32: exact, order-free), so both kernels give the same bits.

template <IntGemmKind KIND, int MT, int NT>
struct SkinnyStreamShape {
  static constexpr int kBytesA = a_is_int4(KIND) ? 16 : 32;  // per lane per chunk per row group
  static constexpr int kBytesB = b_is_int4(KIND) ? 16 : 32;
  static constexpr int kPiecesB = NT * kBytesB / 16;          // 16-byte pieces per lane per item
  static constexpr int kItemBytes = kPiecesB * 16 * 32;      // per warp per stage
};

template <IntGemmKind KIND, int MT, int NT, int KW, int S>
__global__ void __launch_bounds__(KW * 32) skinny_stream_kernel(Params p) {
  using Sh = SkinnyStreamShape<KIND, MT, NT>;
  extern __shared__ __align__(16) uint8_t skinny_smem[];
  // [KW][S][item], then the reduction [KW][MT * NT * 128] int32.
  int32_t(*red)[MT * NT * 128] = reinterpret_cast<int32_t(*)[MT * NT * 128]>(skinny_smem + KW * S * Sh::kItemBytes);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, tig = lane & 3;
  const int64_t lda = a_is_int4(KIND) ? p.k / 2 : p.k;
  const int64_t ldb = b_is_int4(KIND) ? p.k / 2 : p.k;
  const int chunks = p.k / kKBlock;
  const int tiles = (p.n + NT * 8 - 1) / (NT * 8);
  const uint32_t ring = smem_addr(skinny_smem + warp * S * Sh::kItemBytes) + lane * 16;

  // This lane's activation rows (rows past M read as zeros; the pointer stays valid).
  const uint8_t* arow[MT][2];
  bool aok[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int row = mt * 16 + h * 8 + g;
      aok[mt][h] = row < p.m;
      arow[mt][h] = p.qa + (aok[mt][h] ? row : 0) * lda + tig * Sh::kBytesA;
    }

  // The issue cursor: the next (tile, chunk) item this warp copies. A warp with no
  // chunk (warp >= chunks) issues nothing and only takes part in the reductions.
  int it_tile = warp < chunks ? static_cast<int>(blockIdx.x) : tiles, it_c = warp;
  auto issue_b = [&](int slot) {
    const uint32_t st = ring + slot * Sh::kItemBytes;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const int row = it_tile * NT * 8 + nt * 8 + g;
      const bool ok = row < p.n;
      const uint8_t* src = p.qb + (ok ? row : 0) * ldb + tig * Sh::kBytesB + it_c * (Sh::kBytesB * 4);
#pragma unroll
      for (int v = 0; v < Sh::kBytesB / 16; ++v) cp_async16(st + (nt * (Sh::kBytesB / 16) + v) * 512, src + v * 16, ok);
    }
  };
  auto advance = [&] {
    it_c += KW;
    if (it_c >= chunks) it_c = warp, it_tile += gridDim.x;
  };

  // Prologue: the first S items. Under programmatic dependent launch
  // (IntGemmArgs::weights_constant) the weights, which the previous kernel does not
  // write, are requested before griddepcontrol.wait and the activations after it; the
  // first group then holds every prologue weight copy, which only delays item 0.
  {
    const int t0 = it_tile, c0 = it_c;
    if (p.weights_constant) {
      for (int s = 0; s < S; ++s) {
        if (it_tile < tiles) issue_b(s);
        advance();
      }
      asm volatile("griddepcontrol.wait;\n" ::: "memory");
      it_tile = t0, it_c = c0;
    }
    for (int s = 0; s < S; ++s) {
      if (it_tile < tiles && !p.weights_constant) issue_b(s);
      cp_async_commit();
      advance();
    }
  }

  int consumed = 0;
  for (int tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    int32_t acc[MT][NT][4];
#pragma unroll
    for (int i = 0; i < MT; ++i)
#pragma unroll
      for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int r = 0; r < 4; ++r) acc[i][j][r] = 0;
    for (int c = warp; c < chunks; c += KW) {
      cp_async_wait<S - 1>();
      const int slot = consumed % S;
      const uint32_t st = ring + slot * Sh::kItemBytes;
      uint4 bw[NT][Sh::kBytesB / 16];
      uint4 aw[MT][2][Sh::kBytesA / 16];
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int v = 0; v < Sh::kBytesB / 16; ++v)
          asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];\n"
                       : "=r"(bw[nt][v].x), "=r"(bw[nt][v].y), "=r"(bw[nt][v].z), "=r"(bw[nt][v].w)
                       : "r"(st + (nt * (Sh::kBytesB / 16) + v) * 512));
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int v = 0; v < Sh::kBytesA / 16; ++v)
            aw[mt][h][v] = aok[mt][h] ? __ldg(reinterpret_cast<const uint4*>(arow[mt][h] + c * (Sh::kBytesA * 4) + v * 16))
                                      : make_uint4(0, 0, 0, 0);
      // The stage is read (into registers): refill it with the item S ahead. Same lane,
      // same bytes: the shared loads above are issued before this copy, whose data
      // cannot arrive from L2 before they have read (checked bit for bit on every shape).
      if (it_tile < tiles) issue_b(slot);
      cp_async_commit();
      advance();
      ++consumed;
      skinny_chunk_products<KIND, MT, NT>(acc, aw, bw);
    }
    // The next kernel (if launched as a programmatic dependent) may start once this
    // block is on its last tile; it waits for this grid's completion before reading
    // anything this one writes.
    if (tile + static_cast<int>(gridDim.x) >= tiles) asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
    skinny_reduce_store<KIND, MT, NT, KW>(p, red, acc, tile * NT * 8);
    __syncthreads();  // red is rewritten by the next tile
  }
  cp_async_wait<0>();
}


// ---------------------------------------------------------------------------
// Warpgroup kernel (prefill on Hopper): wgmma.mma_async m64n128k32 s8, the int8
// tensor-core path that runs at full rate on sm_90a (mma.sync tops out near a
// third of it). A block of two warpgroups computes a 128 x 128 tile, each
// warpgroup 64 rows. The activations (A) go from packed shared memory through
// ldmatrix into registers and are widened there, in the m16n8k32 fragment layout
// wgmma takes for a register A. The weights (B) must come from shared memory as
// int8: each k-block of packed weights is widened once per block into a
// 128-byte-swizzled int8 tile (double-buffered) that the tensor cores read through
// a matrix descriptor. The widening puts the even k of a weight word in logical
// bytes 4 tig .. 4 tig + 3 of its 32-byte k-step and the odd k 16 bytes further,
// the same permutation the register A fragment gets, so the dot products are unchanged.

template <IntGemmKind KIND>
struct WgmmaConfig {
  static constexpr int kBM = 128, kBN = 128, kStages = 4, kThreads = 256;
  static constexpr int kRowA = a_is_int4(KIND) ? 64 : 128;
  static constexpr int kStageA = kBM * kRowA, kStageB = kBN * 64;
  static constexpr int kStageBytes = kStageA + kStageB;
  static constexpr int kB8 = kBN * 128;  // one widened int8 weight tile
  static constexpr int kSmem = 1024 /* alignment slack */ + 2 * kB8 + kStages * kStageBytes;
};

// OVERLAP = false: widen k-block kt, then multiply it, then wait. OVERLAP = true:
// while the tensor cores multiply k-block kt, the threads widen k-block kt + 1
// into the other int8 tile and load its activation fragments, then wait.
template <IntGemmKind KIND, bool OVERLAP>
__global__ void __launch_bounds__(256, (KIND == IntGemmKind::W4A4 && !OVERLAP) ? 2 : 1) wgmma_gemm_kernel(Params p) {
  static_assert(b_is_int4(KIND), "the warpgroup kernel widens int4 weights");
  using C = WgmmaConfig<KIND>;
  constexpr int BM = C::kBM, BN = C::kBN, STAGES = C::kStages;
  extern __shared__ uint8_t smem_raw[];
  // The swizzle works on address bits, so the int8 tiles start on 1024 bytes.
  const uint32_t raw_addr = smem_addr(smem_raw);
  uint8_t* smem = smem_raw + ((1024 - (raw_addr & 1023)) & 1023);
  uint8_t* b8_tiles = smem;
  uint8_t* stage_base = smem + 2 * C::kB8;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, tig = lane & 3;
  const int wg = warp >> 2, warp_in_wg = warp & 3;

  const TileCoord tile = grouped_tile<BM, BN>(blockIdx.x, p.m, p.n);
  const int m0 = tile.m0, n0 = tile.n0;

  const int64_t lda = a_is_int4(KIND) ? p.k / 2 : p.k;
  const int64_t ldb = p.k / 2;
  const int ktiles = p.k / kKBlock;

  auto load_stage = [&](int stage, int kt) {
    uint8_t* sa = stage_base + stage * C::kStageBytes;
    uint8_t* sb = sa + C::kStageA;
    constexpr int kChunksA = BM * C::kRowA / 16, kChunksB = BN * 64 / 16;
    constexpr int kPerRowA = C::kRowA / 16;
#pragma unroll
    for (int i = tid; i < kChunksA; i += C::kThreads) {
      const int row = i / kPerRowA, ch = i % kPerRowA;
      const bool ok = m0 + row < p.m;
      const uint8_t* src = ok ? p.qa + (m0 + row) * lda + kt * C::kRowA + ch * 16 : p.qa;
      cp_async16(smem_addr(sa + swizzled<C::kRowA>(row, ch)), src, ok);
    }
#pragma unroll
    for (int i = tid; i < kChunksB; i += C::kThreads) {
      const int row = i / 4, ch = i % 4;
      const bool ok = n0 + row < p.n;
      const uint8_t* src = ok ? p.qb + (n0 + row) * ldb + kt * 64 + ch * 16 : p.qb;
      cp_async16(smem_addr(sb + swizzled<64>(row, ch)), src, ok);
    }
  };

  int32_t acc[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) acc[i] = 0;

#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < ktiles) load_stage(s, s);
    cp_async_commit();
  }

  const int a_row0 = wg * 64 + warp_in_wg * 16;
  // Widen packed weight stage `stage` into int8 tile `buf`: packed chunk c of row n
  // (32 k) -> logical int8 chunks 2c (even k) and 2c + 1 (odd k), 128-byte swizzled.
  auto widen_b = [&](int stage, int buf) {
    const uint8_t* sb = stage_base + stage * C::kStageBytes + C::kStageA;
    uint8_t* b8 = b8_tiles + buf * C::kB8;
#pragma unroll
    for (int i = tid; i < BN * 4; i += C::kThreads) {
      const int n = i >> 2, c = i & 3;
      const uint4 w = *reinterpret_cast<const uint4*>(sb + swizzled<64>(n, c));
      uint8_t* rowp = b8 + n * 128;
      *reinterpret_cast<uint4*>(rowp + (((2 * c) ^ (n & 7)) << 4)) =
          make_uint4(nib_lo(w.x), nib_lo(w.y), nib_lo(w.z), nib_lo(w.w));
      *reinterpret_cast<uint4*>(rowp + (((2 * c + 1) ^ (n & 7)) << 4)) =
          make_uint4(nib_hi(w.x), nib_hi(w.y), nib_hi(w.z), nib_hi(w.w));
    }
    fence_proxy_async();  // make the generic-proxy stores visible to the tensor cores
  };
  // This warp's activation fragments of packed stage `stage`, four k32 steps.
  auto load_a = [&](int stage, uint32_t (&a)[4][4]) {
    const uint8_t* sa = stage_base + stage * C::kStageBytes;
    if constexpr (KIND == IntGemmKind::W4A4) {
#pragma unroll
      for (int s = 0; s < 4; s += 2) {
        uint32_t r[4];
        const int row = a_row0 + ((lane >> 3) & 1) * 8 + (lane & 7);
        ldmatrix_x4(r, smem_addr(sa + swizzled<64>(row, s + (lane >> 4))));
        a[s][0] = nib_lo(r[0]), a[s][1] = nib_lo(r[1]), a[s][2] = nib_hi(r[0]), a[s][3] = nib_hi(r[1]);
        a[s + 1][0] = nib_lo(r[2]), a[s + 1][1] = nib_lo(r[3]), a[s + 1][2] = nib_hi(r[2]),
               a[s + 1][3] = nib_hi(r[3]);
      }
    } else {
#pragma unroll
      for (int s = 0; s < 4; ++s) {
        const int row = a_row0 + g;
        const int ch = 2 * s + (tig >> 1), off = (tig & 1) * 8;
        const uint2 x0 = *reinterpret_cast<const uint2*>(sa + swizzled<128>(row, ch) + off);
        const uint2 x1 = *reinterpret_cast<const uint2*>(sa + swizzled<128>(row + 8, ch) + off);
        a[s][0] = even_bytes(x0.x, x0.y), a[s][1] = even_bytes(x1.x, x1.y);
        a[s][2] = odd_bytes(x0.x, x0.y), a[s][3] = odd_bytes(x1.x, x1.y);
      }
    }
  };
  auto multiply = [&](int buf, const uint32_t (&a)[4][4]) {
    fence_operands(acc);  // accumulators written before the fence below, as wgmma requires
    wgmma_fence();
    const uint32_t b8_addr = smem_addr(b8_tiles + buf * C::kB8);
#pragma unroll
    for (int s = 0; s < 4; ++s) wgmma_s8_rega<128>(acc, a[s], wgmma_desc_sw128(b8_addr + 32 * s));
    wgmma_commit();
  };

  uint32_t a[4][4];
  if constexpr (!OVERLAP) {
    for (int kt = 0; kt < ktiles; ++kt) {
      cp_async_wait<STAGES - 2>();
      __syncthreads();  // stage kt landed; every warpgroup's wgmma of kt - 1 is done
      if (kt + STAGES - 1 < ktiles) load_stage((kt + STAGES - 1) % STAGES, kt + STAGES - 1);
      cp_async_commit();
      widen_b(kt % STAGES, kt & 1);
      __syncthreads();
      load_a(kt % STAGES, a);
      multiply(kt & 1, a);
      // Waiting here, not before the next k-block's products, keeps the compiler from
      // serializing the wgmmas (C7514/C7515); the second resident block fills the gap.
      wgmma_wait<0>();
      fence_operands(acc);
    }
  } else {
    cp_async_wait<STAGES - 2>();
    __syncthreads();
    if (ktiles > 0) {
      widen_b(0, 0);
      load_a(0, a);
    }
    // Two fragment sets used in turn (no register copies between the asynchronous steps).
    uint32_t a_odd[4][4];
    auto step = [&](int kt, uint32_t (&cur)[4][4], uint32_t (&next)[4][4]) {
      __syncthreads();  // int8 tile kt written and fenced by every thread
      if (kt + STAGES - 1 < ktiles) load_stage((kt + STAGES - 1) % STAGES, kt + STAGES - 1);
      cp_async_commit();
      multiply(kt & 1, cur);
      if (kt + 1 < ktiles) {
        cp_async_wait<STAGES - 2>();  // stage kt + 1 landed (this thread's copies)
        __syncthreads();              // ... and everyone's
        widen_b((kt + 1) % STAGES, (kt + 1) & 1);
        load_a((kt + 1) % STAGES, next);
      }
      wgmma_wait<0>();
      fence_operands(acc);
      // This step's fragments stay live until the products are done, so the next
      // step's cannot take their registers.
#pragma unroll
      for (int s = 0; s < 4; ++s)
#pragma unroll
        for (int i = 0; i < 4; ++i) asm volatile("" : "+r"(cur[s][i])::"memory");
    };
    for (int kt = 0; kt < ktiles; kt += 2) {
      step(kt, a, a_odd);
      if (kt + 1 < ktiles) step(kt + 1, a_odd, a);
    }
  }
  cp_async_wait<0>();

  // Accumulator layout per n8 block j: acc[4j], acc[4j+1] at row g, columns 8j + 2 tig (+1);
  // acc[4j+2], acc[4j+3] at row g + 8.
#pragma unroll
  for (int j = 0; j < 16; ++j) {
    const int row = m0 + a_row0 + g;
    const int col = n0 + 8 * j + 2 * tig;
    store_pair<acc_shift(KIND)>(p, row, col, acc[4 * j], acc[4 * j + 1]);
    store_pair<acc_shift(KIND)>(p, row + 8, col, acc[4 * j + 2], acc[4 * j + 3]);
  }
}

// ---------------------------------------------------------------------------
// Launchers.

template <IntGemmKind KIND, int BM, int BN, int WM, int WN, int STAGES>
cudaError_t launch_tile(const Params& p, cudaStream_t stream) {
  using C = TileConfig<KIND, BM, BN, WM, WN, STAGES>;
  auto kernel = tile_gemm_kernel<KIND, BM, BN, WM, WN, STAGES>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmem);
  if (err != cudaSuccess) return err;
  const int64_t blocks = static_cast<int64_t>((p.m + BM - 1) / BM) * ((p.n + BN - 1) / BN);
  if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
  kernel<<<static_cast<unsigned>(blocks), C::kThreads, C::kSmem, stream>>>(p);
  return cudaGetLastError();
}

// Launches a skinny kernel; with p.weights_constant as a programmatic dependent of the
// previous kernel in the stream (the kernels wait before reading anything it writes).
cudaError_t launch_skinny_kernel(void (*kernel)(Params), int64_t blocks, int threads, int smem, const Params& p,
                                 cudaStream_t stream) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(blocks));
  cfg.blockDim = dim3(threads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = &attr;
  cfg.numAttrs = p.weights_constant ? 1 : 0;
  return cudaLaunchKernelEx(&cfg, kernel, p);
}

// Per instantiation of the streaming kernel: its occupancy on the last device asked
// (the attribute calls cost microseconds, as much as a small launch).
struct SkinnyLaunchCache {
  std::mutex mu;
  int dev = -1, per_sm = 0;
};

// The multiprocessor count of `dev` into sms (cached: one device attribute call per
// launch would cost as much as a small product).
cudaError_t sm_count(int dev, int& sms) {
  static std::mutex mu;
  static int cached_dev = -1, cached = 0;
  std::lock_guard<std::mutex> lock(mu);
  if (cached_dev != dev) {
    if (const cudaError_t err = cudaDeviceGetAttribute(&cached, cudaDevAttrMultiProcessorCount, dev); err != cudaSuccess)
      return err;
    cached_dev = dev;
  }
  sms = cached;
  return cudaSuccess;
}

// The streaming kernel's two shapes (H200, docs/cuda.md "The streaming decode kernel":
// stages 1-8, warps 8-32 and n8 tiles 1-4 per block measured on the six GEMM shapes):
// 16 warps on 16-row tiles where the weights have few rows (N = 4096: 256 tiles), 8
// warps on 32-row tiles where there are tiles enough for two rounds of the GPU; one
// stage (the next item copied while this one is multiplied) beat deeper rings.
struct SkinnyNarrow {
  static constexpr int kNT = 2, kKW = 16, kS = 1;
};
struct SkinnyWide {
  static constexpr int kNT = 4, kKW = 8, kS = 1;
};

template <IntGemmKind KIND, typename C>
cudaError_t launch_skinny_stream(const Params& p, int dev, int sms, cudaStream_t stream) {
  constexpr int MT = 1, NT = C::kNT, KW = C::kKW, S = C::kS;
  using Sh = SkinnyStreamShape<KIND, MT, NT>;
  constexpr int kSmem = KW * S * Sh::kItemBytes + KW * MT * NT * 128 * 4;
  static SkinnyLaunchCache cache;
  auto kernel = skinny_stream_kernel<KIND, MT, NT, KW, S>;
  int per_sm = 0;
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    if (cache.dev != dev) {
      cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
      if (err == cudaSuccess) err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, KW * 32, kSmem);
      if (err != cudaSuccess) return err;
      cache.dev = dev, cache.per_sm = per_sm;
    }
    per_sm = cache.per_sm;
  }
  if (per_sm < 1) return cudaErrorInvalidConfiguration;
  const int64_t tiles = (p.n + NT * 8 - 1) / (NT * 8);
  const int64_t blocks = std::min<int64_t>(tiles, static_cast<int64_t>(per_sm) * sms);
  return launch_skinny_kernel(kernel, blocks, KW * 32, kSmem, p, stream);
}

template <IntGemmKind KIND, int MT>
cudaError_t launch_skinny(const Params& p, cudaStream_t stream) {
  // Decode (M <= 16) streams through skinny_stream_kernel; M = 17..64 keeps the
  // register kernel below (the ring was measured at M <= 16 only).
  if constexpr (MT == 1) {
    int dev = 0, sms = 0;
    cudaError_t err = cudaGetDevice(&dev);
    if (err == cudaSuccess) err = sm_count(dev, sms);
    if (err != cudaSuccess) return err;
    const int64_t wide_tiles = (p.n + SkinnyWide::kNT * 8 - 1) / (SkinnyWide::kNT * 8);
    if (wide_tiles >= 2 * static_cast<int64_t>(sms)) return launch_skinny_stream<KIND, SkinnyWide>(p, dev, sms, stream);
    return launch_skinny_stream<KIND, SkinnyNarrow>(p, dev, sms, stream);
  } else {
    constexpr int NT = 2, KW = 8;
    const int64_t blocks = (p.n + NT * 8 - 1) / (NT * 8);
    return launch_skinny_kernel(skinny_gemm_kernel<KIND, MT, NT, KW, 2>, blocks, KW * 32, 0, p, stream);
  }
}

template <IntGemmKind KIND, bool OVERLAP>
cudaError_t launch_wgmma(const Params& p, cudaStream_t stream) {
  using C = WgmmaConfig<KIND>;
  auto kernel = wgmma_gemm_kernel<KIND, OVERLAP>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmem);
  if (err != cudaSuccess) return err;
  const int64_t blocks = static_cast<int64_t>((p.m + C::kBM - 1) / C::kBM) * ((p.n + C::kBN - 1) / C::kBN);
  if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
  kernel<<<static_cast<unsigned>(blocks), C::kThreads, C::kSmem, stream>>>(p);
  return cudaGetLastError();
}

template <IntGemmKind KIND>
cudaError_t launch_kind(const Params& p, IntGemmPath path, cudaStream_t stream) {
  switch (path) {
    case IntGemmPath::Skinny:
      if (p.m <= 16) return launch_skinny<KIND, 1>(p, stream);
      if (p.m <= 32) return launch_skinny<KIND, 2>(p, stream);
      if (p.m <= 64) return launch_skinny<KIND, 4>(p, stream);
      return cudaErrorInvalidValue;
    case IntGemmPath::Tile64:
      return launch_tile<KIND, 64, 128, 64, 32, 4>(p, stream);
    case IntGemmPath::Tile128:
      return launch_tile<KIND, 128, 128, 64, 32, 4>(p, stream);
    case IntGemmPath::Tile128x256:
      return launch_tile<KIND, 128, 256, 64, 64, 3>(p, stream);
    case IntGemmPath::Wgmma:
      if constexpr (b_is_int4(KIND)) return launch_wgmma<KIND, false>(p, stream);
      return cudaErrorInvalidValue;
    case IntGemmPath::WgmmaOverlap:
      if constexpr (b_is_int4(KIND)) return launch_wgmma<KIND, true>(p, stream);
      return cudaErrorInvalidValue;
    case IntGemmPath::WgmmaWs:
      return launch_wgmma_ws(p, KIND, stream);
    case IntGemmPath::WgmmaRs:
      if constexpr (b_is_int4(KIND)) return launch_wgmma_rs(p, p.rs_tile, stream);
      return cudaErrorInvalidValue;
    default:
      return cudaErrorInvalidValue;
  }
}

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

}  // namespace

const char* int_gemm_path_name(IntGemmPath path) {
  switch (path) {
    case IntGemmPath::Auto: return "auto";
    case IntGemmPath::Skinny: return "skinny";
    case IntGemmPath::Tile64: return "tile64";
    case IntGemmPath::Tile128: return "tile128";
    case IntGemmPath::Tile128x256: return "tile128x256";
    case IntGemmPath::Wgmma: return "wgmma";
    case IntGemmPath::WgmmaOverlap: return "wgmma_overlap";
    case IntGemmPath::WgmmaWs: return "wgmma_ws";
    case IntGemmPath::WgmmaRs: return "wgmma_rs";
  }
  return "?";
}

bool int_gemm_path_supports(IntGemmPath path, IntGemmKind kind, int64_t m) {
  switch (path) {
    case IntGemmPath::Skinny: return m <= 64;
    case IntGemmPath::Wgmma:
    case IntGemmPath::WgmmaOverlap:
    case IntGemmPath::WgmmaWs:
    case IntGemmPath::WgmmaRs: return kind != IntGemmKind::W8A8;
    default: return true;
  }
}

IntGemmActLayout int_gemm_path_layout(IntGemmPath path) {
  return path == IntGemmPath::WgmmaRs ? IntGemmActLayout::Int8EvenOdd : IntGemmActLayout::Standard;
}

IntGemmActLayout int_gemm_preferred_layout(IntGemmKind kind, int64_t m, int64_t n, int64_t k) {
  // H200, every path and WgmmaRs at every token tile timed at M = 1..1024 on the 7B and
  // 70B shapes (docs/results/2026-12-03-h200-gemm-rs/, docs/results/2026-12-03-h200-rs-tiles/):
  // WgmmaRs is the fastest from M = 33 up on all six (M = 64, 28672x8192: 46.7 us with
  // 64-token tiles vs 100.4 for the skinny stream); at M <= 32 the skinny stream is on
  // most (M = 32, 8192x28672: 59.3 us vs 83.0).
  (void)n;
  (void)k;
  if (kind == IntGemmKind::W8A8 || m <= 32 || !tma_available()) return IntGemmActLayout::Standard;
  return IntGemmActLayout::Int8EvenOdd;
}

IntGemmPath int_gemm_auto_path(IntGemmKind kind, int64_t m, int64_t n, int64_t k, IntGemmActLayout layout) {
  if (layout == IntGemmActLayout::Int8EvenOdd) return IntGemmPath::WgmmaRs;
  // From the H200 measurements in docs/cuda.md: the weight stream wins while few
  // tiles would fill the machine; the warp-specialized warpgroup kernel from M = 256
  // up, int4 weights only. Between (M = 65..256), the fastest path of every shape in
  // docs/results/2026-12-03-h200-gemm-mid-m/ (all paths timed at M = 128 and 256):
  //   M <= 128: N >= 16384 warp-specialized (8192x28672 81.5 us), N >= 11008 the
  //             overlapped warpgroup kernel (4096x11008 39.1), else 64-row mma.sync
  //             tiles (4096x4096 35.9, 11008x4096 82.8, 8192x8192 64.0, 28672x8192 203.6);
  //   M <= 256: N >= 11008 warp-specialized (4096x11008 45.2, 8192x28672 153.5), K and
  //             N >= 8192 overlapped (8192x8192 69.1, 28672x8192 212.8), else Tile64.
  const bool int4_weights = kind != IntGemmKind::W8A8;
  if (m <= 32) return IntGemmPath::Skinny;
  if (m <= 64) return n >= 16384 ? IntGemmPath::Tile64 : IntGemmPath::Skinny;
  if (m <= 128 && int4_weights) {
    if (n >= 16384) return IntGemmPath::WgmmaWs;
    return n >= 11008 ? IntGemmPath::WgmmaOverlap : IntGemmPath::Tile64;
  }
  if (m <= 256 && int4_weights) {
    if (n >= 11008) return IntGemmPath::WgmmaWs;
    return k >= 8192 && n >= 8192 ? IntGemmPath::WgmmaOverlap : IntGemmPath::Tile64;
  }
  if (m <= 256) return IntGemmPath::Tile64;
  return int4_weights ? IntGemmPath::WgmmaWs : IntGemmPath::Tile128x256;
}

cudaError_t int_gemm(const IntGemmArgs& args, cudaStream_t stream, IntGemmPath path) {
  const bool shape_ok = args.m >= 1 && args.n >= 1 && args.m <= kIntGemmMaxRows && args.n <= kIntGemmMaxRows &&
                        args.k >= kKBlock && args.k <= kIntGemmMaxK && args.k % kKBlock == 0 && args.n % 2 == 0;
  const bool ptr_ok = args.qa != nullptr && args.qb != nullptr && aligned16(args.qa) && aligned16(args.qb) &&
                      (args.acc_out != nullptr ||
                       (args.y_f32 != nullptr && args.y == nullptr && args.sa != nullptr && args.sb != nullptr &&
                        reinterpret_cast<uintptr_t>(args.y_f32) % 8 == 0) ||
                       (args.y != nullptr && args.y_f32 == nullptr && args.sa != nullptr && args.sb != nullptr &&
                        aligned16(args.y) && (args.residual == nullptr || aligned16(args.residual)))) &&
                      (args.acc_out == nullptr || aligned16(args.acc_out));
  // Int8EvenOdd activations need int4 weights; a path named explicitly must read the given layout.
  const bool layout_ok = (args.act_layout == IntGemmActLayout::Standard || args.kind != IntGemmKind::W8A8) &&
                         (path == IntGemmPath::Auto || int_gemm_path_layout(path) == args.act_layout);
  const bool tile_ok = args.rs_token_tile == 0 || args.rs_token_tile == 16 || args.rs_token_tile == 64 ||
                       args.rs_token_tile == 128 || args.rs_token_tile == 256;
  if (!shape_ok || !ptr_ok || !layout_ok || !tile_ok) return cudaErrorInvalidValue;
  Params p{static_cast<int>(args.m), static_cast<int>(args.n), static_cast<int>(args.k),
           static_cast<const uint8_t*>(args.qa), static_cast<const uint8_t*>(args.qb), args.sa, args.sb,
           args.residual, args.y, args.acc_out, args.y_f32, args.bias, args.rs_token_tile,
           args.weights_constant};
  const bool automatic = path == IntGemmPath::Auto;
  if (automatic) path = int_gemm_auto_path(args.kind, args.m, args.n, args.k, args.act_layout);
  auto launch = [&](IntGemmPath chosen) {
    switch (args.kind) {
      case IntGemmKind::W4A4: return launch_kind<IntGemmKind::W4A4>(p, chosen, stream);
      case IntGemmKind::W4A8: return launch_kind<IntGemmKind::W4A8>(p, chosen, stream);
      case IntGemmKind::W8A8: return launch_kind<IntGemmKind::W8A8>(p, chosen, stream);
    }
    return cudaErrorInvalidValue;
  };
  const cudaError_t err = launch(path);
  // The warp-specialized path needs the driver's tensor-map encoder (CUDA 12+ driver);
  // without it the automatic choice falls back to the previous warpgroup kernel.
  if (automatic && path == IntGemmPath::WgmmaWs && err == cudaErrorNotSupported) return launch(IntGemmPath::Wgmma);
  return err;
}

}  // namespace quarot::cuda
