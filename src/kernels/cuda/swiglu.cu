#include "kernels/cuda/swiglu.cuh"

#include <cmath>

#include "kernels/cuda/swiglu_math.cuh"

namespace quarot::cuda {
namespace {

// One thread per (row, 8 consecutive j): it reads the k groups' gate and up values
// (16-byte loads), so the mixing stays in registers.
template <int K>
__global__ void swiglu_kernel(const __half* __restrict__ gu, int64_t rows, int inter, SwigluMix mix,
                              __half* __restrict__ y) {
  const int block = inter / K;
  const int per_row = block / 8;
  const int64_t item = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (item >= rows * per_row) return;
  const int64_t row = item / per_row;
  const int j = static_cast<int>(item % per_row) * 8;
  const __half* g = gu + row * 2 * inter;
  float h[K][8];
#pragma unroll
  for (int c = 0; c < K; ++c) {
    float gf[8], uf[8];
    unpack_half8(*reinterpret_cast<const uint4*>(g + c * block + j), gf);
    unpack_half8(*reinterpret_cast<const uint4*>(g + inter + c * block + j), uf);
#pragma unroll
    for (int e = 0; e < 8; ++e) h[c][e] = silu_times(gf[e], uf[e]);
  }
  mix_blocks<K>(mix, h, [](float x) { return x; });
#pragma unroll
  for (int a = 0; a < K; ++a) {
    uint4 raw;
    __half2* oh = reinterpret_cast<__half2*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) oh[i] = __floats2half2_rn(h[a][2 * i], h[a][2 * i + 1]);
    *reinterpret_cast<uint4*>(y + row * inter + a * block + j) = raw;
  }
}

template <int K>
cudaError_t launch(const __half* gu, int64_t rows, int inter, const SwigluMix& mix, __half* y, cudaStream_t stream) {
  const int64_t items = rows * (inter / K / 8);
  const int threads = 256;
  const int64_t blocks = (items + threads - 1) / threads;
  if (blocks > 0x7fffffff) return cudaErrorInvalidValue;
  swiglu_kernel<K><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(gu, rows, inter, mix, y);
  return cudaGetLastError();
}

}  // namespace

cudaError_t swiglu_rows(const __half* gu, int64_t rows, int64_t inter, int k, const float* mix, __half* y,
                        cudaStream_t stream) {
  if (gu == nullptr || y == nullptr || rows < 0 || k < 1 || k > kSwigluMaxK || inter < 8 * k || inter > (1 << 30) ||
      inter % (8 * k) != 0 || (k > 1 && mix == nullptr) || reinterpret_cast<uintptr_t>(gu) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(y) % 16 != 0)
    return cudaErrorInvalidValue;
  SwigluMix m;
  if (!make_swiglu_mix(mix, k, m)) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  const int n = static_cast<int>(inter);
  switch (k) {
    case 1: return launch<1>(gu, rows, n, m, y, stream);
    case 2: return launch<2>(gu, rows, n, m, y, stream);
    case 3: return launch<3>(gu, rows, n, m, y, stream);
    case 4: return launch<4>(gu, rows, n, m, y, stream);
    case 5: return launch<5>(gu, rows, n, m, y, stream);
    case 6: return launch<6>(gu, rows, n, m, y, stream);
    case 7: return launch<7>(gu, rows, n, m, y, stream);
    default: return launch<8>(gu, rows, n, m, y, stream);
  }
}

}  // namespace quarot::cuda
