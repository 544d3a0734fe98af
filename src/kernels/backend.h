#pragma once
// The seam between the model graph and whoever computes its matrix products.
// The model hands the backend an opaque PackedWeight plus a LinearOp describing
// the online work around the product (rotation of the input, activation
// quantization); it never knows whether FP32 SIMD, int8 VNNI/AMX or CUDA runs it.
// The FP32 CPU backend computes the *simulated* quantized arithmetic (quantize ->
// dequantize, then an FP32 product); integer backends must reproduce those numbers.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/tensor.h"

namespace quarot {

// An orthogonal transform applied to activation rows online. A row of length
// n = k * p * inner is viewed as a [k, p, inner] array and transformed as
//   y[a, b, c] = sum_{a', b'} M[a, a'] * Hn[b, b'] * x[a', b', c]
// where M is a k x k orthonormal matrix (row-major, empty when k == 1) and Hn is
// the normalized Sylvester Hadamard of order p (p a power of two, fast transform).
// Examples: Q/K after RoPE: {k=1, p=head_dim, inner=1} applied per head;
// down_proj input 1536 = 12 * 128: {k=12, M=H12/sqrt(12), p=128, inner=1};
// o_proj input across 9 heads of 64: {k=9, M=random orthogonal, p=1, inner=64}.
struct OnlineRotation {
  int64_t k = 1;
  int64_t p = 1;
  int64_t inner = 1;
  std::vector<float> m;  // k*k, row-major, orthonormal; empty means identity (k == 1)
  int64_t size() const { return k * p * inner; }
  bool is_identity() const { return k == 1 && p == 1; }
};

// Dynamic per-token activation quantization (simulated): each row (or each group
// of `group` values when group > 0) gets its own scale.
struct ActQuantSpec {
  int bits = 0;              // 0 = keep full precision
  float clip_ratio = 1.0f;   // scale computed from clip_ratio * max|x|
  int64_t group = 0;         // 0 = whole row
  bool symmetric = true;
  bool enabled() const { return bits > 0 && bits < 16; }
};

class PackedWeight {
 public:
  virtual ~PackedWeight() = default;
  int64_t out_features = 0;
  int64_t in_features = 0;
};

struct LinearOp {
  const PackedWeight* weight = nullptr;
  const float* bias = nullptr;                   // [out_features] or null
  const OnlineRotation* input_rotation = nullptr;  // applied to each input row, or null
  ActQuantSpec act;                               // applied after the rotation
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Human-readable name with the instruction-set path, e.g. "cpu-fp32 avx512".
  virtual std::string name() const = 0;
  // Packs a [out_features, in_features] FP32 weight into the backend's layout.
  virtual std::unique_ptr<PackedWeight> pack(const Tensor& weight) const = 0;
  // y[n, out] = Q(R(x))[n, in] * W^T + b, rows of x contiguous with stride in_features.
  // x is not modified.
  virtual void linear(const LinearOp& op, const float* x, int64_t n, float* y) const = 0;
};

// The FP32 CPU backend, using the best instruction set this CPU supports
// (or the one forced by QUAROT_ISA=scalar|avx2|avx512).
std::unique_ptr<Backend> make_cpu_backend();

}  // namespace quarot
