#pragma once
// The CUDA backend's linear layers: packing (PackedWeight in device memory) and
// the product y = Q(R(x)) W^T + b on the integer path or the FP16 path
// (cuda_backend.h says which encodings take which). Also the device copies of
// rotation descriptors (backend.h lets a device backend keep them keyed by address;
// an entry is re-uploaded when the descriptor at that address changed).
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_row_ops.cuh"
#include "kernels/cuda/int_gemm.cuh"

namespace quarot::cuda {

class CudaPackedWeight final : public PackedWeight {
 public:
  // Integer path: codes in int_gemm.cuh's operand layout (signed, rows of
  // padded_cols values, K padded with zeros to a multiple of 128), FP32 scales [N].
  bool integer = false;
  int bits = 0;
  int64_t padded_cols = 0;
  DeviceMemory codes, scales;
  // FP16 path: [N, K] row-major; made at packing, or on first use for an integer
  // weight (from `source`, which keeps the encoding's owner alive until then).
  DeviceMemory half;
  bool half_ready = false;
  WeightEncoding source;
};

// Throws quarot::Error on an invalid encoding or when the weight does not fit.
std::unique_ptr<PackedWeight> pack_cuda_weight(CudaContext& ctx, const WeightEncoding& weight, bool simulate);

class DeviceRotations {
 public:
  // The kernels' view of r (validated for rows of row_length) with M on the device;
  // null or the default identity gives an inactive RotationArgs. Caller holds ctx.mutex.
  RotationArgs get(CudaContext& ctx, const OnlineRotation* r, int64_t row_length);
  // How many times a matrix was (re)uploaded: a changed descriptor may keep its address.
  uint64_t uploads() const { return uploads_; }

 private:
  uint64_t uploads_ = 0;
  struct Entry {
    int64_t k = 0, p = 0, inner = 0;
    std::vector<float> m;
    DeviceMemory device;
  };
  std::map<const OnlineRotation*, Entry> entries_;
};

class CudaLinear {
 public:
  // backend.h's linear() (x, y device memory). Caller holds ctx.mutex.
  // writes: a counter the caller bumps whenever device activations may have changed
  // other than through run()'s own outputs (every other op, upload). When x, the
  // rotation and the quantization equal the previous product's and writes has not
  // moved, that product's quantized (or FP16) activations are reused: q/k/v and
  // gate/up share one quantization of their input.
  void run(CudaContext& ctx, DeviceRotations& rotations, const LinearOp& op, const float* x, int64_t n, float* y,
           uint64_t writes);

 private:
  // What the prepared activations in the scratch below were made from.
  struct Prepared {
    bool valid = false;
    bool integer = false;
    const float* x = nullptr;
    int64_t n = 0, in = 0, padded = 0;
    int k = 0, p = 0, inner = 0;
    const float* m = nullptr;
    int bits = 0, storage_bits = 0, group = 0;
    bool symmetric = true;
    IntGemmActLayout layout = IntGemmActLayout::Standard;
    float clip = 0.0f;
    uint64_t writes = 0, rotation_uploads = 0;
    const void* buffer = nullptr;
    bool operator==(const Prepared& o) const {
      return valid == o.valid && integer == o.integer && x == o.x && n == o.n && in == o.in && padded == o.padded &&
             k == o.k && p == o.p && inner == o.inner && m == o.m && bits == o.bits &&
             storage_bits == o.storage_bits && group == o.group && symmetric == o.symmetric && layout == o.layout &&
             clip == o.clip &&
             writes == o.writes && rotation_uploads == o.rotation_uploads && buffer == o.buffer;
    }
  };
  void ensure_half(CudaContext& ctx, CudaPackedWeight& w);
  Scratch act_codes_, act_scales_, act_half_, out_;
  Prepared prepared_;
};

}  // namespace quarot::cuda
