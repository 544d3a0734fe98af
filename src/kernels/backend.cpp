#include "kernels/backend.h"

#include "common/error.h"

namespace quarot {

BackendBuffer Backend::upload(const float* host, int64_t n) const {
  BackendBuffer buffer = alloc(n);
  upload(host, n, buffer.data());
  return buffer;
}

std::unique_ptr<PackedWeight> Backend::pack(const Tensor& weight) const {
  QUAROT_CHECK(weight.ndim() == 2, "backend: a linear weight must be 2-D, got shape {}", weight.shape_str());
  return pack(f32_weight(weight.data.data(), weight.shape[0], weight.shape[1]));
}

void Backend::linears(const LinearOp* ops, int count, const float* x, int64_t n, float* const* ys) const {
  for (int i = 0; i < count; ++i) linear(ops[i], x, n, ys[i]);
}

void Backend::rmsnorm_linears(const float* x, const float* w, int64_t dim, float eps, const LinearOp* ops, int count,
                              int64_t n, float* h, float* const* ys) const {
  rmsnorm(x, w, n, dim, eps, h);
  linears(ops, count, h, n, ys);
}

void Backend::swiglu_linear(const LinearOp& op, float* gate, const float* up, int64_t n, float* y) const {
  swiglu(gate, up, n * op.weight->in_features, gate);
  linear(op, gate, n, y);
}

void Backend::rope_rotate_qk(float* q, float* k, int64_t n, const AttentionShape& shape, int64_t pos0,
                             const float* inv_freq, const OnlineRotation& head_rotation) const {
  rope(q, n, shape.n_heads, shape.head_dim, pos0, inv_freq);
  rope(k, n, shape.n_kv_heads, shape.head_dim, pos0, inv_freq);
  if (head_rotation.is_identity()) return;
  rotate(head_rotation, q, n * shape.n_heads, shape.head_dim, q);
  rotate(head_rotation, k, n * shape.n_kv_heads, shape.head_dim, k);
}

}  // namespace quarot
