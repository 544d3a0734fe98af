#pragma once
// Internal: quantizes KV rows into kv_store_q.h's packed layout on the GPU, bit for
// bit what QuantKvLayerStore::append (int_quant.h's quantize_sym / quantize_asym)
// computes on the host:
//   symmetric:  s = RN(RN(clip * max|x|) / qmax), qmax = 2^(b-1) - 1;
//               code = clamp(rint(RN(x / s)), -qmax - 1, qmax) + 2^(b-1); zero = 2^(b-1)
//   asymmetric: lo = RN(min(0, min x) * clip), hi = RN(max(0, max x) * clip),
//               s = RN(RN(hi - lo) / qmax), qmax = 2^b - 1, z = rint(RN(-lo / s));
//               code = clamp(RN(rint(RN(x / s)) + z), 0, qmax); zero = z
//   s == 0 (an all-zero group): codes 0 (symmetric: stored 2^(b-1)), scale 0.
// Every operation is a single IEEE round-to-nearest step (explicit __f*_rn
// intrinsics, so nvcc cannot contract them into an FMA) and rint rounds half to
// even like std::nearbyint, hence equal codes and floats. Non-finite inputs give
// unspecified codes (the host store throws instead).
#include <cuda_runtime.h>

#include <cstdint>

namespace quarot::cuda {

struct KvQuantTarget {
  uint8_t* codes = nullptr;   // [n_kv_heads, capacity, code_bytes]
  float* params = nullptr;    // [n_kv_heads, capacity, groups, 2]
  int64_t capacity = 0;
  int n_kv_heads = 0, head_dim = 0, group_size = 0, bits = 4;
  bool symmetric = false;
  float clip_ratio = 1.0f;
};

// rows: [n, n_kv_heads * head_dim] device FP32, stored at positions pos0 .. pos0 + n - 1
// (pos0 read from *dev_pos, a device int, when dev_pos is non-null: recorded steps).
// Returns the launch's error code.
cudaError_t launch_kv_quantize(const KvQuantTarget& t, const float* rows, int64_t n, int64_t pos0,
                               cudaStream_t stream, const int* dev_pos = nullptr);
// Both sides of a layer in one launch: (t0, rows0) and, when t1 is non-null, (*t1, rows1).
cudaError_t launch_kv_quantize_pair(const KvQuantTarget& t0, const float* rows0, const KvQuantTarget* t1,
                                    const float* rows1, int64_t n, int64_t pos0, cudaStream_t stream,
                                    const int* dev_pos = nullptr);
// FP32 rows [n, row_len] into dst rows *dev_pos .. *dev_pos + n - 1 (row_len floats
// each): the FP cache's append inside a recorded step.
cudaError_t launch_copy_rows_at(float* dst, const float* rows, int64_t n, int64_t row_len, const int* dev_pos,
                                cudaStream_t stream);

}  // namespace quarot::cuda
