#include "kernels/cuda/cuda_kv_storage.cuh"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "kernels/cpu/fp32_kv_storage.h"  // validate_kv_cache_spec
#include "kernels/cuda/cuda_kv_attention.h"
#include "kernels/cuda/cuda_kv_quantize.cuh"

namespace quarot::cuda {

void check_cuda(cudaError_t err, const char* what) {
  if (err != cudaSuccess) fail("CUDA KV cache: {} failed: {}", what, cudaGetErrorString(err));
}

DeviceMemory DeviceMemory::allocate(int64_t bytes) {
  DeviceMemory m;
  if (bytes <= 0) return m;
  void* p = nullptr;
  check_cuda(cudaMalloc(&p, static_cast<size_t>(bytes)), "cudaMalloc");
  m.mem = std::shared_ptr<void>(p, [](void* q) { cudaFree(q); });
  m.bytes = bytes;
  return m;
}

namespace {

int64_t group_size(const KvCacheSpec& s, const KvQuantSpec& q) { return q.group == 0 ? s.head_dim : q.group; }
int64_t code_bytes(const KvCacheSpec& s, const KvQuantSpec& q) {
  return q.bits <= 4 ? (s.head_dim + 1) / 2 : s.head_dim;
}

}  // namespace

CudaKvStorage::CudaKvStorage(const KvCacheSpec& spec, cudaStream_t stream, std::shared_ptr<const StepPositions> step)
    : KvStorage(spec), stream_(stream), step_(std::move(step)) {
  validate_kv_cache_spec(spec);
  for (const KvQuantSpec* q : {&spec.k, &spec.v}) {
    QUAROT_CHECK(!q->enabled() || quantized(*q), "CUDA KV cache: {}-bit codes are not supported (2..8 or 16)",
                 q->bits);
    QUAROT_CHECK(!quantized(*q) || (std::isfinite(q->clip_ratio) && q->clip_ratio > 0.0f),
                 "CUDA KV cache: clip ratio {} is not positive", q->clip_ratio);
  }
  for (int64_t l = 0; l < spec.n_layers; ++l) {
    k_.push_back(make_side(spec.k));
    v_.push_back(make_side(spec.v));
  }
}

CudaKvStorage::Side CudaKvStorage::make_side(const KvQuantSpec& q) const {
  const KvCacheSpec& s = spec_;
  Side side;
  if (!quantized(q)) {
    side.fp = DeviceMemory::allocate(s.capacity * s.kv_dim() * 4);
    return side;
  }
  side.codes = DeviceMemory::allocate(s.n_kv_heads * s.capacity * code_bytes(s, q));
  side.params = DeviceMemory::allocate(s.n_kv_heads * s.capacity * (s.head_dim / group_size(s, q)) * 2 * 4);
  // Zeroed so a position that was never written dequantizes to 0, not garbage.
  check_cuda(cudaMemsetAsync(side.codes.get(), 0, side.codes.bytes, stream_), "cudaMemsetAsync");
  check_cuda(cudaMemsetAsync(side.params.get(), 0, side.params.bytes, stream_), "cudaMemsetAsync");
  if (s.intact_kv) side.first_row = DeviceMemory::allocate(s.kv_dim() * 4);
  return side;
}

KvSideView CudaKvStorage::view(const Side& side, const KvQuantSpec& q) const {
  const KvCacheSpec& s = spec_;
  KvSideView v;
  v.capacity = s.capacity;
  v.n_kv_heads = static_cast<int>(s.n_kv_heads);
  v.head_dim = static_cast<int>(s.head_dim);
  if (!quantized(q)) {
    v.fp = static_cast<const float*>(side.fp.get());
    return v;
  }
  v.codes = static_cast<const uint8_t*>(side.codes.get());
  v.params = static_cast<const float*>(side.params.get());
  v.first_row = static_cast<const float*>(side.first_row.get());
  v.group_size = static_cast<int>(group_size(s, q));
  v.groups = static_cast<int>(s.head_dim / group_size(s, q));
  v.code_bytes = static_cast<int>(code_bytes(s, q));
  v.packed = q.bits <= 4;
  return v;
}

const int* CudaKvStorage::step_position(int64_t pos0, int64_t n) const {
  if (step_ == nullptr || !step_->active) return nullptr;
  QUAROT_CHECK(pos0 == step_->pos0 && n == step_->n,
               "CUDA KV cache: positions {}..{} inside a recorded step of {} at {}", pos0, pos0 + n - 1, step_->n,
               step_->pos0);
  // IntactKV's copy of position 0 is a host decision on pos0; steps start later.
  QUAROT_CHECK(pos0 > 0, "CUDA KV cache: a recorded step cannot start at position 0");
  return step_->pos;
}

void CudaKvStorage::append_side(Side& side, const KvQuantSpec& q, int64_t pos0, int64_t n, const float* rows,
                                const int* dev_pos) {
  const KvCacheSpec& s = spec_;
  const int64_t kvd = s.kv_dim();
  if (!quantized(q)) {
    if (dev_pos != nullptr) {
      check_cuda(launch_copy_rows_at(static_cast<float*>(side.fp.get()), rows, n, kvd, dev_pos, stream_),
                 "the KV copy kernel");
      return;
    }
    check_cuda(cudaMemcpyAsync(static_cast<float*>(side.fp.get()) + pos0 * kvd, rows, n * kvd * 4,
                               cudaMemcpyDeviceToDevice, stream_),
               "cudaMemcpyAsync");
    return;
  }
  check_cuda(launch_kv_quantize(target(side, q), rows, n, pos0, stream_, dev_pos), "the quantize kernel");
  if (s.intact_kv && pos0 == 0)
    check_cuda(cudaMemcpyAsync(side.first_row.get(), rows, kvd * 4, cudaMemcpyDeviceToDevice, stream_),
               "cudaMemcpyAsync");
}

KvQuantTarget CudaKvStorage::target(const Side& side, const KvQuantSpec& q) const {
  const KvCacheSpec& s = spec_;
  KvQuantTarget t;
  t.codes = static_cast<uint8_t*>(side.codes.get());
  t.params = static_cast<float*>(side.params.get());
  t.capacity = s.capacity;
  t.n_kv_heads = static_cast<int>(s.n_kv_heads);
  t.head_dim = static_cast<int>(s.head_dim);
  t.group_size = static_cast<int>(group_size(s, q));
  t.bits = q.bits;
  t.symmetric = q.symmetric;
  t.clip_ratio = q.clip_ratio;
  return t;
}

void CudaKvStorage::append(int64_t layer, int64_t pos0, int64_t n, const float* k, const float* v) {
  const KvCacheSpec& s = spec_;
  QUAROT_CHECK(layer >= 0 && layer < s.n_layers, "KV cache: layer {} out of range", layer);
  QUAROT_CHECK(n >= 0 && pos0 >= 0 && pos0 + n <= s.capacity, "KV cache: positions {}..{} exceed its {} positions",
               pos0, pos0 + n - 1, s.capacity);
  if (n == 0) return;
  const int* dev_pos = step_position(pos0, n);
  if (quantized(s.k) && quantized(s.v)) {
    // Both sides' codes in one launch (a decode step is launch-bound).
    const KvQuantTarget tv = target(v_[layer], s.v);
    check_cuda(launch_kv_quantize_pair(target(k_[layer], s.k), k, &tv, v, n, pos0, stream_, dev_pos),
               "the quantize kernel");
    if (s.intact_kv && pos0 == 0) {
      const int64_t bytes = s.kv_dim() * 4;
      check_cuda(cudaMemcpyAsync(k_[layer].first_row.get(), k, bytes, cudaMemcpyDeviceToDevice, stream_),
                 "cudaMemcpyAsync");
      check_cuda(cudaMemcpyAsync(v_[layer].first_row.get(), v, bytes, cudaMemcpyDeviceToDevice, stream_),
                 "cudaMemcpyAsync");
    }
    return;
  }
  append_side(k_[layer], s.k, pos0, n, k, dev_pos);
  append_side(v_[layer], s.v, pos0, n, v, dev_pos);
}

void CudaKvStorage::copy_side(const Side& from, Side& to, const KvQuantSpec& q, int64_t positions) const {
  const KvCacheSpec& s = spec_;
  auto copy = [&](const DeviceMemory& src, const DeviceMemory& dst, int64_t row_bytes) {
    // Head-major: the first `positions` rows of each of the n_kv_heads runs of capacity rows.
    check_cuda(cudaMemcpy2DAsync(dst.get(), s.capacity * row_bytes, src.get(), s.capacity * row_bytes,
                                 positions * row_bytes, s.n_kv_heads, cudaMemcpyDeviceToDevice, stream_),
               "cudaMemcpy2DAsync");
  };
  if (!quantized(q)) {
    check_cuda(cudaMemcpyAsync(to.fp.get(), from.fp.get(), positions * s.kv_dim() * 4, cudaMemcpyDeviceToDevice,
                               stream_),
               "cudaMemcpyAsync");
    return;
  }
  copy(from.codes, to.codes, code_bytes(s, q));
  copy(from.params, to.params, (s.head_dim / group_size(s, q)) * 2 * 4);
  if (from.first_row.get() != nullptr)
    check_cuda(cudaMemcpyAsync(to.first_row.get(), from.first_row.get(), from.first_row.bytes,
                               cudaMemcpyDeviceToDevice, stream_),
               "cudaMemcpyAsync");
}

std::unique_ptr<KvStorage> CudaKvStorage::clone(int64_t positions) const {
  auto c = std::make_unique<CudaKvStorage>(spec_, stream_, step_);
  const int64_t count = std::clamp<int64_t>(positions, 0, spec_.capacity);
  if (count == 0) return c;
  for (int64_t l = 0; l < spec_.n_layers; ++l) {
    copy_side(k_[l], c->k_[l], spec_.k, count);
    copy_side(v_[l], c->v_[l], spec_.v, count);
  }
  return c;
}

int64_t CudaKvStorage::bytes_per_position() const {
  // The CPU storages' accounting: Fp32KvStorage when no side is stored as codes,
  // QuantKvStorage's formula otherwise.
  const KvCacheSpec& s = spec_;
  if (!quantized(s.k) && !quantized(s.v)) return 2 * s.n_layers * s.kv_dim() * 4;
  auto side = [&](const KvQuantSpec& q) {
    if (!quantized(q)) return s.kv_dim() * 4;
    return s.n_kv_heads * (code_bytes(s, q) + 8 * (s.head_dim / group_size(s, q)));
  };
  return s.n_layers * (side(s.k) + side(s.v));
}

float* CudaKvStorage::workspace(int64_t floats, cudaStream_t stream) const {
  if (workspace_.bytes < floats * 4) {
    // Work still queued on the stream may use the old buffer.
    check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    workspace_ = DeviceMemory::allocate(std::max<int64_t>(floats * 4, 1 << 20));
    bump_device_memory_epoch();
  }
  return static_cast<float*>(workspace_.get());
}

std::unique_ptr<KvStorage> make_cuda_kv_storage(const KvCacheSpec& spec, cudaStream_t stream,
                                               std::shared_ptr<const StepPositions> step) {
  return std::make_unique<CudaKvStorage>(spec, stream, std::move(step));
}

}  // namespace quarot::cuda
