#include "kernels/cuda/cuda_backend.h"

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/error.h"
#include "kernels/cuda/cuda_context.h"
#include "kernels/cuda/cuda_elementwise.cuh"
#include "kernels/cuda/cuda_kv_attention.h"
#include "kernels/cuda/cuda_linear.h"
#include "kernels/cuda/cuda_rotate.cuh"

namespace quarot {
namespace {

using cuda::check;
using cuda::CudaContext;
using cuda::DeviceMemory;

// The token table in device memory, in the form the lookup kernel reads: FP32 and
// FP16 tables as stored, integer grids as codes + scales (+ zeros), codebooks
// dequantized to FP32 at packing (their exact values).
class CudaPackedEmbedding final : public PackedEmbedding {
 public:
  WeightKind kind = WeightKind::kF32;
  DeviceMemory data, scales, zeros;
  int bits = 0;
  int64_t group = 0;
  int64_t stored_row_bytes = 0;
};

// A recording slot (backend.h StepGraph): the CUDA graph of one step's ops.
class CudaStepGraph final : public StepGraph {
 public:
  explicit CudaStepGraph(std::shared_ptr<CudaContext> c) : ctx(std::move(c)) {}
  ~CudaStepGraph() override {
    if (exec != nullptr) cudaGraphExecDestroy(exec);
  }
  std::shared_ptr<CudaContext> ctx;
  cudaGraphExec_t exec = nullptr;
  uint64_t exec_epoch = 0;  // device_memory_epoch() the recording's addresses belong to
  int64_t n = 0;            // tokens per step of the warm-up / recording
  bool warm = false;        // ran op by op in step mode under warm_epoch
  uint64_t warm_epoch = 0;
  bool disabled = false;    // a recording failed: op by op from now on
};

// Marks a step in progress (cuda_step.h) for the ops that read the position or
// the token ids from the device.
class StepScope {
 public:
  StepScope(CudaContext& ctx, int64_t pos0, int64_t n) : ctx_(ctx) {
    ctx_.step.active = true;
    ctx_.step.pos0 = pos0;
    ctx_.step.n = n;
  }
  ~StepScope() { ctx_.step.active = false; }
  StepScope(const StepScope&) = delete;
  StepScope& operator=(const StepScope&) = delete;

 private:
  CudaContext& ctx_;
};

bool graphs_enabled(const CudaBackendOptions& o) {
  const char* env = std::getenv("QUAROT_CUDA_GRAPHS");
  return o.graphs && !(env != nullptr && std::strcmp(env, "0") == 0);
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaBackendOptions& o)
      : ctx_(std::make_shared<CudaContext>(o.device)), simulate_(o.simulate), graphs_(graphs_enabled(o)) {}

  CudaStepStats stats() const {
    std::lock_guard lock(stats_mutex_);
    return stats_;
  }

  std::string name() const override {
    std::string gpu = ctx_->props.name;
    if (gpu.rfind("NVIDIA ", 0) == 0) gpu = gpu.substr(7);
    return fmt::format("cuda {} sm_{}{} {}", gpu, ctx_->props.major, ctx_->props.minor,
                       simulate_ ? "fp16-sim" : "int8-tc");
  }

  bool host_memory() const override { return false; }
  // One stream and mutable shared scratch (rotations_, linear_, tokens_): forwards run one at a time.
  bool concurrent_forwards() const override { return false; }
  void synchronize() const override { ctx_->synchronize(); }

  BackendBuffer alloc(int64_t n) const override {
    QUAROT_CHECK(n >= 0, "cuda backend: negative buffer size {}", n);
    void* p = nullptr;
    const size_t bytes = static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float);
    const cudaError_t e = cudaMallocAsync(&p, bytes, ctx_->stream);
    if (e != cudaSuccess) {
      cudaGetLastError();
      fail("cuda backend: cannot allocate {:.1f} MiB of device memory ({})", bytes / 1048576.0,
           cudaGetErrorString(e));
    }
    std::shared_ptr<CudaContext> ctx = ctx_;
    // Freed in stream order: ops queued before the buffer is dropped still see it.
    std::shared_ptr<void> owner(p, [ctx](void* q) { cudaFreeAsync(q, ctx->stream); });
    return BackendBuffer(static_cast<float*>(p), n, std::move(owner));
  }

  void upload(const float* host, int64_t n, float* dst) const override {
    if (n <= 0) return;
    wrote();
    // From pageable memory the call returns once `host` has been read.
    check(cudaMemcpyAsync(dst, host, n * sizeof(float), cudaMemcpyHostToDevice, ctx_->stream), "upload");
  }

  void download(const float* src, int64_t n, float* host) const override {
    if (n > 0) check(cudaMemcpyAsync(host, src, n * sizeof(float), cudaMemcpyDeviceToHost, ctx_->stream), "download");
    ctx_->synchronize();
  }

  using Backend::pack;
  using Backend::upload;
  std::unique_ptr<PackedWeight> pack(const WeightEncoding& weight) const override {
    weight.validate("cuda backend: weight");
    return cuda::pack_cuda_weight(*ctx_, weight, simulate_);
  }

  std::unique_ptr<PackedEmbedding> pack_embedding(const WeightEncoding& table) const override {
    table.validate("cuda backend: embedding table");
    auto p = std::make_unique<CudaPackedEmbedding>();
    p->rows = table.rows;
    p->cols = table.cols;
    // A codebook table is widened to FP32 rows here (its stored rows are not contiguous).
    p->row_bytes = table.kind == WeightKind::kCodebook ? table.cols * 4 : table.row_bytes();
    p->kind = table.kind;
    const int64_t count = table.rows * table.cols;
    switch (table.kind) {
      case WeightKind::kF32:
        p->data = DeviceMemory(count * sizeof(float), "the embedding table");
        p->data.upload(table.data, count * sizeof(float));
        break;
      case WeightKind::kF16:
        p->data = DeviceMemory(count * sizeof(uint16_t), "the embedding table");
        p->data.upload(table.data, count * sizeof(uint16_t));
        break;
      case WeightKind::kIntGrid: {
        p->bits = table.bits;
        p->group = table.group_size();
        p->stored_row_bytes = table.row_bytes();
        const int64_t pairs = table.rows * table.n_groups();
        p->data = DeviceMemory(table.rows * p->stored_row_bytes, "the embedding table");
        p->data.upload(table.data, table.rows * p->stored_row_bytes);
        p->scales = DeviceMemory(pairs * sizeof(float), "the embedding scales");
        p->scales.upload(table.scales, pairs * sizeof(float));
        if (!table.symmetric) {
          p->zeros = DeviceMemory(pairs * sizeof(float), "the embedding zero points");
          p->zeros.upload(table.zeros, pairs * sizeof(float));
        }
        break;
      }
      case WeightKind::kCodebook: {
        p->kind = WeightKind::kF32;
        const std::vector<float> values = table.dequantize();
        p->data = DeviceMemory(count * sizeof(float), "the embedding table");
        p->data.upload(values.data(), count * sizeof(float));
        break;
      }
    }
    return p;
  }

  void embed(const PackedEmbedding& table, const int32_t* tokens, int64_t n, float* out) const override {
    const auto* t = dynamic_cast<const CudaPackedEmbedding*>(&table);
    QUAROT_CHECK(t != nullptr, "cuda backend: embed() got a table packed by another backend");
    for (int64_t i = 0; i < n; ++i)
      QUAROT_CHECK(tokens[i] >= 0 && tokens[i] < t->rows, "embed: token id {} outside the table's {} rows", tokens[i],
                   t->rows);
    if (n <= 0) return;
    wrote();
    std::lock_guard lock(ctx_->mutex);
    const int32_t* ids = nullptr;
    if (ctx_->step.active) {
      // run_step staged these ids on the device; a recording must not bake them in.
      QUAROT_CHECK(n == ctx_->step.n && tokens == step_tokens_,
                   "cuda backend: embed() inside a step got other tokens than the step's");
      ids = reinterpret_cast<const int32_t*>(reinterpret_cast<const char*>(ctx_->device_inputs) +
                                             offsetof(CudaContext::StepInputs, tokens));
    } else {
      auto* d = static_cast<int32_t*>(tokens_.get(*ctx_, n * sizeof(int32_t), "token ids"));
      check(cudaMemcpyAsync(d, tokens, n * sizeof(int32_t), cudaMemcpyHostToDevice, ctx_->stream),
            "uploading token ids");
      ids = d;
    }
    cudaError_t e = cudaSuccess;
    switch (t->kind) {
      case WeightKind::kF16:
        e = cuda::embed_f16(t->data.as<uint16_t>(), t->cols, ids, n, out, ctx_->stream);
        break;
      case WeightKind::kIntGrid:
        e = cuda::embed_int(t->data.as<uint8_t>(), t->stored_row_bytes, t->scales.as<float>(),
                            t->zeros.as<float>(), t->bits, t->cols, t->group, ids, n, out, ctx_->stream);
        break;
      default:
        e = cuda::embed_f32(t->data.as<float>(), t->cols, ids, n, out, ctx_->stream);
        break;
    }
    check(e, "embedding lookup");
  }

  void rmsnorm(const float* x, const float* w, int64_t n, int64_t dim, float eps, float* out) const override {
    QUAROT_CHECK(n >= 0 && dim > 0, "cuda backend: rmsnorm of [{}, {}]", n, dim);
    wrote();
    check(cuda::rmsnorm_rows(x, w, n, dim, eps, out, ctx_->stream), "rmsnorm");
  }

  void rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t pos0,
            const float* inv_freq) const override {
    QUAROT_CHECK(n >= 0 && n_heads >= 0 && head_dim % 2 == 0, "cuda backend: rope of {} rows, {} heads of {}", n,
                 n_heads, head_dim);
    wrote();
    const int* dev_pos = nullptr;
    if (ctx_->step.active) {
      QUAROT_CHECK(pos0 == ctx_->step.pos0 && n == ctx_->step.n,
                   "cuda backend: rope() of {} rows at {} inside a step of {} at {}", n, pos0, ctx_->step.n,
                   ctx_->step.pos0);
      dev_pos = ctx_->step.pos;
    }
    check(cuda::rope_rows(x, n, n_heads, head_dim, pos0, inv_freq, ctx_->stream, dev_pos), "rope");
  }

  void rotate(const OnlineRotation& r, const float* x, int64_t n_rows, int64_t row_length,
              float* out) const override {
    QUAROT_CHECK(n_rows >= 0 && row_length >= 0, "cuda backend: rotate of [{}, {}]", n_rows, row_length);
    wrote();
    std::lock_guard lock(ctx_->mutex);
    const cuda::RotationArgs a = rotations_.get(*ctx_, &r, row_length);
    if (n_rows == 0) return;
    if (!a.active()) {
      if (out != x)
        check(cudaMemcpyAsync(out, x, n_rows * row_length * sizeof(float), cudaMemcpyDeviceToDevice, ctx_->stream),
              "rotate (copy)");
      return;
    }
    check(cuda::rotate_rows(a, x, n_rows, out, ctx_->stream), "online rotation (row too long for shared memory?)");
  }

  void swiglu(const float* gate, const float* up, int64_t n, float* out) const override {
    wrote();
    check(cuda::swiglu(gate, up, n, out, ctx_->stream), "swiglu");
  }

  void add(float* x, const float* y, int64_t n) const override {
    wrote();
    check(cuda::add_inplace(x, y, n, ctx_->stream), "add");
  }

  void linear(const LinearOp& op, const float* x, int64_t n, float* y) const override {
    std::lock_guard lock(ctx_->mutex);
    if (!op.accumulate) {
      linear_.run(*ctx_, rotations_, op, x, n, y, writes_.load());
      return;
    }
    // The fused residual add as its own kernel: the product into scratch, then y +=
    // it (the same single addition as linear() then add()). The scratch stays put
    // between calls of one shape, as a recorded step needs.
    LinearOp plain = op;
    plain.accumulate = false;
    const int64_t count = n * op.weight->out_features;
    auto* product = static_cast<float*>(residual_product_.get(*ctx_, count * sizeof(float), "linear product"));
    linear_.run(*ctx_, rotations_, plain, x, n, product, writes_.load());
    wrote();
    check(cuda::add_inplace(y, product, count, ctx_->stream), "residual add");
  }

  std::unique_ptr<KvStorage> make_kv_storage(const KvCacheSpec& spec) const override {
    // The storage keeps the context (its stream, the step state) alive.
    return cuda::make_cuda_kv_storage(spec, ctx_->stream,
                                      std::shared_ptr<const cuda::StepPositions>(ctx_, &ctx_->step));
  }

  void attention(const float* q, int64_t n, int64_t pos0, const KvStorage& kv, int64_t layer,
                 const AttentionShape& shape, float scale, float* out) const override {
    wrote();
    cuda::cuda_attention(q, n, pos0, kv, layer, shape, scale, out, ctx_->stream);
  }

  std::unique_ptr<StepGraph> make_step_graph() const override {
    if (!graphs_) return nullptr;
    return std::make_unique<CudaStepGraph>(ctx_);
  }

  void run_step(StepGraph* graph, const int32_t* tokens, int64_t n, int64_t pos0,
                const std::function<void()>& enqueue) const override {
    auto* g = dynamic_cast<CudaStepGraph*>(graph);
    if (g == nullptr || g->disabled || pos0 < 1 || n < 1 || n > CudaContext::kMaxStepTokens) {
      count(&CudaStepStats::direct);
      enqueue();
      return;
    }
    QUAROT_CHECK(g->ctx == ctx_, "cuda backend: run_step() got a slot made by another backend");
    QUAROT_CHECK(!ctx_->step.active, "cuda backend: run_step() inside another step");
    ctx_->stage_step_inputs(pos0, tokens, n);
    step_tokens_ = tokens;
    const uint64_t epoch = cuda::device_memory_epoch().load();
    if (g->exec != nullptr && g->exec_epoch == epoch && g->n == n) {
      check(cudaGraphLaunch(g->exec, ctx_->stream), "launching a recorded step");
      wrote();  // the replay wrote activations without a host-side op
      count(&CudaStepStats::replays);
      return;
    }
    if (!g->warm || g->warm_epoch != epoch || g->n != n) {
      // Op by op in step mode: grows whatever scratch the step needs, so the
      // recording (next call) allocates nothing.
      {
        StepScope scope(*ctx_, pos0, n);
        enqueue();
      }
      g->warm = true;
      g->warm_epoch = cuda::device_memory_epoch().load();
      g->n = n;
      count(&CudaStepStats::warmups);
      return;
    }
    std::string why;
    cudaGraph_t recorded = nullptr;
    cudaError_t e = cudaStreamBeginCapture(ctx_->stream, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) {
      why = fmt::format("cudaStreamBeginCapture: {}", cudaGetErrorString(e));
    } else {
      try {
        StepScope scope(*ctx_, pos0, n);
        enqueue();
      } catch (const std::exception& ex) {
        why = ex.what();
      }
      e = cudaStreamEndCapture(ctx_->stream, &recorded);
      if (why.empty() && e != cudaSuccess) why = fmt::format("cudaStreamEndCapture: {}", cudaGetErrorString(e));
      if (why.empty() && cuda::device_memory_epoch().load() != epoch)
        why = "a scratch buffer was reallocated while recording";
    }
    cudaGraphExec_t exec = nullptr;
    if (why.empty()) {
      e = cudaGraphInstantiate(&exec, recorded, 0);
      if (e != cudaSuccess) {
        exec = nullptr;
        why = fmt::format("cudaGraphInstantiate: {}", cudaGetErrorString(e));
      }
    }
    if (recorded != nullptr) cudaGraphDestroy(recorded);
    if (!why.empty()) {
      cudaGetLastError();
      g->disabled = true;
      {
        std::lock_guard lock(stats_mutex_);
        ++stats_.failures;
        stats_.last_failure = why;
      }
      enqueue();  // nothing of the failed recording ran
      return;
    }
    if (g->exec != nullptr) cudaGraphExecDestroy(g->exec);
    g->exec = exec;
    g->exec_epoch = epoch;
    check(cudaGraphLaunch(g->exec, ctx_->stream), "launching a recorded step");
    wrote();
    count(&CudaStepStats::captures);
  }

 private:
  // Device activations may have changed other than through linear() (CudaLinear::run).
  void wrote() const { writes_.fetch_add(1, std::memory_order_relaxed); }

  void count(int64_t CudaStepStats::*field) const {
    std::lock_guard lock(stats_mutex_);
    ++(stats_.*field);
  }

  std::shared_ptr<CudaContext> ctx_;  // first: outlives the scratch below
  bool simulate_;
  bool graphs_;
  mutable const int32_t* step_tokens_ = nullptr;  // the host ids of the step being queued
  mutable std::atomic<uint64_t> writes_{0};
  mutable std::mutex stats_mutex_;
  mutable CudaStepStats stats_;
  mutable cuda::DeviceRotations rotations_;
  mutable cuda::CudaLinear linear_;
  mutable cuda::Scratch tokens_;
  mutable cuda::Scratch residual_product_;  // linear() with accumulate: the product before the add
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options) {
  return std::make_unique<CudaBackend>(options);
}

CudaStepStats cuda_step_stats(const Backend& backend) {
  const auto* b = dynamic_cast<const CudaBackend*>(&backend);
  return b != nullptr ? b->stats() : CudaStepStats{};
}

}  // namespace quarot
