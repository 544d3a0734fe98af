#include "kernels/cuda/flash_attention.cuh"

#include <cmath>

#include "kernels/cuda/mma_f16.cuh"
#include "kernels/cuda/smem_async.cuh"

namespace quarot::cuda {
namespace {

constexpr int kBM = 64;       // query rows per block (16 per warp)
constexpr int kBN = 64;       // keys per tile
constexpr int kThreads = 128;

// Byte offset of 16-byte chunk `chunk` of row `row` in a tile of rows of D halves:
// chunks XOR-ed with the row's low 3 bits, so the 8 rows an ldmatrix reads at one
// logical chunk fall into 8 different bank groups.
template <int D>
__device__ __forceinline__ int tile_off(int row, int chunk) {
  return row * (D * 2) + ((chunk ^ (row & 7)) << 4);
}

// Copies rows [r0, r0 + 64) of one head (row stride `stride` elements) into a
// swizzled tile; rows at or past `rows` are zero-filled (never read from memory).
template <int D>
__device__ __forceinline__ void load_tile(__half* tile, const __half* base, int64_t stride, int r0, int rows) {
  constexpr int kChunks = D / 8;
  for (int i = threadIdx.x; i < kBM * kChunks; i += kThreads) {
    const int row = i / kChunks, ch = i % kChunks;
    const bool ok = r0 + row < rows;
    const __half* src = ok ? base + static_cast<int64_t>(r0 + row) * stride + ch * 8 : base;
    cp_async16(smem_addr(reinterpret_cast<uint8_t*>(tile) + tile_off<D>(row, ch)), src, ok);
  }
}

template <int D>
__global__ void __launch_bounds__(kThreads) flash_attention_kernel(FlashAttentionArgs a, float scale_log2) {
  constexpr int KS = D / 16;  // k-steps over head_dim
  constexpr int DT = D / 8;   // n8 tiles of the output
  extern __shared__ __align__(128) uint8_t smem[];
  __half* qs = reinterpret_cast<__half*>(smem);
  __half* ks = qs + kBM * D;  // [2][kBN][D]
  __half* vs = ks + 2 * kBN * D;

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, tig = lane & 3;
  // Longest causal rows first, so the last wave holds the short blocks.
  const int qb = gridDim.x - 1 - blockIdx.x;
  const int h = blockIdx.y, b = blockIdx.z;
  const int hk = h / (a.heads_q / a.heads_kv);
  const int q0 = qb * kBM;
  const int64_t row0 = static_cast<int64_t>(b) * a.seq;
  const __half* qbase = a.q + row0 * a.q_stride + h * D;
  const __half* kbase = a.k + row0 * a.k_stride + hk * D;
  const __half* vbase = a.v + row0 * a.v_stride + hk * D;

  const int kv_tiles_all = (a.seq + kBN - 1) / kBN;
  const int kv_tiles = a.causal ? min(kv_tiles_all, (q0 + kBM - 1) / kBN + 1) : kv_tiles_all;

  load_tile<D>(qs, qbase, a.q_stride, q0, a.seq);
  load_tile<D>(ks, kbase, a.k_stride, 0, a.seq);
  load_tile<D>(vs, vbase, a.v_stride, 0, a.seq);
  cp_async_commit();

  uint32_t qf[KS][4];
  float o[DT][4];
#pragma unroll
  for (int j = 0; j < DT; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};
  const int qrow[2] = {q0 + warp * 16 + g, q0 + warp * 16 + g + 8};

  for (int kt = 0; kt < kv_tiles; ++kt) {
    cp_async_wait<0>();
    __syncthreads();  // tile kt landed; every warp finished tile kt - 1 (its buffer is free)
    if (kt == 0) {
#pragma unroll
      for (int kk = 0; kk < KS; ++kk) {
        const int row = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
        ldmatrix_x4(qf[kk], smem_addr(reinterpret_cast<uint8_t*>(qs) + tile_off<D>(row, 2 * kk + (lane >> 4))));
      }
    }
    if (kt + 1 < kv_tiles) {
      const int nb = (kt + 1) & 1;
      load_tile<D>(ks + nb * kBN * D, kbase, a.k_stride, (kt + 1) * kBN, a.seq);
      load_tile<D>(vs + nb * kBN * D, vbase, a.v_stride, (kt + 1) * kBN, a.seq);
    }
    cp_async_commit();
    const uint8_t* kt_s = reinterpret_cast<const uint8_t*>(ks + (kt & 1) * kBN * D);
    const uint8_t* vt_s = reinterpret_cast<const uint8_t*>(vs + (kt & 1) * kBN * D);

    // S = Q K^T for this warp's 16 rows and the tile's 64 keys.
    float s[kBN / 8][4];
#pragma unroll
    for (int j = 0; j < kBN / 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < KS; ++kk) {
#pragma unroll
      for (int j = 0; j < kBN / 8; j += 2) {
        uint32_t r[4];
        const int key = j * 8 + (lane & 7) + (lane >> 4) * 8;
        ldmatrix_x4(r, smem_addr(kt_s + tile_off<D>(key, 2 * kk + ((lane >> 3) & 1))));
        mma_f16(s[j], qf[kk], r[0], r[1]);
        mma_f16(s[j + 1], qf[kk], r[2], r[3]);
      }
    }

    // Mask (keys past the sequence, or after the query when causal), then the online softmax
    // in the log2 domain: p = 2^(s * scale * log2(e) - m).
    const int key0 = kt * kBN;
    const bool edge = key0 + kBN > a.seq || (a.causal && key0 + kBN - 1 > q0 + warp * 16);
    float tmax[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int j = 0; j < kBN / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[j][e] * scale_log2;
        if (edge) {
          const int key = key0 + j * 8 + 2 * tig + (e & 1);
          const int qr = qrow[e >> 1];
          if (key >= a.seq || (a.causal && key > qr)) x = -INFINITY;
        }
        s[j][e] = x;
        tmax[e >> 1] = fmaxf(tmax[e >> 1], x);
      }
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 1));
      tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 2));
      // Key 0 is visible to every row and lies in tile 0, so the max is finite from tile 0 on.
      const float m_new = fmaxf(m_run[r], tmax[r]);
      alpha[r] = exp2f(m_run[r] - m_new);
      m_run[r] = m_new;
    }
    float tsum[2] = {0.0f, 0.0f};
    uint32_t pf[kBN / 16][4];
#pragma unroll
    for (int j = 0; j < kBN / 8; ++j) {
      const float p0 = exp2f(s[j][0] - m_run[0]), p1 = exp2f(s[j][1] - m_run[0]);
      const float p2 = exp2f(s[j][2] - m_run[1]), p3 = exp2f(s[j][3] - m_run[1]);
      tsum[0] += p0 + p1;
      tsum[1] += p2 + p3;
      // The accumulator layout of two adjacent n8 tiles is the A fragment of one k16 step.
      pf[j / 2][(j & 1) * 2 + 0] = pack_half2(p0, p1);
      pf[j / 2][(j & 1) * 2 + 1] = pack_half2(p2, p3);
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) l_run[r] = l_run[r] * alpha[r] + tsum[r];
#pragma unroll
    for (int j = 0; j < DT; ++j) {
      o[j][0] *= alpha[0], o[j][1] *= alpha[0];
      o[j][2] *= alpha[1], o[j][3] *= alpha[1];
    }

    // O += P V.
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk) {
#pragma unroll
      for (int j = 0; j < DT; j += 2) {
        uint32_t r[4];
        const int key = kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
        ldmatrix_x4_trans(r, smem_addr(vt_s + tile_off<D>(key, j + (lane >> 4))));
        mma_f16(o[j], pf[kk], r[0], r[1]);
        mma_f16(o[j + 1], pf[kk], r[2], r[3]);
      }
    }
  }
  cp_async_wait<0>();

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 1);
    l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 2);
  }
  const float inv[2] = {1.0f / l_run[0], 1.0f / l_run[1]};
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (qrow[r] >= a.seq) continue;
    __half* dst = a.o + (row0 + qrow[r]) * a.o_stride + h * D + 2 * tig;
#pragma unroll
    for (int j = 0; j < DT; ++j)
      *reinterpret_cast<__half2*>(dst + j * 8) = __floats2half2_rn(o[j][2 * r] * inv[r], o[j][2 * r + 1] * inv[r]);
  }
}

template <int D>
cudaError_t launch(const FlashAttentionArgs& a, cudaStream_t stream) {
  constexpr int kSmem = (kBM + 4 * kBN) * D * 2;
  auto kernel = flash_attention_kernel<D>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
  if (err != cudaSuccess) return err;
  const dim3 grid((a.seq + kBM - 1) / kBM, a.heads_q, a.batch);
  const float scale_log2 = a.scale * 1.4426950408889634f;
  kernel<<<grid, kThreads, kSmem, stream>>>(a, scale_log2);
  return cudaGetLastError();
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

cudaError_t flash_attention(const FlashAttentionArgs& a, cudaStream_t stream) {
  const int d = a.head_dim;
  const bool shape_ok = (d == 64 || d == 128) && a.heads_q >= 1 && a.heads_kv >= 1 &&
                        a.heads_q % a.heads_kv == 0 && a.heads_q <= 65535 && a.batch >= 1 && a.batch <= 65535 &&
                        a.seq >= 1 && std::isfinite(a.scale) && a.scale > 0.0f;
  if (!shape_ok) return cudaErrorInvalidValue;
  const int64_t wq = static_cast<int64_t>(a.heads_q) * d, wkv = static_cast<int64_t>(a.heads_kv) * d;
  const bool stride_ok = a.q_stride >= wq && a.o_stride >= wq && a.k_stride >= wkv && a.v_stride >= wkv &&
                         a.q_stride % 8 == 0 && a.k_stride % 8 == 0 && a.v_stride % 8 == 0 && a.o_stride % 8 == 0;
  const bool ptr_ok = a.q != nullptr && a.k != nullptr && a.v != nullptr && a.o != nullptr && aligned16(a.q) &&
                      aligned16(a.k) && aligned16(a.v) && aligned16(a.o);
  if (!stride_ok || !ptr_ok) return cudaErrorInvalidValue;
  return d == 128 ? launch<128>(a, stream) : launch<64>(a, stream);
}

}  // namespace quarot::cuda
