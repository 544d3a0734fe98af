// The warp-specialized warpgroup GEMM (IntGemmPath::WgmmaWs), int4 weights (W4A4, W4A8).
//
// Why this shape: the tensor cores read both wgmma operands from shared memory as
// int8, so packed int4 must be widened on the way in. A block is three warpgroups:
//   * warpgroup 0 (producer): one thread has the TMA unit copy each k-block's packed
//     operands (W4A4: the int4 activations and weights; W4A8: the int4 weights) into a
//     3-stage "raw" ring, running ahead; all 128 threads then widen a raw stage (int4
//     -> 16 q) into a 128-byte-swizzled int8 stage of a 3-stage ring. W4A8's int8
//     activations need no widening: the TMA writes them straight into the int8 stage,
//     swizzled by the copy itself.
//   * warpgroups 1 and 2 (consumers) each run wgmma m64n256k32 (both operands from
//     shared memory) on 64 rows of the 128 x 256 block tile, keeping one k-block's
//     products in flight while the next is issued.
// Loads through registers (ld.global per thread) were the first version; on the H200
// they held the kernel to 625-805 TOPS while the same kernel without loads reached
// 1.2-1.26 POPS (docs/cuda.md): the TMA keeps memory requests off the threads. This
// version reaches 0.91-1.0 POPS on the 70B shapes; it is bound by shared-memory traffic
// (the widening's stores and reads on top of the tensor cores' reads). W4A4 activations
// taken into registers instead (wgmma with a register A) measured slower.
// Hand-offs are mbarriers: raw_full (the TMA's byte count), raw_empty (128 producer
// arrivals once a raw stage is read), full (128 producer arrivals after each thread's
// fence.proxy.async, plus W4A8's activation bytes), empty (one arrival per consumer
// warp once its wgmma group reading the stage retired). The grid is persistent (one
// block per multiprocessor looping over tiles), so the producer fills the rings for
// the next tile while the consumers store this one.
//
// Exactness: the same widening and the same epilogue (store_pair) as the other paths,
// so outputs are bit-identical to them and to the host reference.
#include <cudaTypedefs.h>

#include <mutex>

#include "kernels/cuda/int_gemm_internal.cuh"

namespace quarot::cuda::int_gemm_detail {
namespace {

constexpr int kBM = 128, kBN = 256, kStages = 3, kRawStages = 3, kThreads = 384, kProducers = 128;
constexpr int kTileA = kBM * 128, kTileB = kBN * 128;  // int8 bytes per k-block
constexpr int kStageBytes = kTileA + kTileB;
// Raw (packed) bytes per k-block: int4 activations (W4A4 only) then int4 weights.
constexpr int kRawA = kBM * 64, kRawB = kBN * 64;
// The epilogue's scales, staged per tile (two buffers: tile t uses t % 2).
constexpr int kScaleBytes = 2 * (kBM + kBN) * 4;
template <IntGemmKind KIND>
__host__ __device__ constexpr int raw_bytes() {
  return (a_is_int4(KIND) ? kRawA : 0) + kRawB;
}
template <IntGemmKind KIND>
__host__ __device__ constexpr int smem_bytes() {
  return 1024 /* alignment slack */ + kStages * kStageBytes + kRawStages * raw_bytes<KIND>() +
         8 * (2 * kStages + 2 * kRawStages) + kScaleBytes;
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
  *reinterpret_cast<uint4*>(tile + swizzled<128>(row, 2 * c)) = first;
  *reinterpret_cast<uint4*>(tile + swizzled<128>(row, 2 * c + 1)) = second;
}

// Widens one raw stage (rows of 64 packed bytes, as the TMA wrote them) into an int8
// stage: this thread's 16-byte chunks i = tid + 128 j, row i / 4, chunk i % 4.
template <IntGemmKind KIND>
__device__ __forceinline__ void widen_stage(const uint8_t* raw, uint8_t* stage, int tid) {
  constexpr int kA = a_is_int4(KIND) ? kRawA / 16 / kProducers : 0, kB = kRawB / 16 / kProducers;
  uint4 v[kA + kB];
#pragma unroll
  for (int j = 0; j < kA + kB; ++j) v[j] = reinterpret_cast<const uint4*>(raw)[tid + kProducers * j];
#pragma unroll
  for (int j = 0; j < kA; ++j) {
    const int i = tid + kProducers * j;
    store_widened<false>(stage, i >> 2, i & 3, v[j]);
  }
#pragma unroll
  for (int j = 0; j < kB; ++j) {
    const int i = tid + kProducers * j;
    store_widened<!a_is_int4(KIND)>(stage + kTileA, i >> 2, i & 3, v[kA + j]);
  }
}

template <IntGemmKind KIND>
__global__ void __launch_bounds__(kThreads, 1)
    wgmma_ws_kernel(const __grid_constant__ CUtensorMap tma_a, const __grid_constant__ CUtensorMap tma_b, Params p) {
  static_assert(b_is_int4(KIND), "the producer widens int4 weights");
  extern __shared__ uint8_t smem_raw[];
  // The swizzle works on address bits, so the int8 tiles start on 1024 bytes.
  const uint32_t raw_addr = smem_addr(smem_raw);
  uint8_t* smem = smem_raw + ((1024 - (raw_addr & 1023)) & 1023);
  uint8_t* raw_ring = smem + kStages * kStageBytes;
  const uint32_t full0 = smem_addr(raw_ring + kRawStages * raw_bytes<KIND>());
  const uint32_t empty0 = full0 + 8 * kStages, raw_full0 = empty0 + 8 * kStages, raw_empty0 = raw_full0 + 8 * kRawStages;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int wg = warp >> 2;
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full0 + 8 * s, kProducers);
      mbar_init(empty0 + 8 * s, 8);
    }
    for (int s = 0; s < kRawStages; ++s) {
      mbar_init(raw_full0 + 8 * s, 1);
      mbar_init(raw_empty0 + 8 * s, kProducers);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  // Persistent: block b takes tiles b, b + gridDim.x, ...; its k-blocks are numbered
  // j = 0, 1, ... across those tiles; j % stages is the stage, j / stages the round.
  const int ktiles = p.k / kKBlock;
  const int tiles = ((p.m + kBM - 1) / kBM) * ((p.n + kBN - 1) / kBN);
  const int my_tiles = blockIdx.x < tiles ? (tiles - 1 - blockIdx.x) / gridDim.x + 1 : 0;
  const int jobs = my_tiles * ktiles;
  auto tile_of = [&](int t) { return grouped_tile<kBM, kBN>(blockIdx.x + t * gridDim.x, p.m, p.n); };

  if (wg == 0) {
    // Thread 0 keeps the TMA kRawStages - 1 k-blocks ahead of the widening.
    auto fetch = [&](int j) {
      if (j >= jobs) return;
      const int rs = j % kRawStages;
      mbar_wait(raw_empty0 + 8 * rs, ((j / kRawStages) & 1) ^ 1);  // the first round passes at once
      const uint32_t bar = raw_full0 + 8 * rs;
      mbar_arrive_expect_tx(bar, raw_bytes<KIND>());
      const TileCoord t = tile_of(j / ktiles);
      const int kt = j % ktiles;
      const uint32_t dst = smem_addr(raw_ring + rs * raw_bytes<KIND>());
      if constexpr (a_is_int4(KIND)) tma_load_2d(dst, &tma_a, kt * 64, t.m0, bar);
      tma_load_2d(dst + (a_is_int4(KIND) ? kRawA : 0), &tma_b, kt * 64, t.n0, bar);
    };
    if (tid == 0) {
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&tma_a)) : "memory");
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&tma_b)) : "memory");
      for (int j = 0; j + 1 < kRawStages; ++j) fetch(j);
    }
    for (int j = 0; j < jobs; ++j) {
      if (tid == 0) fetch(j + kRawStages - 1);
      const int s = j % kStages, rs = j % kRawStages;
      uint8_t* stage = smem + s * kStageBytes;
      mbar_wait(empty0 + 8 * s, ((j / kStages) & 1) ^ 1);
      if constexpr (!a_is_int4(KIND)) {
        if (tid == 0) {  // int8 activations: straight into the stage, swizzled by the TMA
          mbar_expect_tx(full0 + 8 * s, kTileA);
          tma_load_2d(smem_addr(stage), &tma_a, (j % ktiles) * 128, tile_of(j / ktiles).m0, full0 + 8 * s);
        }
      }
      mbar_wait(raw_full0 + 8 * rs, (j / kRawStages) & 1);
      widen_stage<KIND>(raw_ring + rs * raw_bytes<KIND>(), stage, tid);
      mbar_arrive(raw_empty0 + 8 * rs);
      fence_proxy_async();  // this thread's stores, visible to the tensor cores
      mbar_arrive(full0 + 8 * s);
    }
    return;
  }

  // Consumers: warpgroup cw owns rows 64 cw .. 64 cw + 63 of each block tile.
  const int cw = wg - 1, warp_in_wg = warp & 3;
  const int g = lane >> 2, tig = lane & 3;
  const int ct = tid - kProducers;  // 0..255
  const uint32_t stage0 = smem_addr(smem);
  float* scale_buf = reinterpret_cast<float*>(raw_ring + kRawStages * raw_bytes<KIND>() + 8 * (2 * kStages + 2 * kRawStages));
  const bool scaled = p.acc_out == nullptr;
  int j = 0;
  for (int t = 0; t < my_tiles; ++t) {
    // The tile's scales, loaded now so their latency hides behind the products.
    const TileCoord tc = tile_of(t);
    const float pre_sb = scaled && tc.n0 + ct < p.n ? p.sb[tc.n0 + ct] : 0.0f;
    const float pre_sa = scaled && ct < kBM && tc.m0 + ct < p.m ? p.sa[tc.m0 + ct] : 0.0f;
    int32_t acc[128];
#pragma unroll
    for (int i = 0; i < 128; ++i) acc[i] = 0;
    for (int kt = 0; kt < ktiles; ++kt, ++j) {
      const int s = j % kStages;
      mbar_wait(full0 + 8 * s, (j / kStages) & 1);
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

    float* sc = scale_buf + (t & 1) * (kBM + kBN);
    sc[kBM + ct] = pre_sb;
    if (ct < kBM) sc[ct] = pre_sa;
    asm volatile("bar.sync 1, 256;\n" ::: "memory");  // both consumer warpgroups' scales are in place

    // Accumulator layout per n8 block i: acc[4i], acc[4i+1] at row g, columns 8i + 2 tig (+1);
    // acc[4i+2], acc[4i+3] at row g + 8.
    const int r = cw * 64 + warp_in_wg * 16 + g;
    const float sa0 = sc[r], sa1 = sc[r + 8];
#pragma unroll
    for (int i = 0; i < 32; ++i) {
      const int c = 8 * i + 2 * tig;
      const float sb0 = sc[kBM + c], sb1 = sc[kBM + c + 1];
      store_pair_scaled<acc_shift(KIND)>(p, tc.m0 + r, tc.n0 + c, acc[4 * i], acc[4 * i + 1], sa0, sb0, sb1);
      store_pair_scaled<acc_shift(KIND)>(p, tc.m0 + r + 8, tc.n0 + c, acc[4 * i + 2], acc[4 * i + 3], sa1, sb0, sb1);
    }
  }
}

template <IntGemmKind KIND>
cudaError_t launch(const Params& p, cudaStream_t stream) {
  CUtensorMap map_a{}, map_b{};
  const bool ok = a_is_int4(KIND) ? encode_rows(&map_a, p.qa, p.m, p.k / 2, 64, kBM, 0)
                                  : encode_rows(&map_a, p.qa, p.m, p.k, 128, kBM, 128);
  if (!ok || !encode_rows(&map_b, p.qb, p.n, p.k / 2, 64, kBN, 0)) return cudaErrorNotSupported;
  auto kernel = wgmma_ws_kernel<KIND>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_bytes<KIND>());
  if (err != cudaSuccess) return err;
  const int64_t tiles = static_cast<int64_t>((p.m + kBM - 1) / kBM) * ((p.n + kBN - 1) / kBN);
  if (tiles > 0x7fffffff) return cudaErrorInvalidValue;
  // One block per multiprocessor (its shared memory), each looping over tiles.
  const int64_t blocks = tiles < multiprocessors() ? tiles : multiprocessors();
  kernel<<<static_cast<unsigned>(blocks), kThreads, smem_bytes<KIND>(), stream>>>(map_a, map_b, p);
  return cudaGetLastError();
}

}  // namespace

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

// cuTensorMapEncodeTiled from the driver, found through the runtime (no link to libcuda).
PFN_cuTensorMapEncodeTiled_v12000 encode_tiled() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    void* ptr = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &ptr, 12000, cudaEnableDefault, &found) ==
            cudaSuccess &&
        found == cudaDriverEntryPointSuccess) {
      fn = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(ptr);
    }
  });
  return fn;
}

bool tma_available() { return encode_tiled() != nullptr; }

// A row-major byte matrix [rows, row_bytes] read in boxes of box_x bytes x box_y rows.
bool encode_rows(CUtensorMap* map, const void* base, int64_t rows, int64_t row_bytes, int box_x, int box_y,
                 int swizzle_bytes) {
  PFN_cuTensorMapEncodeTiled_v12000 fn = encode_tiled();
  if (fn == nullptr) return false;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(row_bytes), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(row_bytes)};
  const cuuint32_t box[2] = {static_cast<cuuint32_t>(box_x), static_cast<cuuint32_t>(box_y)};
  const cuuint32_t elem_strides[2] = {1, 1};
  return fn(map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, const_cast<void*>(base), dims, strides, box, elem_strides,
            CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle_bytes == 128 ? CU_TENSOR_MAP_SWIZZLE_128B
            : swizzle_bytes == 64 ? CU_TENSOR_MAP_SWIZZLE_64B
                                  : CU_TENSOR_MAP_SWIZZLE_NONE,
            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

cudaError_t launch_wgmma_ws(const Params& p, IntGemmKind kind, cudaStream_t stream) {
  switch (kind) {
    case IntGemmKind::W4A4: return launch<IntGemmKind::W4A4>(p, stream);
    case IntGemmKind::W4A8: return launch<IntGemmKind::W4A8>(p, stream);
    default: return cudaErrorInvalidValue;  // int8 weights: nothing to widen, no ws path
  }
}

}  // namespace quarot::cuda::int_gemm_detail
