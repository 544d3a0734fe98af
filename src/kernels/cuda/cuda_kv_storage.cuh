#pragma once
// Internal: the CUDA KV storage behind make_cuda_kv_storage (cuda_kv_attention.h),
// exposed to the attention kernels and the tests. Per layer and side (K, V) it holds
// either FP32 rows [capacity, kv_dim] or kv_store_q.h's packed layout, head-major:
//   codes  [n_kv_heads, capacity, code_bytes]          (uint8)
//   params [n_kv_heads, capacity, groups_per_head, 2]  ({scale, zero} floats)
//   first  [kv_dim] FP32 copy of position 0 (IntactKV only)
// so a tile of consecutive positions of one KV head is one contiguous run of bytes.
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_kv_quantize.cuh"
#include "kernels/cuda/cuda_step.h"

namespace quarot::cuda {

// One side of one layer as the kernels read it (device pointers).
struct KvSideView {
  const float* fp = nullptr;         // FP32 rows, or null when quantized
  const uint8_t* codes = nullptr;    // quantized: codes
  const float* params = nullptr;     // quantized: {scale, zero} pairs
  const float* first_row = nullptr;  // quantized with IntactKV: position 0 in FP32, else null
  int64_t capacity = 0;
  int n_kv_heads = 0, head_dim = 0;
  int group_size = 0, groups = 0, code_bytes = 0;
  bool packed = false;
};

// Throws quarot::Error naming the CUDA call and the error when err != cudaSuccess.
void check_cuda(cudaError_t err, const char* what);

// Device memory freed with cudaFree when the last owner goes.
struct DeviceMemory {
  std::shared_ptr<void> mem;
  int64_t bytes = 0;
  static DeviceMemory allocate(int64_t bytes);
  void* get() const { return mem.get(); }
};

class CudaKvStorage final : public KvStorage {
 public:
  // step: the owning backend's step state (null: never in a recorded step); kept alive.
  CudaKvStorage(const KvCacheSpec& spec, cudaStream_t stream, std::shared_ptr<const StepPositions> step = nullptr);
  void append(int64_t layer, int64_t pos0, int64_t n, const float* k, const float* v) override;
  std::unique_ptr<KvStorage> clone(int64_t positions) const override;
  int64_t bytes_per_position() const override;

  KvSideView k(int64_t layer) const { return view(k_[layer], spec_.k); }
  KvSideView v(int64_t layer) const { return view(v_[layer], spec_.v); }
  cudaStream_t stream() const { return stream_; }
  // The device position of the step being queued, after checking the call's host
  // arguments against it; null outside recorded steps.
  const int* step_position(int64_t pos0, int64_t n) const;

  // Scratch device memory for attention's split softmax, at least `floats` floats,
  // reused across calls on `stream` (growing it waits for that stream's work and
  // bumps device_memory_epoch()). Not thread-safe; attention calls on one storage
  // use one stream.
  float* workspace(int64_t floats, cudaStream_t stream) const;

  // True when a side with this spec is stored as codes (bits 2..8).
  static bool quantized(const KvQuantSpec& q) { return q.enabled() && q.bits >= 2 && q.bits <= 8; }

 private:
  struct Side {
    DeviceMemory fp, codes, params, first_row;
  };
  Side make_side(const KvQuantSpec& q) const;
  KvSideView view(const Side& s, const KvQuantSpec& q) const;
  void append_side(Side& s, const KvQuantSpec& q, int64_t pos0, int64_t n, const float* rows, const int* dev_pos);
  KvQuantTarget target(const Side& s, const KvQuantSpec& q) const;  // a quantized side's kernel view
  void copy_side(const Side& from, Side& to, const KvQuantSpec& q, int64_t positions) const;

  cudaStream_t stream_;
  std::shared_ptr<const StepPositions> step_;
  std::vector<Side> k_, v_;
  mutable DeviceMemory workspace_;
};

}  // namespace quarot::cuda
