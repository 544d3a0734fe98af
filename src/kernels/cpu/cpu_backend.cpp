#include "kernels/cpu/cpu_backend.h"

#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "common/error.h"
#include "common/threads.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/fake_quant.h"
#include "kernels/cpu/fp32_kv_storage.h"
#include "kernels/cpu/fwht.h"
#include "kernels/cpu/gemm.h"

namespace quarot {
namespace {

class CpuPackedWeight final : public PackedWeight {
 public:
  GemmWeight gemm;
};

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(Isa isa) : isa_(isa) {
    QUAROT_CHECK(isa_supported(isa), "cpu backend: instruction set {} is not supported by this CPU ({})",
                 isa_name(isa), cpu_features().brand);
  }

  std::string name() const override {
    const int threads = num_threads();
    return fmt::format("cpu-fp32 {} ({} thread{})", isa_name(isa_), threads, threads == 1 ? "" : "s");
  }

  using Backend::pack;
  std::unique_ptr<PackedWeight> pack(const WeightEncoding& weight) const override {
    auto packed = std::make_unique<CpuPackedWeight>();
    packed->out_features = weight.rows;
    packed->in_features = weight.cols;
    if (weight.kind == WeightKind::kF32) {
      packed->gemm = pack_gemm_weight(static_cast<const float*>(weight.data), weight.rows, weight.cols, isa_);
    } else {
      // The simulated reference: integer codes (or FP16) become the exact FP32
      // values the formula gives, then the FP32 kernels run.
      const std::vector<float> w = weight.dequantize();
      packed->gemm = pack_gemm_weight(w.data(), weight.rows, weight.cols, isa_);
    }
    return packed;
  }

  void linear(const LinearOp& op, const float* x, int64_t n, float* y) const override {
    const auto* w = dynamic_cast<const CpuPackedWeight*>(op.weight);
    QUAROT_CHECK(w != nullptr, "cpu backend: linear() got a weight packed by another backend");
    QUAROT_CHECK(n >= 0, "cpu backend: negative row count {}", n);
    const int64_t in = w->in_features;
    // A default (identity) rotation is accepted for any width and skipped.
    const bool rotate = op.input_rotation != nullptr &&
                        !(op.input_rotation->is_identity() && op.input_rotation->m.empty());
    const bool quantize = op.act.enabled();
    if (rotate) validate_online_rotation(*op.input_rotation, in);
    if (n == 0) return;

    const float* input = x;
    if (rotate || quantize) {
      // x is const and shared; the online work happens on a private copy that is
      // reused across calls (one per calling thread).
      thread_local std::vector<float> scratch;
      if (static_cast<int64_t>(scratch.size()) < n * in) scratch.resize(n * in);
      std::memcpy(scratch.data(), x, n * in * sizeof(float));
      if (rotate) apply_online_rotation(*op.input_rotation, scratch.data(), n, in);
      if (quantize) {
        fake_quant_rows(scratch.data(), n, in, op.act.bits, op.act.clip_ratio, op.act.group, op.act.symmetric);
      }
      input = scratch.data();
    }
    gemm(w->gemm, input, n, op.bias, y);
  }

  std::unique_ptr<KvStorage> make_kv_storage(const KvCacheSpec& spec) const override {
    return std::make_unique<Fp32KvStorage>(spec);
  }

  void attention(const float* q, int64_t n, int64_t pos0, const KvStorage& kv, int64_t layer,
                 const AttentionShape& shape, float scale, float* out) const override {
    const auto* s = dynamic_cast<const Fp32KvStorage*>(&kv);
    QUAROT_CHECK(s != nullptr, "cpu backend: attention() got a KV cache made by another backend");
    QUAROT_CHECK(layer >= 0 && layer < s->spec().n_layers, "attention: layer {} out of range", layer);
    QUAROT_CHECK(pos0 + n <= s->spec().capacity, "attention: positions beyond the cache's {}", s->spec().capacity);
    causal_attention(q, n, pos0, s->k(layer), s->v(layer), shape, scale, out);
  }

 private:
  Isa isa_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(Isa isa) { return std::make_unique<CpuBackend>(isa); }

std::unique_ptr<Backend> make_cpu_backend() { return make_cpu_backend(best_isa()); }

std::shared_ptr<const Backend> make_cpu_backend(const CpuBackendOptions& options) {
  const Isa isa = options.isa.empty() ? best_isa() : parse_isa(options.isa, "instruction set");
  return make_cpu_backend(isa);
}

}  // namespace quarot
