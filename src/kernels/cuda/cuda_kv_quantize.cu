#include "kernels/cuda/cuda_kv_quantize.cuh"

#include <algorithm>

namespace quarot::cuda {

namespace {

constexpr int kWarpsPerBlock = 4;

__device__ float warp_max(float x) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
// std::min / std::max's rule (keep the first unless the second is strictly beyond),
// so the result is the host's in any order for finite values.
__device__ float smaller(float a, float b) { return b < a ? b : a; }
__device__ float larger(float a, float b) { return a < b ? b : a; }
__device__ float warp_min_keep(float x) {
  for (int o = 16; o > 0; o >>= 1) x = smaller(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}
__device__ float warp_max_keep(float x) {
  for (int o = 16; o > 0; o >>= 1) x = larger(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

// The stored code of value x with its group's {scale, zero} (see the header).
__device__ uint32_t code_of(float x, float scale, float zero, const KvQuantTarget& t) {
  if (t.symmetric) {
    const int offset = 1 << (t.bits - 1);
    if (scale == 0.0f) return static_cast<uint32_t>(offset);
    const float qmax = static_cast<float>(offset - 1);
    const float q = fminf(fmaxf(rintf(__fdiv_rn(x, scale)), -qmax - 1.0f), qmax);
    return static_cast<uint32_t>(static_cast<int>(q) + offset);
  }
  if (scale == 0.0f) return 0;
  const float qmax = static_cast<float>((1 << t.bits) - 1);
  const float q = fminf(fmaxf(__fadd_rn(rintf(__fdiv_rn(x, scale)), zero), 0.0f), qmax);
  return static_cast<uint32_t>(q);
}

// One warp per (row, KV head): the group parameters first (lane 0 writes them to
// global memory, __syncwarp orders them for the other lanes), then each lane writes
// whole code bytes, so a byte that holds two groups' codes has a single writer.
// Blocks [0, blocks0) serve (t0, rows0), the rest (t1, rows1): K and V in one launch.
__global__ void kv_quantize_kernel(KvQuantTarget t0, const float* __restrict__ rows0, KvQuantTarget t1,
                                   const float* __restrict__ rows1, int64_t blocks0, int64_t n, int64_t pos0,
                                   const int* dev_pos) {
  if (dev_pos != nullptr) pos0 = *dev_pos;
  const bool second = blockIdx.x >= blocks0;
  const KvQuantTarget t = second ? t1 : t0;
  const float* __restrict__ rows = second ? rows1 : rows0;
  const int lane = threadIdx.x & 31;
  const int64_t item = (static_cast<int64_t>(blockIdx.x) - (second ? blocks0 : 0)) * kWarpsPerBlock + threadIdx.x / 32;
  if (item >= n * t.n_kv_heads) return;
  const int64_t row = item / t.n_kv_heads;
  const int head = static_cast<int>(item % t.n_kv_heads);
  const int hd = t.head_dim, gs = t.group_size, groups = hd / gs;
  const int code_bytes = t.bits <= 4 ? (hd + 1) / 2 : hd;
  const float* x = rows + row * static_cast<int64_t>(t.n_kv_heads) * hd + static_cast<int64_t>(head) * hd;
  const int64_t slot = static_cast<int64_t>(head) * t.capacity + pos0 + row;
  float* p = t.params + slot * 2 * groups;
  uint8_t* c = t.codes + slot * code_bytes;

  for (int g = 0; g < groups; ++g) {
    const float* xg = x + g * gs;
    float scale, zero;
    if (t.symmetric) {
      float amax = 0.0f;
      for (int i = lane; i < gs; i += 32) amax = fmaxf(amax, fabsf(xg[i]));
      amax = warp_max(amax);
      const int offset = 1 << (t.bits - 1);
      const float qmax = static_cast<float>(offset - 1);
      scale = __fdiv_rn(__fmul_rn(t.clip_ratio, amax), qmax);
      zero = static_cast<float>(offset);
    } else {
      float lo = 0.0f, hi = 0.0f;
      for (int i = lane; i < gs; i += 32) {
        lo = smaller(lo, xg[i]);
        hi = larger(hi, xg[i]);
      }
      lo = __fmul_rn(warp_min_keep(lo), t.clip_ratio);
      hi = __fmul_rn(warp_max_keep(hi), t.clip_ratio);
      const float qmax = static_cast<float>((1 << t.bits) - 1);
      scale = __fdiv_rn(__fsub_rn(hi, lo), qmax);
      // The host stores the integer zero point as a float: rint(-lo / s), or 0 when s == 0.
      zero = scale == 0.0f ? 0.0f : static_cast<float>(static_cast<int>(rintf(__fdiv_rn(-lo, scale))));
    }
    if (lane == 0) {
      p[2 * g] = scale;
      p[2 * g + 1] = zero;
    }
  }
  __syncwarp();
  for (int b = lane; b < code_bytes; b += 32) {
    uint32_t byte;
    if (t.bits <= 4) {
      const int d0 = 2 * b, d1 = 2 * b + 1;
      byte = code_of(x[d0], p[2 * (d0 / gs)], p[2 * (d0 / gs) + 1], t);
      if (d1 < hd) byte |= code_of(x[d1], p[2 * (d1 / gs)], p[2 * (d1 / gs) + 1], t) << 4;
    } else {
      byte = code_of(x[b], p[2 * (b / gs)], p[2 * (b / gs) + 1], t);
    }
    c[b] = static_cast<uint8_t>(byte);
  }
}

__global__ void copy_rows_at_kernel(float* __restrict__ dst, const float* __restrict__ rows, int64_t count,
                                    int64_t row_len, const int* dev_pos) {
  float* base = dst + static_cast<int64_t>(*dev_pos) * row_len;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    base[i] = rows[i];
}

}  // namespace

cudaError_t launch_kv_quantize(const KvQuantTarget& t, const float* rows, int64_t n, int64_t pos0,
                               cudaStream_t stream, const int* dev_pos) {
  return launch_kv_quantize_pair(t, rows, nullptr, nullptr, n, pos0, stream, dev_pos);
}

cudaError_t launch_kv_quantize_pair(const KvQuantTarget& t0, const float* rows0, const KvQuantTarget* t1,
                                    const float* rows1, int64_t n, int64_t pos0, cudaStream_t stream,
                                    const int* dev_pos) {
  if (n <= 0) return cudaSuccess;
  auto blocks_of = [&](const KvQuantTarget& t) { return (n * t.n_kv_heads + kWarpsPerBlock - 1) / kWarpsPerBlock; };
  const int64_t blocks0 = blocks_of(t0), blocks = blocks0 + (t1 != nullptr ? blocks_of(*t1) : 0);
  if (blocks >= (int64_t{1} << 31)) return cudaErrorInvalidValue;
  kv_quantize_kernel<<<static_cast<unsigned>(blocks), 32 * kWarpsPerBlock, 0, stream>>>(
      t0, rows0, t1 != nullptr ? *t1 : t0, rows1, blocks0, n, pos0, dev_pos);
  return cudaGetLastError();
}

cudaError_t launch_copy_rows_at(float* dst, const float* rows, int64_t n, int64_t row_len, const int* dev_pos,
                                cudaStream_t stream) {
  const int64_t count = n * row_len;
  if (count <= 0) return cudaSuccess;
  if (dev_pos == nullptr) return cudaErrorInvalidValue;
  const int64_t blocks = std::min<int64_t>((count + 255) / 256, 1024);
  copy_rows_at_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(dst, rows, count, row_len, dev_pos);
  return cudaGetLastError();
}

}  // namespace quarot::cuda
