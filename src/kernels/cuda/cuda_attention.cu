// cuda_attention (cuda_kv_attention.h): one kernel for prefill and decode.
//
// Work split. The query vectors of one KV head (n rows x group heads, vector i =
// row i / group, head kv_head * group + i % group) are cut into blocks of up to
// kMaxQ vectors; each thread block takes one such query block and one chunk of
// cache positions, so every K/V tile it dequantizes serves all the query heads
// that share the KV head (GQA). When the (KV head, query block) pairs alone cannot
// fill the GPU (decode: n_kv_heads blocks), the positions are split into chunks
// (flash-decoding): each block writes its unnormalized partial {m, l, o} and a
// second kernel merges the chunks in chunk order. Otherwise (prefill) one chunk
// covers everything and the block writes the normalized output itself.
//
// Inside a block, per tile of kTile positions: dequantize K into shared memory
// (FP32, exactly kv_store_q's (code - zero) * scale, IntactKV's FP32 position 0),
// scores = scale * q . k with the causal mask (row t sees positions <= pos0 + t),
// online softmax (running max m, running sum l, FP32, expf), dequantize V into the
// same buffer, o = o * exp(m_old - m_new) + sum_j p_j v_j with o in registers.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "kernels/cuda/cuda_kv_attention.h"
#include "kernels/cuda/cuda_kv_storage.cuh"

namespace quarot::cuda {

namespace {

constexpr int kThreads = 128;  // 4 warps
constexpr int kTile = 32;      // positions per tile: one per lane in the softmax step
constexpr int kMaxQ = 16;      // query vectors per block
constexpr int kMaxHeadDim = 256;
constexpr int kMaxPerThread = kMaxQ * kMaxHeadDim / kThreads;  // o values each thread keeps
// Chunks at least this long: below it the partials cost more than they save.
constexpr int kMinChunk = 64;

// How positions 0 .. len - 1 are cut into chunks when up to `want` are wanted
// (chunks of at least kMinChunk positions, a multiple of kTile each). Host and
// device evaluate the same integer formula, so a recorded step splits exactly as
// the direct call at its position would.
struct Split {
  int64_t chunks, chunk;
};
__host__ __device__ inline Split split_positions(int64_t len, int64_t want) {
  const int64_t by_len = (len + kMinChunk - 1) / kMinChunk;
  int64_t chunks = want < by_len ? want : by_len;
  if (chunks < 1) chunks = 1;
  int64_t chunk = (len + chunks - 1) / chunks;
  chunk = (chunk + kTile - 1) / kTile * kTile;
  return {(len + chunk - 1) / chunk, chunk};
}

struct AttnArgs {
  const int* dev_pos = nullptr;  // recorded step: pos0 from here, len = pos0 + n, chunk from split_positions
  int64_t want_chunks = 1;       // with dev_pos: split_positions' `want`
  const float* q = nullptr;
  float* out = nullptr;
  float* part_o = nullptr;   // [n * n_heads, n_chunks, head_dim] when n_chunks > 1
  float* part_ml = nullptr;  // [n * n_heads, n_chunks, 2]
  KvSideView k, v;
  int n = 0, pos0 = 0, len = 0;
  int n_heads = 0, head_dim = 0, group = 0;
  int q_per_block = 0, n_chunks = 1, chunk = 0;
  float scale = 1.0f;
};

// Positions t0 .. t0 + rows - 1 of KV head `head` into dst [kTile, head_dim + 1]
// (the +1 keeps the column reads of the score loop free of bank conflicts); rows
// rows .. kTile - 1 are zeroed so masked weights never meet garbage (0 * NaN).
// The scalar reference path: any even head_dim, any group size.
__device__ void load_tile_any(const KvSideView& s, int head, int t0, int rows, float* dst) {
  const int hd = s.head_dim, ld = hd + 1;
  if (s.fp != nullptr) {
    const int64_t kvd = static_cast<int64_t>(s.n_kv_heads) * hd;
    const int half = hd / 2;
    for (int e = threadIdx.x; e < rows * half; e += kThreads) {
      const int j = e / half, d = 2 * (e % half);
      const float2 x = *reinterpret_cast<const float2*>(s.fp + (t0 + j) * kvd + static_cast<int64_t>(head) * hd + d);
      dst[j * ld + d] = x.x;
      dst[j * ld + d + 1] = x.y;
    }
  } else {
    const int64_t slot0 = static_cast<int64_t>(head) * s.capacity + t0;
    const uint8_t* codes = s.codes + slot0 * s.code_bytes;
    const float* params = s.params + slot0 * 2 * s.groups;
    const float* first = (s.first_row != nullptr && t0 == 0) ? s.first_row + static_cast<int64_t>(head) * hd : nullptr;
    const int gs = s.group_size;
    for (int b = threadIdx.x; b < rows * s.code_bytes; b += kThreads) {
      const int j = b / s.code_bytes, cb = b % s.code_bytes;
      const uint32_t byte = codes[b];
      const float* p = params + j * 2 * s.groups;
      if (s.packed) {
        const int d0 = 2 * cb, d1 = d0 + 1;
        float x0 = __fmul_rn(__fsub_rn(static_cast<float>(byte & 15u), p[2 * (d0 / gs) + 1]), p[2 * (d0 / gs)]);
        if (first != nullptr && j == 0) x0 = first[d0];
        dst[j * ld + d0] = x0;
        if (d1 < hd) {
          float x1 = __fmul_rn(__fsub_rn(static_cast<float>(byte >> 4), p[2 * (d1 / gs) + 1]), p[2 * (d1 / gs)]);
          if (first != nullptr && j == 0) x1 = first[d1];
          dst[j * ld + d1] = x1;
        }
      } else {
        float x = __fmul_rn(__fsub_rn(static_cast<float>(byte), p[2 * (cb / gs) + 1]), p[2 * (cb / gs)]);
        if (first != nullptr && j == 0) x = first[cb];
        dst[j * ld + cb] = x;
      }
    }
  }
  for (int e = threadIdx.x; e < (kTile - rows) * ld; e += kThreads) dst[rows * ld + e] = 0.0f;
}

// The same tile for a compile-time head_dim: every thread issues all its loads
// (16-byte FP32 vectors, or 4-byte words of codes plus their {scale, zero}) before
// using any, so a tile costs one memory latency instead of one per element.
template <int HD>
__device__ void load_tile_fp(const KvSideView& s, int head, int t0, int rows, float* dst) {
  constexpr int kVec = HD / 4;  // float4 per row
  constexpr int kPer = (kTile * kVec + kThreads - 1) / kThreads;
  constexpr int ld = HD + 1;
  const int64_t kvd = static_cast<int64_t>(s.n_kv_heads) * HD;
  float4 buf[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int e = threadIdx.x + i * kThreads, j = e / kVec, c = e % kVec;
    buf[i] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (e < kTile * kVec && j < rows)
      buf[i] = __ldg(reinterpret_cast<const float4*>(s.fp + (t0 + j) * kvd + static_cast<int64_t>(head) * HD) + c);
  }
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int e = threadIdx.x + i * kThreads, j = e / kVec, c = e % kVec;
    if (e < kTile * kVec) {
      float* o = dst + j * ld + 4 * c;
      o[0] = buf[i].x;
      o[1] = buf[i].y;
      o[2] = buf[i].z;
      o[3] = buf[i].w;
    }
  }
}

// Needs group_size % (PACKED ? 8 : 4) == 0, so the values of one word share a group.
template <int HD, bool PACKED>
__device__ void load_tile_words(const KvSideView& s, int head, int t0, int rows, float* dst) {
  constexpr int kEpw = PACKED ? 8 : 4;  // values per 32-bit word
  constexpr int kWpp = HD / kEpw;       // words per position
  constexpr int kWords = kTile * kWpp;
  constexpr int kPer = (kWords + kThreads - 1) / kThreads;
  constexpr int ld = HD + 1;
  const int64_t slot0 = static_cast<int64_t>(head) * s.capacity + t0;
  const uint32_t* codes = reinterpret_cast<const uint32_t*>(s.codes + slot0 * (PACKED ? HD / 2 : HD));
  const float2* params = reinterpret_cast<const float2*>(s.params + slot0 * 2 * s.groups);
  uint32_t w[kPer];
  float2 p[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int e = threadIdx.x + i * kThreads, j = e / kWpp, c = e % kWpp;
    w[i] = 0;
    p[i] = make_float2(0.0f, 0.0f);  // rows past `rows` read (0 - 0) * 0 = 0
    if (e < kWords && j < rows) {
      w[i] = __ldg(codes + e);
      p[i] = __ldg(params + j * s.groups + (c * kEpw) / s.group_size);
    }
  }
  const float* first = (s.first_row != nullptr && t0 == 0) ? s.first_row + static_cast<int64_t>(head) * HD : nullptr;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int e = threadIdx.x + i * kThreads, j = e / kWpp, c = e % kWpp;
    if (e < kWords) {
      float* o = dst + j * ld + c * kEpw;
#pragma unroll
      for (int u = 0; u < kEpw; ++u) {
        const uint32_t code = PACKED ? (w[i] >> (4 * u)) & 15u : (w[i] >> (8 * u)) & 255u;
        o[u] = __fmul_rn(__fsub_rn(static_cast<float>(code), p[i].y), p[i].x);
      }
      if (first != nullptr && j == 0)
#pragma unroll
        for (int u = 0; u < kEpw; ++u) o[u] = first[c * kEpw + u];
    }
  }
}

template <int HD>
__device__ void load_tile(const KvSideView& s, int head, int t0, int rows, float* dst) {
  if constexpr (HD > 0) {
    if (s.fp != nullptr) return load_tile_fp<HD>(s, head, t0, rows, dst);
    if (s.packed && s.group_size % 8 == 0) return load_tile_words<HD, true>(s, head, t0, rows, dst);
    if (!s.packed && s.group_size % 4 == 0) return load_tile_words<HD, false>(s, head, t0, rows, dst);
  }
  load_tile_any(s, head, t0, rows, dst);
}

__device__ float warp_max(float x) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
__device__ float warp_sum(float x) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

// HD > 0: head_dim fixed at compile time (loops unrolled, wide loads); 0: any.
template <int HD>
__global__ void __launch_bounds__(kThreads) attention_kernel(AttnArgs a) {
  extern __shared__ float smem[];
  const int hd = HD > 0 ? HD : a.head_dim, ld = hd + 1, qb = a.q_per_block;
  float* qs = smem;                  // [qb, hd]
  float* kv = qs + kMaxQ * hd;       // [kTile, hd + 1]
  float* pr = kv + kTile * ld;       // [kMaxQ, kTile] scores, then weights
  float* alpha = pr + kMaxQ * kTile;  // [kMaxQ]
  float* m_run = alpha + kMaxQ;       // [kMaxQ]
  float* l_run = m_run + kMaxQ;       // [kMaxQ]

  int pos0 = a.pos0, len = a.len, chunk_len = a.chunk;
  if (a.dev_pos != nullptr) {
    // Chunks past the ones this length uses stay empty: they report l = 0, which
    // the combine skips.
    pos0 = *a.dev_pos;
    len = pos0 + a.n;
    chunk_len = static_cast<int>(split_positions(len, a.want_chunks).chunk);
  }
  const int kv_head = blockIdx.y;
  const int q_block = blockIdx.x / a.n_chunks, chunk = blockIdx.x % a.n_chunks;
  const int nq = a.n * a.group;
  const int i0 = q_block * qb, nqb = min(qb, nq - i0);
  // The last row of this block sees positions up to pos0 + row.
  const int vis_end = min(len, pos0 + (i0 + nqb - 1) / a.group + 1);
  const int c_begin = chunk * chunk_len, c_end = min(c_begin + chunk_len, vis_end);
  const int64_t qd = static_cast<int64_t>(a.n_heads) * hd;

  for (int e = threadIdx.x; e < nqb * hd; e += kThreads) {
    const int vec = i0 + e / hd, d = e % hd;
    const int row = vec / a.group, head = kv_head * a.group + vec % a.group;
    qs[e] = a.q[row * qd + static_cast<int64_t>(head) * hd + d];
  }
  if (threadIdx.x < kMaxQ) {
    m_run[threadIdx.x] = -INFINITY;
    l_run[threadIdx.x] = 0.0f;
  }
  float o[kMaxPerThread];
#pragma unroll
  for (int k = 0; k < kMaxPerThread; ++k) o[k] = 0.0f;
  __syncthreads();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int t0 = c_begin; t0 < c_end; t0 += kTile) {
    const int rows = min(kTile, c_end - t0);
    load_tile<HD>(a.k, kv_head, t0, rows, kv);
    __syncthreads();
    for (int idx = threadIdx.x; idx < nqb * kTile; idx += kThreads) {
      const int qi = idx / kTile, j = idx % kTile;
      const int row = (i0 + qi) / a.group;
      float s = -INFINITY;
      if (j < rows && t0 + j <= pos0 + row) {
        const float* qv = qs + qi * hd;
        const float* kr = kv + j * ld;
        float dot = 0.0f;
        if constexpr (HD > 0 && HD % 4 == 0) {
          // Four independent chains: the FMA latency, not the issue rate, bounds a single one.
          float d1 = 0.0f, d2 = 0.0f, d3 = 0.0f;
#pragma unroll 8
          for (int d = 0; d < HD; d += 4) {
            dot = fmaf(qv[d], kr[d], dot);
            d1 = fmaf(qv[d + 1], kr[d + 1], d1);
            d2 = fmaf(qv[d + 2], kr[d + 2], d2);
            d3 = fmaf(qv[d + 3], kr[d + 3], d3);
          }
          dot = (dot + d1) + (d2 + d3);
        } else {
          for (int d = 0; d < hd; ++d) dot = fmaf(qv[d], kr[d], dot);
        }
        s = dot * a.scale;
      }
      pr[idx] = s;
    }
    __syncthreads();
    for (int qi = warp; qi < nqb; qi += kThreads / 32) {
      const float s = pr[qi * kTile + lane];
      const float m_old = m_run[qi];
      const float m_new = fmaxf(m_old, warp_max(s));
      float p = 0.0f, scale_old = 1.0f;
      if (m_new != -INFINITY) {
        p = s == -INFINITY ? 0.0f : expf(s - m_new);
        scale_old = expf(m_old - m_new);  // 0 while nothing was visible yet
      }
      const float sum = warp_sum(p);
      pr[qi * kTile + lane] = p;
      __syncwarp();
      if (lane == 0) {
        alpha[qi] = scale_old;
        l_run[qi] = l_run[qi] * scale_old + sum;
        m_run[qi] = m_new;
      }
    }
    __syncthreads();  // the K tile is no longer read
    load_tile<HD>(a.v, kv_head, t0, rows, kv);
    __syncthreads();
    if constexpr (HD > 0) {
      // Positions outer, values inner: the kPer sums are independent chains. Rows past
      // `rows` hold weight 0 and value 0.
      constexpr int kPer = kMaxQ * (HD > 0 ? HD : 1) / kThreads;
#pragma unroll
      for (int k = 0; k < kPer; ++k) {
        const int e = threadIdx.x + k * kThreads;
        if (e < nqb * HD) o[k] *= alpha[e / HD];
      }
#pragma unroll 4
      for (int j = 0; j < kTile; ++j) {
#pragma unroll
        for (int k = 0; k < kPer; ++k) {
          const int e = threadIdx.x + k * kThreads;
          if (e < nqb * HD) o[k] = fmaf(pr[(e / HD) * kTile + j], kv[j * ld + e % HD], o[k]);
        }
      }
    } else {
#pragma unroll
      for (int k = 0; k < kMaxPerThread; ++k) {
        const int e = threadIdx.x + k * kThreads;
        if (e < nqb * hd) {
          const int qi = e / hd, d = e % hd;
          const float* p = pr + qi * kTile;
          float acc = o[k] * alpha[qi];
          for (int j = 0; j < rows; ++j) acc = fmaf(p[j], kv[j * ld + d], acc);
          o[k] = acc;
        }
      }
    }
    __syncthreads();  // before the next tile overwrites kv and pr
  }

#pragma unroll
  for (int k = 0; k < kMaxPerThread; ++k) {
    const int e = threadIdx.x + k * kThreads;
    if (e < nqb * hd) {
      const int qi = e / hd, d = e % hd;
      const int vec = i0 + qi, row = vec / a.group, head = kv_head * a.group + vec % a.group;
      const int64_t out_vec = static_cast<int64_t>(row) * a.n_heads + head;
      if (a.n_chunks == 1)
        a.out[out_vec * hd + d] = o[k] / l_run[qi];
      else
        a.part_o[(out_vec * a.n_chunks + chunk) * hd + d] = o[k];
    }
  }
  if (a.n_chunks > 1 && threadIdx.x < nqb) {
    const int vec = i0 + threadIdx.x, row = vec / a.group, head = kv_head * a.group + vec % a.group;
    const int64_t out_vec = static_cast<int64_t>(row) * a.n_heads + head;
    a.part_ml[(out_vec * a.n_chunks + chunk) * 2] = m_run[threadIdx.x];
    a.part_ml[(out_vec * a.n_chunks + chunk) * 2 + 1] = l_run[threadIdx.x];
  }
}

// One block per (row, head): out = sum_c e^(m_c - M) o_c / sum_c e^(m_c - M) l_c over
// the chunks that saw a position (l_c > 0), in chunk order.
__global__ void combine_kernel(const float* __restrict__ part_o, const float* __restrict__ part_ml, int n_chunks,
                               int head_dim, float* __restrict__ out) {
  const int64_t vec = blockIdx.x;
  const float* ml = part_ml + vec * n_chunks * 2;
  float mx = -INFINITY;
  for (int c = 0; c < n_chunks; ++c)
    if (ml[2 * c + 1] > 0.0f) mx = fmaxf(mx, ml[2 * c]);
  float total = 0.0f;
  for (int c = 0; c < n_chunks; ++c)
    if (ml[2 * c + 1] > 0.0f) total += expf(ml[2 * c] - mx) * ml[2 * c + 1];
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float acc = 0.0f;
    for (int c = 0; c < n_chunks; ++c)
      if (ml[2 * c + 1] > 0.0f) acc += expf(ml[2 * c] - mx) * part_o[(vec * n_chunks + c) * head_dim + d];
    out[vec * head_dim + d] = acc / total;
  }
}

void launch(void (*kernel)(AttnArgs), dim3 grid, size_t smem, const AttnArgs& a, cudaStream_t stream) {
  if (smem > 48 * 1024)  // above the default limit: opt in (idempotent, cheap)
    check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
               "cudaFuncSetAttribute");
  kernel<<<grid, kThreads, smem, stream>>>(a);
  check_cuda(cudaGetLastError(), "the attention kernel");
}

int sm_count() {
  int dev = 0, count = 0;
  check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
  return std::max(count, 1);
}

}  // namespace

void cuda_attention(const float* q, int64_t n, int64_t pos0, const KvStorage& kv, int64_t layer,
                    const AttentionShape& shape, float scale, float* out, cudaStream_t stream) {
  const auto* store = dynamic_cast<const CudaKvStorage*>(&kv);
  QUAROT_CHECK(store != nullptr, "CUDA attention: the KV cache was made by another backend");
  const KvCacheSpec& spec = kv.spec();
  QUAROT_CHECK(layer >= 0 && layer < spec.n_layers, "attention: layer {} out of range", layer);
  QUAROT_CHECK(shape.n_heads > 0 && shape.n_kv_heads > 0 && shape.n_heads % shape.n_kv_heads == 0,
               "attention: {} query heads, {} KV heads: need positive sizes with KV heads dividing heads",
               shape.n_heads, shape.n_kv_heads);
  QUAROT_CHECK(shape.n_kv_heads == spec.n_kv_heads && shape.head_dim == spec.head_dim,
               "attention: the cache holds {} heads of dimension {}, attention needs {} of {}", spec.n_kv_heads,
               spec.head_dim, shape.n_kv_heads, shape.head_dim);
  QUAROT_CHECK(shape.head_dim % 2 == 0 && shape.head_dim <= kMaxHeadDim,
               "CUDA attention: head_dim {} is not an even number up to {}", shape.head_dim, kMaxHeadDim);
  QUAROT_CHECK(pos0 >= 0 && pos0 + n <= spec.capacity, "attention: positions beyond the cache's {}", spec.capacity);
  if (n <= 0) return;
  const int* dev_pos = store->step_position(pos0, n);

  AttnArgs a;
  a.q = q;
  a.out = out;
  a.k = store->k(layer);
  a.v = store->v(layer);
  a.n = static_cast<int>(n);
  a.pos0 = static_cast<int>(pos0);
  a.len = static_cast<int>(pos0 + n);
  a.n_heads = static_cast<int>(shape.n_heads);
  a.head_dim = static_cast<int>(shape.head_dim);
  a.group = static_cast<int>(shape.n_heads / shape.n_kv_heads);
  a.scale = scale;
  const int64_t nq = n * a.group;
  a.q_per_block = static_cast<int>(std::min<int64_t>(kMaxQ, nq));
  const int64_t q_blocks = (nq + a.q_per_block - 1) / a.q_per_block;
  const int64_t base_blocks = q_blocks * shape.n_kv_heads;
  // Several blocks per SM, so one block's memory latency overlaps another's work;
  // split the positions only when the query blocks fall short.
  const int64_t target = 4 * static_cast<int64_t>(sm_count());
  const int64_t want = base_blocks < target ? (target + base_blocks - 1) / base_blocks : 1;
  int64_t chunks = 1;
  if (dev_pos == nullptr) {
    const Split split = split_positions(a.len, want);
    chunks = split.chunks;
    a.chunk = static_cast<int>(split.chunk);
  } else {
    // Enough blocks for any position up to the capacity: split_positions never
    // makes more than min(want, ceil(len / kMinChunk)) chunks.
    chunks = std::max<int64_t>(std::min<int64_t>(want, (spec.capacity + kMinChunk - 1) / kMinChunk), 1);
    a.dev_pos = dev_pos;
    a.want_chunks = want;
  }
  a.n_chunks = static_cast<int>(chunks);
  QUAROT_CHECK(q_blocks * chunks < (int64_t{1} << 31), "CUDA attention: {} query rows are too many", n);
  if (chunks > 1) {
    const int64_t vecs = n * shape.n_heads;
    float* ws = store->workspace(vecs * chunks * (shape.head_dim + 2), stream);
    a.part_o = ws;
    a.part_ml = ws + vecs * chunks * shape.head_dim;
  }
  const size_t smem =
      sizeof(float) * (kMaxQ * shape.head_dim + kTile * (shape.head_dim + 1) + kMaxQ * kTile + 3 * kMaxQ);
  const dim3 grid(static_cast<unsigned>(q_blocks * chunks), static_cast<unsigned>(shape.n_kv_heads));
  switch (shape.head_dim) {
    case 64: launch(attention_kernel<64>, grid, smem, a, stream); break;
    case 128: launch(attention_kernel<128>, grid, smem, a, stream); break;
    case 256: launch(attention_kernel<256>, grid, smem, a, stream); break;
    default: launch(attention_kernel<0>, grid, smem, a, stream); break;
  }
  if (chunks > 1) {
    combine_kernel<<<static_cast<unsigned>(n * shape.n_heads), 128, 0, stream>>>(
        a.part_o, a.part_ml, a.n_chunks, a.head_dim, out);
    check_cuda(cudaGetLastError(), "the attention combine kernel");
  }
}

}  // namespace quarot::cuda
