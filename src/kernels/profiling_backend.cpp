#include "kernels/profiling_backend.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "common/error.h"

namespace quarot {

void OpProfile::add(const std::string& op, double seconds, int64_t rows, double weight_bytes,
                    const OpPhaseTimes& phases) {
  Entry& e = entries_[op];
  for (std::size_t i = 0; i < kOpPhaseCount; ++i) e.phases.seconds[i] += phases.seconds[i];
  e.op = op;
  ++e.calls;
  e.seconds += seconds;
  e.rows += static_cast<double>(rows);
  e.weight_bytes += weight_bytes;
}

std::vector<OpProfile::Entry> OpProfile::entries() const {
  std::vector<Entry> out;
  for (const auto& [name, e] : entries_) out.push_back(e);
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.seconds > b.seconds; });
  return out;
}

double OpProfile::total_seconds() const {
  double t = 0;
  for (const auto& [name, e] : entries_) t += e.seconds;
  return t;
}

namespace {

using Clock = std::chrono::steady_clock;

// The inner backend's storage, wrapped so that appends are timed too; attention()
// hands the inner backend its own storage back.
class ProfilingKvStorage final : public KvStorage {
 public:
  ProfilingKvStorage(std::unique_ptr<KvStorage> inner, const Backend& backend, std::shared_ptr<OpProfile> profile)
      : KvStorage(inner->spec()), inner_(std::move(inner)), backend_(backend), profile_(std::move(profile)) {}
  void append(int64_t layer, int64_t pos0, int64_t n, const float* k, const float* v) override {
    const auto t0 = Clock::now();
    inner_->append(layer, pos0, n, k, v);
    backend_.synchronize();
    profile_->add("kv append", std::chrono::duration<double>(Clock::now() - t0).count(), n);
  }
  std::unique_ptr<KvStorage> clone(int64_t positions) const override {
    return std::make_unique<ProfilingKvStorage>(inner_->clone(positions), backend_, profile_);
  }
  int64_t bytes_per_position() const override { return inner_->bytes_per_position(); }
  const KvStorage& inner() const { return *inner_; }

 private:
  std::unique_ptr<KvStorage> inner_;
  const Backend& backend_;
  std::shared_ptr<OpProfile> profile_;
};

// A profile entry's name for products timed as one op ("q_proj+k_proj+v_proj") and the
// weight bytes they stream.
std::string joined_names(const LinearOp* ops, int count) {
  std::string names;
  for (int i = 0; i < count; ++i) {
    if (i > 0) names += '+';
    names += ops[i].name != nullptr ? ops[i].name : "unnamed";
  }
  return names;
}

double weight_bytes(const LinearOp* ops, int count) {
  double bytes = 0;
  for (int i = 0; i < count; ++i) bytes += static_cast<double>(ops[i].weight->bytes);
  return bytes;
}

class ProfilingBackend final : public Backend {
 public:
  ProfilingBackend(std::shared_ptr<const Backend> inner, std::shared_ptr<OpProfile> profile)
      : inner_(std::move(inner)), profile_(std::move(profile)) {
    QUAROT_CHECK(inner_ != nullptr && profile_ != nullptr, "profiling backend: no backend or profile given");
  }

  std::string name() const override { return inner_->name(); }
  bool host_memory() const override { return inner_->host_memory(); }
  BackendBuffer alloc(int64_t n) const override { return inner_->alloc(n); }
  void upload(const float* host, int64_t n, float* dst) const override { inner_->upload(host, n, dst); }
  void download(const float* src, int64_t n, float* host) const override {
    timed("download", n, [&] { inner_->download(src, n, host); });
  }
  std::unique_ptr<PackedWeight> pack(const WeightEncoding& weight) const override { return inner_->pack(weight); }
  std::unique_ptr<PackedEmbedding> pack_embedding(const WeightEncoding& table) const override {
    return inner_->pack_embedding(table);
  }

  void linear(const LinearOp& op, const float* x, int64_t n, float* y) const override {
    timed("linear " + joined_names(&op, 1), n, [&] { inner_->linear(op, x, n, y); }, weight_bytes(&op, 1));
  }
  // Products sharing one input (q/k/v, gate/up) stay one call, so a backend that shares
  // their rotation and quantization keeps doing so; they are timed as one entry.
  void linears(const LinearOp* ops, int count, const float* x, int64_t n, float* const* ys) const override {
    timed("linear " + joined_names(ops, count), n, [&] { inner_->linears(ops, count, x, n, ys); },
          weight_bytes(ops, count));
  }
  void rmsnorm_linears(const float* x, const float* w, int64_t dim, float eps, const LinearOp* ops, int count,
                       int64_t n, float* h, float* const* ys) const override {
    timed("rmsnorm+linear " + joined_names(ops, count), n,
          [&] { inner_->rmsnorm_linears(x, w, dim, eps, ops, count, n, h, ys); }, weight_bytes(ops, count));
  }
  void swiglu_linear(const LinearOp& op, float* gate, const float* up, int64_t n, float* y) const override {
    timed("swiglu+linear " + joined_names(&op, 1), n, [&] { inner_->swiglu_linear(op, gate, up, n, y); },
          weight_bytes(&op, 1));
  }
  bool rmsnorm_swiglu(const float* x, const float* w, int64_t dim, float eps, const LinearOp& gate, const LinearOp& up,
                      int64_t n, float* out) const override {
    // Recorded only where the backend fuses (elsewhere the caller's separate ops are).
    const LinearOp ops[2] = {gate, up};
    return timed_if("rmsnorm+linear " + joined_names(ops, 2) + "+swiglu", n,
                    [&] { return inner_->rmsnorm_swiglu(x, w, dim, eps, gate, up, n, out); }, weight_bytes(ops, 2));
  }
  void embed(const PackedEmbedding& table, const int32_t* tokens, int64_t n, float* out) const override {
    timed("embed", n, [&] { inner_->embed(table, tokens, n, out); });
  }
  void rmsnorm(const float* x, const float* w, int64_t n, int64_t dim, float eps, float* out) const override {
    timed("rmsnorm", n, [&] { inner_->rmsnorm(x, w, n, dim, eps, out); });
  }
  void rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t pos0,
            const float* inv_freq) const override {
    timed("rope", n, [&] { inner_->rope(x, n, n_heads, head_dim, pos0, inv_freq); });
  }
  void rope_rotate_qk(float* q, float* k, int64_t n, const AttentionShape& shape, int64_t pos0,
                      const float* inv_freq, const OnlineRotation& head_rotation) const override {
    timed("rope+rotate q/k", n, [&] { inner_->rope_rotate_qk(q, k, n, shape, pos0, inv_freq, head_rotation); });
  }
  void rotate(const OnlineRotation& r, const float* x, int64_t n_rows, int64_t row_length,
              float* out) const override {
    timed("rotate", n_rows, [&] { inner_->rotate(r, x, n_rows, row_length, out); });
  }
  void swiglu(const float* gate, const float* up, int64_t n, float* out) const override {
    timed("swiglu", n, [&] { inner_->swiglu(gate, up, n, out); });
  }
  void add(float* x, const float* y, int64_t n) const override {
    timed("add", n, [&] { inner_->add(x, y, n); });
  }
  std::unique_ptr<KvStorage> make_kv_storage(const KvCacheSpec& spec) const override {
    return std::make_unique<ProfilingKvStorage>(inner_->make_kv_storage(spec), *inner_, profile_);
  }
  void attention(const float* q, int64_t n, int64_t pos0, const KvStorage& kv, int64_t layer,
                 const AttentionShape& shape, float scale, float* out) const override {
    const auto* wrapped = dynamic_cast<const ProfilingKvStorage*>(&kv);
    QUAROT_CHECK(wrapped != nullptr, "profiling backend: attention over a KV cache it did not make");
    timed("attention", n, [&] { inner_->attention(q, n, pos0, wrapped->inner(), layer, shape, scale, out); });
  }
  void synchronize() const override { inner_->synchronize(); }

 private:
  // Runs f and records it under `what` when it returns true (an op the backend may decline).
  template <typename F>
  bool timed_if(const std::string& what, int64_t rows, F&& f, double weight_bytes = 0) const {
    OpPhaseTimes phases;
    const auto t0 = Clock::now();
    bool done;
    {
      const ScopedOpPhaseTimes install(&phases);
      done = f();
    }
    if (!done) return false;
    inner_->synchronize();
    profile_->add(what, std::chrono::duration<double>(Clock::now() - t0).count(), rows, weight_bytes, phases);
    return true;
  }
  template <typename F>
  void timed(const std::string& what, int64_t rows, F&& f, double weight_bytes = 0) const {
    timed_if(what, rows, [&] { f(); return true; }, weight_bytes);
  }

  std::shared_ptr<const Backend> inner_;
  std::shared_ptr<OpProfile> profile_;
};

}  // namespace

std::shared_ptr<Backend> make_profiling_backend(std::shared_ptr<const Backend> inner,
                                                std::shared_ptr<OpProfile> profile) {
  return std::make_shared<ProfilingBackend>(std::move(inner), std::move(profile));
}

}  // namespace quarot
