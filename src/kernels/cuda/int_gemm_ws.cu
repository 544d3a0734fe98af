// The warp-specialized warpgroup GEMM (IntGemmPath::WgmmaWs), int4 weights (W4A4, W4A8).
//
// Why a producer warpgroup: the tensor cores read both wgmma operands from shared
// memory as int8, so packed int4 must be widened on the way in, and in the older
// warpgroup kernel the consumers did that themselves between their own products
// (store, barrier, multiply, wait), idling the tensor cores for part of every
// k-block. Here a block is three warpgroups: warpgroup 0 loads packed k-blocks from
// global memory into registers (one k-block ahead), widens them (int4 -> 16 q;
// W4A8's int8 activations go by cp.async) and stores them as 128-byte-
// swizzled int8 tiles into a 4-stage ring; warpgroups 1 and 2 each run
// wgmma m64n256k32 (both operands from shared memory) on 64 rows of the 128 x 256
// block tile, keeping one k-block's products in flight while the next is issued.
// The grid is persistent (one block per multiprocessor looping over tiles), so the
// producer fills the ring for the next tile while the consumers store this one.
// Stage hand-off uses mbarriers: `full` (128 producer arrivals, after each thread's
// fence.proxy.async so the tensor cores see the generic-proxy stores) and `empty`
// (one arrival per consumer warp once its wgmma group reading the stage retired).
// Loading straight into registers, not through a cp.async staging ring, keeps shared
// memory traffic at the widened stores plus the tensor cores' reads (about 128 KiB per
// k-block, two thirds of the SM's shared-memory bandwidth at the target rate).
//
// Exactness: the same widening and the same epilogue (store_pair) as the other paths,
// so outputs are bit-identical to them and to the host reference.
#include "kernels/cuda/int_gemm_internal.cuh"

namespace quarot::cuda::int_gemm_detail {
namespace {

constexpr int kBM = 128, kBN = 256, kStages = 4, kThreads = 384;
constexpr int kTileA = kBM * 128, kTileB = kBN * 128;  // int8 bytes per k-block
constexpr int kStageBytes = kTileA + kTileB;
constexpr int kSmem = 1024 /* alignment slack */ + kStages * kStageBytes + 2 * kStages * 8;

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}\n" ::"r"(bar) : "memory");
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

__device__ __forceinline__ void fence_operands(int32_t (&d)[128]) {
#pragma unroll
  for (int i = 0; i < 128; ++i) asm volatile("" : "+r"(d[i])::"memory");
}

__device__ __forceinline__ void wgmma_m64n256k32_ss(int32_t (&d)[128], uint64_t desc_a, uint64_t desc_b) {
  asm volatile(
      "{\n"
      "wgmma.mma_async.sync.aligned.m64n256k32.s32.s8.s8 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, %128, %129, 1;\n"
      "}\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]), "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]), "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]), "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]), "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]), "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63]), "+r"(d[64]), "+r"(d[65]), "+r"(d[66]), "+r"(d[67]), "+r"(d[68]), "+r"(d[69]), "+r"(d[70]), "+r"(d[71]), "+r"(d[72]), "+r"(d[73]), "+r"(d[74]), "+r"(d[75]), "+r"(d[76]), "+r"(d[77]), "+r"(d[78]), "+r"(d[79]), "+r"(d[80]), "+r"(d[81]), "+r"(d[82]), "+r"(d[83]), "+r"(d[84]), "+r"(d[85]), "+r"(d[86]), "+r"(d[87]), "+r"(d[88]), "+r"(d[89]), "+r"(d[90]), "+r"(d[91]), "+r"(d[92]), "+r"(d[93]), "+r"(d[94]), "+r"(d[95]), "+r"(d[96]), "+r"(d[97]), "+r"(d[98]), "+r"(d[99]), "+r"(d[100]), "+r"(d[101]), "+r"(d[102]), "+r"(d[103]), "+r"(d[104]), "+r"(d[105]), "+r"(d[106]), "+r"(d[107]), "+r"(d[108]), "+r"(d[109]), "+r"(d[110]), "+r"(d[111]), "+r"(d[112]), "+r"(d[113]), "+r"(d[114]), "+r"(d[115]), "+r"(d[116]), "+r"(d[117]), "+r"(d[118]), "+r"(d[119]), "+r"(d[120]), "+r"(d[121]), "+r"(d[122]), "+r"(d[123]), "+r"(d[124]), "+r"(d[125]), "+r"(d[126]), "+r"(d[127])
      : "l"(desc_a), "l"(desc_b)
      : "memory");
}

// One thread's share of a packed k-block in registers: W4A4 4 A units (row, 32-k chunk
// c: 16 packed bytes) and 8 B units; W4A8 the 8 B units only (its int8 activations
// need no widening and go straight to shared memory by cp.async).
template <IntGemmKind KIND>
struct Packed {
  static constexpr int kALoads = a_is_int4(KIND) ? 4 : 0;
  uint4 v[kALoads + 8];
};

template <IntGemmKind KIND>
__device__ __forceinline__ void load_packed(const Params& p, int m0, int n0, int kt, int tid, Packed<KIND>& out) {
  constexpr int kProducers = kThreads / 3;
  const int64_t lda = p.k / 2, ldb = p.k / 2;
#pragma unroll
  for (int j = 0; j < Packed<KIND>::kALoads; ++j) {
    const int i = tid + kProducers * j, row = i >> 2, c = i & 3;
    const int m = m0 + row;
    out.v[j] = m < p.m ? ld_stream(p.qa + m * lda + kt * 64 + c * 16) : make_uint4(0, 0, 0, 0);
  }
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int i = tid + kProducers * j, row = i >> 2, c = i & 3;
    const int n = n0 + row;
    out.v[Packed<KIND>::kALoads + j] = n < p.n ? ld_stream(p.qb + n * ldb + kt * 64 + c * 16) : make_uint4(0, 0, 0, 0);
  }
}

// Logical int8 chunk `chunk` (16 k) of `row` in a 128-byte-swizzled tile.
__device__ __forceinline__ uint8_t* tile_chunk(uint8_t* tile, int row, int chunk) {
  return tile + row * 128 + ((chunk ^ (row & 7)) << 4);
}

// Packed chunk c (32 k, low nibble first) -> two int8 chunks of 16 q. W4A4 (both
// operands widened alike): chunk 2c the even k, 2c + 1 the odd k. W4A8 (the int8
// activations stay in k order): chunk 2c k 0..15, 2c + 1 k 16..31 of the 32.
template <bool kNaturalOrder>
__device__ __forceinline__ void store_widened(uint8_t* tile, int row, int c, uint4 w) {
  const uint32_t l[4] = {nib_lo(w.x), nib_lo(w.y), nib_lo(w.z), nib_lo(w.w)};
  const uint32_t h[4] = {nib_hi(w.x), nib_hi(w.y), nib_hi(w.z), nib_hi(w.w)};
  uint4 first, second;
  if constexpr (kNaturalOrder) {
    first = make_uint4(__byte_perm(l[0], h[0], 0x5140), __byte_perm(l[0], h[0], 0x7362),
                       __byte_perm(l[1], h[1], 0x5140), __byte_perm(l[1], h[1], 0x7362));
    second = make_uint4(__byte_perm(l[2], h[2], 0x5140), __byte_perm(l[2], h[2], 0x7362),
                        __byte_perm(l[3], h[3], 0x5140), __byte_perm(l[3], h[3], 0x7362));
  } else {
    first = make_uint4(l[0], l[1], l[2], l[3]);
    second = make_uint4(h[0], h[1], h[2], h[3]);
  }
  *reinterpret_cast<uint4*>(tile_chunk(tile, row, 2 * c)) = first;
  *reinterpret_cast<uint4*>(tile_chunk(tile, row, 2 * c + 1)) = second;
}

template <IntGemmKind KIND>
__device__ __forceinline__ void store_stage(uint8_t* stage, int tid, const Packed<KIND>& in) {
  constexpr int kProducers = kThreads / 3;
  uint8_t* ta = stage;
  uint8_t* tb = stage + kTileA;
#pragma unroll
  for (int j = 0; j < Packed<KIND>::kALoads; ++j) {
    const int i = tid + kProducers * j, row = i >> 2, c = i & 3;
    store_widened<false>(ta, row, c, in.v[j]);
  }
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int i = tid + kProducers * j, row = i >> 2, c = i & 3;
    store_widened<!a_is_int4(KIND)>(tb, row, c, in.v[Packed<KIND>::kALoads + j]);
  }
}

// W4A8: this thread's 8 of the k-block's 1024 16-byte activation chunks, global ->
// shared by cp.async; the stage's `full` barrier also waits for their arrival.
__device__ __forceinline__ void copy_int8_activations(const Params& p, int m0, int kt, int tid, uint8_t* ta,
                                                      uint32_t full_bar) {
  constexpr int kProducers = kThreads / 3;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int i = tid + kProducers * j, row = i >> 3, c = i & 7;
    const bool ok = m0 + row < p.m;
    const uint8_t* src = ok ? p.qa + (m0 + row) * static_cast<int64_t>(p.k) + kt * 128 + c * 16 : p.qa;
    cp_async16(smem_addr(tile_chunk(ta, row, c)), src, ok);
  }
  asm volatile("cp.async.mbarrier.arrive.shared::cta.b64 [%0];\n" ::"r"(full_bar) : "memory");
}

template <IntGemmKind KIND>
__global__ void __launch_bounds__(kThreads, 1) wgmma_ws_kernel(Params p) {
  static_assert(b_is_int4(KIND), "the producer widens int4 weights");
  extern __shared__ uint8_t smem_raw[];
  // The swizzle works on address bits, so the int8 tiles start on 1024 bytes.
  const uint32_t raw_addr = smem_addr(smem_raw);
  uint8_t* smem = smem_raw + ((1024 - (raw_addr & 1023)) & 1023);
  const uint32_t full0 = smem_addr(smem + kStages * kStageBytes), empty0 = full0 + 8 * kStages;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int wg = warp >> 2;
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full0 + 8 * s, kThreads / 3);
      mbar_init(empty0 + 8 * s, 8);
    }
  }
  __syncthreads();

  // Persistent: block b takes tiles b, b + gridDim.x, ...; its k-blocks are numbered
  // j = 0, 1, ... across those tiles, j % kStages is the stage and j / kStages the round.
  const int ktiles = p.k / kKBlock;
  const int tiles = ((p.m + kBM - 1) / kBM) * ((p.n + kBN - 1) / kBN);
  const int my_tiles = blockIdx.x < tiles ? (tiles - 1 - blockIdx.x) / gridDim.x + 1 : 0;
  const int jobs = my_tiles * ktiles;
  auto tile_of = [&](int t) { return grouped_tile<kBM, kBN>(blockIdx.x + t * gridDim.x, p.m, p.n); };

  if (wg == 0) {
    // Producer: the next k-blocks are in flight from memory while k-block j is widened
    // and stored (register sets used in turn, so no register copy waits on a load).
    auto load = [&](Packed<KIND>& buf, int j) {
      if (j >= jobs) return;
      const TileCoord t = tile_of(j / ktiles);
      load_packed<KIND>(p, t.m0, t.n0, j % ktiles, tid, buf);
    };
    auto produce = [&](const Packed<KIND>& buf, int j) {
      const int s = j % kStages;
      mbar_wait(empty0 + 8 * s, ((j / kStages) & 1) ^ 1);  // the first round passes at once
      uint8_t* stage = smem + s * kStageBytes;
      if constexpr (!a_is_int4(KIND)) copy_int8_activations(p, tile_of(j / ktiles).m0, j % ktiles, tid, stage, full0 + 8 * s);
      store_stage<KIND>(stage, tid, buf);
      fence_proxy_async();  // this thread's stores, visible to the tensor cores
      mbar_arrive(full0 + 8 * s);
    };
    // Two register sets used in turn: k-block j + 1 is in flight while j is stored.
    Packed<KIND> b0, b1;
    load(b0, 0);
    for (int j = 0; j < jobs; j += 2) {
      load(b1, j + 1);
      produce(b0, j);
      if (j + 1 >= jobs) break;
      load(b0, j + 2);
      produce(b1, j + 1);
    }
    return;
  }

  // Consumers: warpgroup cw owns rows 64 cw .. 64 cw + 63 of each block tile.
  const int cw = wg - 1, warp_in_wg = warp & 3;
  const int g = lane >> 2, tig = lane & 3;
  const uint32_t stage0 = smem_addr(smem);
  int j = 0;
  for (int t = 0; t < my_tiles; ++t) {
    int32_t acc[128];
#pragma unroll
    for (int i = 0; i < 128; ++i) acc[i] = 0;
    for (int kt = 0; kt < ktiles; ++kt, ++j) {
      const int s = j % kStages;
      mbar_wait(full0 + 8 * s, (j / kStages) & 1);
      if constexpr (!a_is_int4(KIND)) fence_proxy_async();  // the cp.async activations, for the tensor cores
      const uint32_t a_addr = stage0 + s * kStageBytes + cw * 64 * 128;
      const uint32_t b_addr = stage0 + s * kStageBytes + kTileA;
      fence_operands(acc);
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < 4; ++ks) {
        wgmma_m64n256k32_ss(acc, wgmma_desc_sw128(a_addr + 32 * ks), wgmma_desc_sw128(b_addr + 32 * ks));
      }
      wgmma_commit();
      wgmma_wait<1>();  // k-block j - 1's products have read their stage
      fence_operands(acc);
      if (kt > 0 && lane == 0) mbar_arrive(empty0 + 8 * ((j - 1) % kStages));
    }
    wgmma_wait<0>();
    fence_operands(acc);
    if (lane == 0) mbar_arrive(empty0 + 8 * ((j - 1) % kStages));  // the tile's last stage

    // The producer is already filling the ring for the next tile while this one is stored.
    // Accumulator layout per n8 block i: acc[4i], acc[4i+1] at row g, columns 8i + 2 tig (+1);
    // acc[4i+2], acc[4i+3] at row g + 8.
    const TileCoord tc = tile_of(t);
    const int row = tc.m0 + cw * 64 + warp_in_wg * 16 + g;
#pragma unroll
    for (int i = 0; i < 32; ++i) {
      const int col = tc.n0 + 8 * i + 2 * tig;
      store_pair<acc_shift(KIND)>(p, row, col, acc[4 * i], acc[4 * i + 1]);
      store_pair<acc_shift(KIND)>(p, row + 8, col, acc[4 * i + 2], acc[4 * i + 3]);
    }
  }
}

int multiprocessors() {
  static const int count = [] {
    int device = 0, sms = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || sms < 1) {
      return 132;
    }
    return sms;
  }();
  return count;
}

template <IntGemmKind KIND>
cudaError_t launch(const Params& p, cudaStream_t stream) {
  auto kernel = wgmma_ws_kernel<KIND>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
  if (err != cudaSuccess) return err;
  const int64_t tiles = static_cast<int64_t>((p.m + kBM - 1) / kBM) * ((p.n + kBN - 1) / kBN);
  if (tiles > 0x7fffffff) return cudaErrorInvalidValue;
  // One block per multiprocessor (its shared memory), each looping over tiles.
  const int64_t blocks = tiles < multiprocessors() ? tiles : multiprocessors();
  kernel<<<static_cast<unsigned>(blocks), kThreads, kSmem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_wgmma_ws(const Params& p, IntGemmKind kind, cudaStream_t stream) {
  switch (kind) {
    case IntGemmKind::W4A4: return launch<IntGemmKind::W4A4>(p, stream);
    case IntGemmKind::W4A8: return launch<IntGemmKind::W4A8>(p, stream);
    default: return cudaErrorInvalidValue;  // int8 weights: nothing to widen, no ws path
  }
}

}  // namespace quarot::cuda::int_gemm_detail
