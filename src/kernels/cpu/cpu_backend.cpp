#include "kernels/cpu/cpu_backend.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "common/error.h"
#include "common/threads.h"
#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/codebook_gemm.h"
#include "kernels/cpu/fake_quant.h"
#include "kernels/cpu/fp32_kv_storage.h"
#include "kernels/cpu/fwht.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/int_gemm.h"
#include "kernels/cpu/kv_attention.h"
#include "kernels/cpu/quant_kv_storage.h"
#include "kernels/cpu/weight_only_gemm.h"

namespace quarot {
namespace {

// A linear weight as this backend runs it: FP32 panels (FP32 weights, and every
// weight of the simulated reference), or the stored encoding read in place: integer
// codes repacked for the integer kernels, and the encoding itself (a view of the
// mapped file) for products with full-precision activations (weight-only GEMM: an
// FP16 lm_head, W4A16), so no FP32 copy of an encoded weight is ever made; codebook
// (CLAQ) weights run the lookup-table kernels on their stored indices.
class CpuPackedWeight final : public PackedWeight {
 public:
  bool fp32 = false;
  GemmWeight gemm;
  bool integer = false;
  IntGemmWeight int_gemm;
  bool codebook = false;
  CodebookGemmWeight cb;
  WeightEncoding source;
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(Isa isa, bool simulate) : isa_(isa), simulate_(simulate) {
    QUAROT_CHECK(isa_supported(isa), "cpu backend: instruction set {} is not supported by this CPU ({})",
                 isa_name(isa), cpu_features().brand);
  }

  std::string name() const override {
    const int threads = num_threads();
    return fmt::format("cpu-{} {} ({} thread{})", simulate_ ? "fp32" : "int", isa_name(isa_), threads,
                       threads == 1 ? "" : "s");
  }

  using Backend::pack;
  std::unique_ptr<PackedWeight> pack(const WeightEncoding& weight) const override {
    auto packed = std::make_unique<CpuPackedWeight>();
    packed->out_features = weight.rows;
    packed->in_features = weight.cols;
    if (weight.kind == WeightKind::kF32) {
      packed->fp32 = true;
      packed->gemm = pack_gemm_weight(static_cast<const float*>(weight.data), weight.rows, weight.cols, isa_);
    } else if (simulate_) {
      // The simulated reference: integer codes (or FP16) become the exact FP32
      // values the formula gives, then the FP32 kernels run.
      const std::vector<float> w = weight.dequantize();
      packed->fp32 = true;
      packed->gemm = pack_gemm_weight(w.data(), weight.rows, weight.cols, isa_);
    } else {
      packed->source = weight;
      if (weight.kind == WeightKind::kCodebook) {
        packed->codebook = true;
        packed->cb = pack_codebook_weight(weight);
      }
      if (weight.kind == WeightKind::kIntGrid && (weight.bits > 4 || weight.cols % 2 == 0)) {
        packed->integer = true;
        packed->int_gemm = pack_int_gemm_weight(int_source(weight), isa_);
      }
    }
    packed->bytes = packed->fp32 ? weight.rows * weight.cols * 4 : weight.stored_bytes();
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

    if (w->integer && quantize && op.act.bits <= 8 && groups_fit(w->int_gemm, op.act)) {
      // The integer path: rotate + quantize in one pass, int32 GEMM, fused epilogue.
      thread_local QuantizedActivations qa;
      quantize_activations(x, n, in, rotate ? op.input_rotation : nullptr, op.act, qa, isa_);
      int_gemm(w->int_gemm, qa, op.bias, nullptr, y);
      return;
    }
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
    if (w->fp32)
      gemm(w->gemm, input, n, op.bias, y);
    else if (w->codebook)
      codebook_gemm(w->cb, input, n, op.bias, y, isa_);
    else
      weight_only_gemm(w->source, input, n, op.bias, y, isa_);
  }

  std::unique_ptr<KvStorage> make_kv_storage(const KvCacheSpec& spec) const override {
    // Packed integer codes where the spec quantizes the cache (2..8 bits); the
    // reference FP32 rows otherwise, and always when simulating.
    if (!simulate_ && QuantKvStorage::supports(spec)) return std::make_unique<QuantKvStorage>(spec);
    return std::make_unique<Fp32KvStorage>(spec);
  }

  void attention(const float* q, int64_t n, int64_t pos0, const KvStorage& kv, int64_t layer,
                 const AttentionShape& shape, float scale, float* out) const override {
    QUAROT_CHECK(layer >= 0 && layer < kv.spec().n_layers, "attention: layer {} out of range", layer);
    QUAROT_CHECK(pos0 >= 0 && pos0 + n <= kv.spec().capacity, "attention: positions beyond the cache's {}",
                 kv.spec().capacity);
    if (const auto* s = dynamic_cast<const Fp32KvStorage*>(&kv)) {
      causal_attention(q, n, pos0, s->k(layer), s->v(layer), shape, scale, out);
    } else if (const auto* s = dynamic_cast<const QuantKvStorage*>(&kv)) {
      causal_attention_kv(q, n, pos0, s->k(layer), s->v(layer), shape, scale, out);
    } else {
      fail("cpu backend: attention() got a KV cache made by another backend");
    }
  }

 private:
  // The integer product sums over blocks of the finer group, which must divide the coarser.
  static bool groups_fit(const IntGemmWeight& w, const ActQuantSpec& act) {
    const int64_t ga = act.group > 0 ? act.group : w.cols, gw = w.group > 0 ? w.group : w.cols;
    const int64_t block = std::min(ga, gw);
    return std::max(ga, gw) % block == 0 && (block == gw || block % 8 == 0);
  }

  // The kernels read the nibbles as one continuous stream; the file pads each row
  // to a whole byte, which differs only for an odd number of columns.
  static IntWeightSource int_source(const WeightEncoding& e) {
    IntWeightSource s;
    s.rows = e.rows;
    s.cols = e.cols;
    s.bits = e.bits;
    s.group = e.group;
    s.packed_codes = static_cast<const uint8_t*>(e.data);
    s.scales = e.scales;
    s.zeros = e.symmetric ? nullptr : e.zeros;
    return s;
  }

  Isa isa_;
  bool simulate_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(Isa isa) { return std::make_unique<CpuBackend>(isa, true); }

std::unique_ptr<Backend> make_cpu_backend() { return make_cpu_backend(best_isa()); }

std::shared_ptr<const Backend> make_cpu_backend(const CpuBackendOptions& options) {
  const Isa isa = options.isa.empty() ? best_isa() : parse_isa(options.isa, "instruction set");
  return std::make_shared<CpuBackend>(isa, options.simulate);
}

}  // namespace quarot
