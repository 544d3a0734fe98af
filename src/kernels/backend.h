#pragma once
// The seam between the model graph and whoever computes it. LlamaModel runs every
// numeric step through a Backend: matrix products, attention and the KV cache, and
// also the glue between them (RMSNorm, RoPE, the online rotations, SwiGLU, residual
// adds, the embedding lookup), so a backend whose memory is not the host's (a GPU)
// can run the whole model. The model hands the backend each weight once as a
// WeightEncoding (kernels/weight_encoding.h: FP32, FP16 or integer codes, usually a
// view of the mapped file) and gets back an opaque PackedWeight (PackedEmbedding for
// the token table); a LinearOp then describes the online work around each product
// (rotation of the input, activation quantization). The model never knows whether
// FP32 SIMD, int8 VNNI/AMX or CUDA runs it. The FP32 CPU backend computes the
// *simulated* quantized arithmetic (weights dequantized at pack time; activations
// and KV quantize -> dequantize, then FP32 math); integer backends must reproduce
// those numbers within float rounding.
//
// Memory contract:
//  - Activations: every `float*` an op reads or writes is backend memory: a
//    BackendBuffer from alloc(), or, where host_memory() is true (the CPU backend),
//    any host memory. Data crosses with upload()/download().
//  - Parameters: linear weights and the embedding table are packed (pack(),
//    pack_embedding()); small parameter vectors (norm weights, biases, RoPE
//    frequencies) are uploaded once into buffers by their owner.
//  - Descriptors and indices are host memory: OnlineRotation (matrix included),
//    ActQuantSpec, shapes, token ids. A device backend may keep a device copy of a
//    descriptor keyed by its address, so its owner keeps it alive and unchanged
//    while ops that use it may run (LlamaModel: for its lifetime).
//  - Ordering: ops take effect in call order; download() returns once the data is
//    on the host. A backend may run ops asynchronously in between.
//  - Ops never resize: the caller sizes every output; rows are contiguous.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/tensor.h"
#include "kernels/weight_encoding.h"

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

// KV cache quantization: each head's vector of head_dim values at one position is
// split into groups of `group` values (0 = head_dim), each with its own scale (and
// zero point when asymmetric, QuaRot's default for the cache).
struct KvQuantSpec {
  int bits = 0;  // 0 = FP cache
  float clip_ratio = 0.95f;
  int64_t group = 0;
  bool symmetric = false;
  bool enabled() const { return bits > 0 && bits < 16; }
};

// Everything a backend needs to lay out a KV cache.
struct KvCacheSpec {
  int64_t n_layers = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t capacity = 0;  // positions
  KvQuantSpec k, v;
  bool intact_kv = false;  // position 0 stays full precision (IntactKV)
  int64_t kv_dim() const { return n_kv_heads * head_dim; }
};

// A backend's storage for the K and V rows of every layer. Positions are appended
// in order; LlamaModel's KvCache (model/kv_cache.h) tracks how many are filled.
class KvStorage {
 public:
  virtual ~KvStorage() = default;
  const KvCacheSpec& spec() const { return spec_; }
  // Stores k, v [n, kv_dim] (backend memory) at positions pos0 .. pos0 + n - 1 of
  // `layer`, quantizing them as the spec says.
  virtual void append(int64_t layer, int64_t pos0, int64_t n, const float* k, const float* v) = 0;
  // A deep copy holding the first `positions` positions (e.g. a shared prompt prefix).
  virtual std::unique_ptr<KvStorage> clone(int64_t positions) const = 0;
  // Bytes held per cached position, all layers, K and V.
  virtual int64_t bytes_per_position() const = 0;

 protected:
  explicit KvStorage(KvCacheSpec spec) : spec_(std::move(spec)) {}
  KvCacheSpec spec_;
};

struct AttentionShape {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;  // divides n_heads
  int64_t head_dim = 0;
};

class PackedWeight {
 public:
  virtual ~PackedWeight() = default;
  int64_t out_features = 0;
  int64_t in_features = 0;
  int64_t bytes = 0;  // what one product reads of the weight (codes, scales, or floats)
};

// The token embedding table [rows = vocab, cols = hidden] as a backend keeps it for
// row lookups (not for products: a tied lm_head packs the same encoding with pack()).
class PackedEmbedding {
 public:
  virtual ~PackedEmbedding() = default;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_bytes = 0;  // what one lookup reads
};

// `size` floats of backend memory (uninitialized), kept alive by `owner`. Copies
// share the memory.
class BackendBuffer {
 public:
  BackendBuffer() = default;
  BackendBuffer(float* data, int64_t size, std::shared_ptr<void> owner)
      : data_(data), size_(size), owner_(std::move(owner)) {}
  float* data() const { return data_; }
  int64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  float* data_ = nullptr;
  int64_t size_ = 0;
  std::shared_ptr<void> owner_;
};

struct LinearOp {
  const PackedWeight* weight = nullptr;
  const float* bias = nullptr;                   // [out_features] backend memory, or null
  const OnlineRotation* input_rotation = nullptr;  // applied to each input row, or null
  ActQuantSpec act;                               // applied after the rotation
  const char* name = nullptr;  // what the product is ("q_proj", "lm_head"), for profiles; may be null
  // The residual add fused into the product: y = y + (Q(R(x)) * W^T + b), y read and
  // written in place (the residual stream). The add is one float addition of the
  // finished product (bias included), so the result equals linear() into a separate
  // buffer followed by add(y, buffer) bit for bit; only the temporary and the extra
  // pass over memory go away. y must not alias x.
  bool accumulate = false;
};

// A slot for one recorded forward step (see Backend::run_step): made by
// make_step_graph(), owned by the caller, opaque to it.
class StepGraph {
 public:
  virtual ~StepGraph() = default;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Human-readable name with the instruction-set path, e.g. "cpu-fp32 avx512".
  virtual std::string name() const = 0;

  // --- memory (see the contract above) ---
  // True when backend memory is host memory: ops accept any host pointer and the
  // caller may skip upload()/download().
  virtual bool host_memory() const = 0;
  // True when forwards of independent sequences (each with its own KvCache, output
  // and workspace) may run at the same time on different host threads of the
  // calling process: no op mutates state shared between calls (scratch is per call
  // or thread_local). Evaluators then run one sequence per thread (eval/task_runner.h),
  // whose ops see an inactive nested OpenMP level and run on that thread alone. False
  // (the default) for a backend with one stream or one shared workspace.
  virtual bool concurrent_forwards() const { return false; }
  // n >= 0 floats, uninitialized.
  virtual BackendBuffer alloc(int64_t n) const = 0;
  // dst[0, n) = host[0, n) / host[0, n) = src[0, n). A no-op when the two coincide.
  virtual void upload(const float* host, int64_t n, float* dst) const = 0;
  virtual void download(const float* src, int64_t n, float* host) const = 0;
  // A buffer holding a copy of host[0, n).
  BackendBuffer upload(const float* host, int64_t n) const;

  // --- weights ---
  // Packs a [out_features, in_features] weight into the backend's layout. The
  // encoding must be valid (WeightEncoding::validate); the backend may keep a
  // reference to its owner (mapped file) instead of copying.
  virtual std::unique_ptr<PackedWeight> pack(const WeightEncoding& weight) const = 0;
  // Convenience for an FP32 tensor (copied or packed; the tensor may be dropped afterwards).
  std::unique_ptr<PackedWeight> pack(const Tensor& weight) const;
  // The embedding table for embed(); same ownership rules as pack().
  virtual std::unique_ptr<PackedEmbedding> pack_embedding(const WeightEncoding& table) const = 0;

  // --- ops ---
  // y[n, out] = Q(R(x))[n, in] * W^T + b, rows of x contiguous with stride in_features
  // (y += that when op.accumulate).
  // x is not modified.
  virtual void linear(const LinearOp& op, const float* x, int64_t n, float* y) const = 0;
  // linear(ops[i], x, n, ys[i]) for i < count, on one input (q/k/v, gate/up). A backend
  // may share the input's rotation and quantization between ops with the same
  // input_rotation and act; the results are those of the separate calls. The default
  // makes the separate calls. No ys[i] may alias x.
  virtual void linears(const LinearOp* ops, int count, const float* x, int64_t n, float* const* ys) const;
  // linears(ops, count, h, n, ys) with h = rmsnorm(x, w, n, dim, eps): the normalized
  // rows are the products' input only. h [n, dim] is scratch (its contents afterwards
  // are unspecified); a backend may never write it. The results are the separate calls'.
  virtual void rmsnorm_linears(const float* x, const float* w, int64_t dim, float eps, const LinearOp* ops, int count,
                               int64_t n, float* h, float* const* ys) const;
  // linear(op, silu(gate) * up, n, y) (swiglu() then linear()), gate [n, in_features]
  // doubling as scratch (unspecified afterwards). The results are the separate calls'.
  virtual void swiglu_linear(const LinearOp& op, float* gate, const float* up, int64_t n, float* y) const;
  // out = silu(linear(gate, h)) * linear(up, h) with h = rmsnorm(x, w, n, dim, eps), the
  // results of rmsnorm_linears then swiglu(), where the backend gates inside the products
  // (neither product's output is written); returns false, doing nothing, elsewhere (the
  // default): callers then make those calls. gate and up add no bias and do not accumulate.
  virtual bool rmsnorm_swiglu(const float* x, const float* w, int64_t dim, float eps, const LinearOp& gate,
                              const LinearOp& up, int64_t n, float* out) const {
    return false;
  }
  // out[t, :] = row tokens[t] of the table as FP32 (the exact values the encoding
  // gives), t < n. tokens are host memory, each in [0, table.rows).
  virtual void embed(const PackedEmbedding& table, const int32_t* tokens, int64_t n, float* out) const = 0;
  // RMSNorm of n rows of dim values: out[t, i] = x[t, i] / sqrt(mean_i(x[t, :]^2) + eps) * w[i]
  // (w null = all ones). out may alias x.
  virtual void rmsnorm(const float* x, const float* w, int64_t n, int64_t dim, float eps, float* out) const = 0;
  // Rotary position embedding (HF rotate_half layout, kernels/cpu/rope.h) in place on
  // n rows of n_heads * head_dim values, row t at position pos0 + t; inv_freq holds
  // head_dim / 2 frequencies.
  virtual void rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t pos0,
                    const float* inv_freq) const = 0;
  // out = R(x) for n_rows rows of row_length values (OnlineRotation's formula);
  // row_length must equal r.size() unless r is the default identity (then out = x).
  // out may alias x.
  virtual void rotate(const OnlineRotation& r, const float* x, int64_t n_rows, int64_t row_length,
                      float* out) const = 0;
  // Attention's query and key rows before the cache: rope() on q [n, n_heads *
  // head_dim] and on k [n, n_kv_heads * head_dim] at positions pos0 + t, then
  // rotate(head_rotation) on every head of both (identity: none), in place. The default
  // makes those four calls; a backend may do them in one pass (the same numbers).
  virtual void rope_rotate_qk(float* q, float* k, int64_t n, const AttentionShape& shape, int64_t pos0,
                              const float* inv_freq, const OnlineRotation& head_rotation) const;
  // SwiGLU's gating: out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)), i < n.
  // out may alias gate or up.
  virtual void swiglu(const float* gate, const float* up, int64_t n, float* out) const = 0;
  // Residual add: x[i] += y[i], i < n.
  virtual void add(float* x, const float* y, int64_t n) const = 0;

  // --- attention and the KV cache ---
  virtual std::unique_ptr<KvStorage> make_kv_storage(const KvCacheSpec& spec) const = 0;
  // Causal attention of n query rows q [n, n_heads * head_dim] at positions
  // pos0 .. pos0 + n - 1 against positions 0 .. pos0 + n - 1 of `layer` in the
  // storage (the new rows already appended): out[n, n_heads * head_dim].
  virtual void attention(const float* q, int64_t n, int64_t pos0, const KvStorage& kv, int64_t layer,
                         const AttentionShape& shape, float scale, float* out) const = 0;

  // Returns once every op issued so far has finished (a no-op where ops run
  // synchronously, as on the CPU); for timing ops one by one.
  virtual void synchronize() const {}

  // --- recorded steps (optional: for backends where launching each op costs more
  // than running it, e.g. a GPU on a small model's decode step) ---
  // A slot run_step() may record into, or null when the backend does not record.
  virtual std::unique_ptr<StepGraph> make_step_graph() const { return nullptr; }
  // Queues one forward step: enqueue() queues this backend's ops for n tokens at
  // positions pos0 .. pos0 + n - 1, the token ids `tokens` (host, n values) reaching
  // the backend through embed(table, tokens, n, ..) and pos0 through rope(),
  // attention() and KvStorage::append() of a storage this backend made. With a slot
  // the backend may record what enqueue() queues and, on later calls with the same
  // slot, replay the recording with the new token ids and pos0 instead of calling
  // enqueue(). So enqueue() must queue the same ops with the same arguments on the
  // same buffers and storage every time, except pos0 and the token values; it must
  // not download, upload or use a result on the host (nothing it queues may have run
  // when it returns). The slot must not outlive the buffers, storage and weights the
  // ops use. Default (and graph == null): calls enqueue().
  virtual void run_step(StepGraph* graph, const int32_t* tokens, int64_t n, int64_t pos0,
                        const std::function<void()>& enqueue) const {
    (void)graph, (void)tokens, (void)n, (void)pos0;
    enqueue();
  }
};

// The FP32 CPU backend, using the best instruction set this CPU supports
// (or the one forced by QUAROT_ISA=scalar|avx2|avx512).
std::unique_ptr<Backend> make_cpu_backend();

}  // namespace quarot
