#include "kernels/cpu/cpu_backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "common/error.h"
#include "common/mapped_file.h"
#include "common/threads.h"
#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/codebook_gemm.h"
#include "kernels/cpu/codebook_int8.h"
#include "kernels/cpu/fake_quant.h"
#include "kernels/cpu/fp32_kv_storage.h"
#include "kernels/cpu/fwht.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/int_gemm.h"
#include "kernels/cpu/kv_attention.h"
#include "kernels/cpu/quant_kv_storage.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/vec_ops.h"
#include "kernels/cpu/weight_only_gemm.h"
#include "kernels/cpu/weight_only_gemm_kernels.h"
#include "kernels/op_phases.h"

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
  // A codebook weight's two runnable forms, each packed on first use (so a file carries
  // only the copy of its indices its products read): the FP32 lookup form
  // (codebook_gemm.h) for full-precision activations, and the integer form for 8-bit
  // activations (codebook_int8.h), possible when this CPU has the kernel (AVX-512 VBMI +
  // VNNI) and the weight's widths are 1..4. Each holds its own copy of the indices, so
  // the file's index pages are released once one is packed (read back from the file if
  // the other form is ever packed).
  bool codebook_int8 = false;
  mutable std::once_flag cb_once, cb8_once;
  mutable CodebookGemmWeight cb;
  mutable CodebookInt8Weight cb8;
  const CodebookGemmWeight& lookup_form() const {
    std::call_once(cb_once, [this] {
      cb = pack_codebook_weight(source);
      release_index_pages(cb.layout);
    });
    return cb;
  }
  const CodebookInt8Weight& int8_form() const {
    std::call_once(cb8_once, [this] {
      cb8 = pack_codebook_int8(source);
      release_index_pages(cb8.layout);
    });
    return cb8;
  }
  // The weight-only GEMM's operand (an F16 lm_head, W4A16 linears): the stored encoding
  // copied on first use into weight_arena memory and the file's pages released. Decode
  // streams it every token, and from 2 MiB pages rather than 4 KiB ones a 49152 x 576
  // GEMV ran 1.04-1.14x (F16) and 1.04-1.05x (int8) faster on Zen 4 (bench_weight_memory).
  // Copied lazily, so files whose products all quantize activations never hold a
  // second copy, and only from a file mapping, whose pages the copy replaces (an
  // encoding in ordinary memory, e.g. quantized in this process, is read in place).
  mutable std::once_flag wo_once;
  mutable WeightEncoding wo;
  const WeightEncoding& weight_only_form() const {
    std::call_once(wo_once, [this] {
      wo = copy_into_weight_memory(source);
      source.release_data_pages();
    });
    return wo;
  }
  WeightEncoding source;

 private:
  void release_index_pages(const CodebookLayout& layout) const {
    if (source.mapped != nullptr && source.data != nullptr)
      source.mapped->release(source.data, static_cast<size_t>(layout.index_bytes));
  }

  // A row-stored kind (F16, integer grid) viewed in a file mapping, with data, scales and
  // zeros copied into weight_arena memory; anything else unchanged.
  static WeightEncoding copy_into_weight_memory(const WeightEncoding& e) {
    if ((e.kind != WeightKind::kF16 && e.kind != WeightKind::kIntGrid) || e.mapped == nullptr) return e;
    struct Copy {
      AlignedBytes data;
      AlignedFloats scales, zeros;
    };
    auto copy = std::make_shared<Copy>();
    const int64_t bytes = e.rows * e.row_bytes();
    copy->data = AlignedBytes(bytes, Placement::kWeights);
    // In 4 MiB pieces, each piece's file pages released once copied, so the copy and
    // the mapping's pages never both count in full towards peak memory.
    constexpr int64_t kPiece = int64_t{4} << 20;
    const auto* src = static_cast<const uint8_t*>(e.data);
    for (int64_t off = 0; off < bytes; off += kPiece) {
      const int64_t len = std::min(kPiece, bytes - off);
      std::memcpy(copy->data.data() + off, src + off, static_cast<size_t>(len));
      e.mapped->release(src + off, static_cast<size_t>(len));
    }
    WeightEncoding out = e;
    out.data = copy->data.data();
    if (e.kind == WeightKind::kIntGrid) {
      const int64_t n = e.rows * e.n_groups();
      copy->scales = AlignedFloats(n, Placement::kWeights);
      std::memcpy(copy->scales.data(), e.scales, static_cast<size_t>(n) * sizeof(float));
      out.scales = copy->scales.data();
      if (e.zeros != nullptr) {
        copy->zeros = AlignedFloats(n, Placement::kWeights);
        std::memcpy(copy->zeros.data(), e.zeros, static_cast<size_t>(n) * sizeof(float));
        out.zeros = copy->zeros.data();
      }
    }
    out.owner = std::move(copy);
    out.mapped = nullptr;  // no longer a view of the file
    return out;
  }
};

// The table read in place (the encoding's owner keeps it alive): a lookup
// dequantizes one row, so an FP16 or integer table is never widened as a whole.
class CpuPackedEmbedding final : public PackedEmbedding {
 public:
  WeightEncoding table;
};

class CpuBackend final : public Backend {
 public:
  CpuBackend(Isa isa, bool simulate, bool int8_attention)
      : isa_(isa), simulate_(simulate), int8_attention_(int8_attention && !simulate) {
    QUAROT_CHECK(isa_supported(isa), "cpu backend: instruction set {} is not supported by this CPU ({})",
                 isa_name(isa), cpu_features().brand);
  }

  std::string name() const override {
    const int threads = num_threads();
    return fmt::format("cpu-{} {} ({} thread{}{})", simulate_ ? "fp32" : "int", isa_name(isa_), threads,
                       threads == 1 ? "" : "s", simulate_ || int8_attention_ ? "" : ", fp32 attention");
  }

  bool host_memory() const override { return true; }
  // Every op keeps its scratch per call or thread_local (linear's rotated/quantized
  // copy, the codebook GEMV's permuted input, blocked attention's tiles); packed
  // weights are read-only after pack(); each KvCache owns its storage.
  bool concurrent_forwards() const override { return true; }

  BackendBuffer alloc(int64_t n) const override {
    QUAROT_CHECK(n >= 0, "cpu backend: negative buffer size {}", n);
    std::shared_ptr<float[]> data(new float[static_cast<size_t>(std::max<int64_t>(n, 1))]);
    float* p = data.get();
    return BackendBuffer(p, n, std::move(data));
  }

  void upload(const float* host, int64_t n, float* dst) const override {
    if (n > 0 && host != dst) std::memcpy(dst, host, n * sizeof(float));
  }
  void download(const float* src, int64_t n, float* host) const override {
    if (n > 0 && src != host) std::memcpy(host, src, n * sizeof(float));
  }

  using Backend::upload;
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
        packed->codebook_int8 = codebook_int8_enabled() && codebook_int8_supports(weight);
      }
      if (weight.kind == WeightKind::kIntGrid && (weight.bits > 4 || weight.cols % 2 == 0)) {
        packed->integer = true;
        packed->int_gemm = pack_int_gemm_weight(int_source(weight), isa_);
        // The packed copy is what products read; the file's codes are needed again
        // only by the weight-only fallback (which pages them back in).
        weight.release_data_pages();
      }
    }
    packed->bytes = packed->fp32 ? weight.rows * weight.cols * 4 : weight.stored_bytes();
    return packed;
  }

  std::unique_ptr<PackedEmbedding> pack_embedding(const WeightEncoding& table) const override {
    auto packed = std::make_unique<CpuPackedEmbedding>();
    packed->rows = table.rows;
    packed->cols = table.cols;
    packed->row_bytes = table.row_bytes();
    packed->table = table;
    // A lookup touches one row per token; loading (validation) read them all.
    table.release_data_pages();
    return packed;
  }

  void embed(const PackedEmbedding& table, const int32_t* tokens, int64_t n, float* out) const override {
    const auto* t = dynamic_cast<const CpuPackedEmbedding*>(&table);
    QUAROT_CHECK(t != nullptr, "cpu backend: embed() got a table packed by another backend");
    // 16- and 8-bit tables through the weight-only kernels' row decoder (F16C / vector
    // unpacking, the same exact values as dequantize_rows, which converts one half at a
    // time: 2.4 ms of a 512-token prefill on Zen 4).
    const WeightKind kind = t->table.kind;
    const bool vector_rows = isa_ != Isa::kScalar && (kind == WeightKind::kF16 || kind == WeightKind::kIntGrid);
    for (int64_t i = 0; i < n; ++i) {
      QUAROT_CHECK(tokens[i] >= 0 && tokens[i] < t->rows, "embed: token id {} outside the table's {} rows",
                   tokens[i], t->rows);
      if (vector_rows)
        weight_only_detail::weight_only_kernels_avx2().decode_row(weight_only_detail::row_view(t->table, tokens[i]),
                                                                  out + i * t->cols);
      else
        t->table.dequantize_rows(tokens[i], 1, out + i * t->cols);
    }
  }

  void rmsnorm(const float* x, const float* w, int64_t n, int64_t dim, float eps, float* out) const override {
    parallel_region_if(n > 1, [&] {
#pragma omp for
      for (int64_t t = 0; t < n; ++t) quarot::rmsnorm(x + t * dim, w, dim, eps, out + t * dim);
    });
  }

  void rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t pos0,
            const float* inv_freq) const override {
    const int64_t row = n_heads * head_dim;
    const float* table = rope_table(inv_freq, head_dim / 2, pos0, n);
    const int64_t per_position = head_dim / 2 * 2;
    parallel_region_if(n * row >= 16384, [&] {
#pragma omp for
      for (int64_t t = 0; t < n; ++t) apply_rope_angles(x + t * row, n_heads, head_dim, table + t * per_position);
    });
  }

  // One pass per position: its query and key rows are roped and rotated while in this
  // core's cache. Four separate parallel regions (rope q, rope k, rotate q, rotate k)
  // each moved the rows between cores again: ~3.6 ms of a 512-token W4A4KV4 prefill on
  // a 16-core Xeon. Row by row the same calls, so the same numbers.
  void rope_rotate_qk(float* q, float* k, int64_t n, const AttentionShape& shape, int64_t pos0, const float* inv_freq,
                      const OnlineRotation& head_rotation) const override {
    const int64_t hd = shape.head_dim;
    const int64_t q_row = shape.n_heads * hd, k_row = shape.n_kv_heads * hd;
    const bool rotate = !head_rotation.is_identity();
    if (rotate) validate_online_rotation(head_rotation, hd);
    const float* table = rope_table(inv_freq, hd / 2, pos0, n);
    const int64_t per_position = hd / 2 * 2;
    parallel_region_if(n * (q_row + k_row) >= 16384, [&] {
      std::vector<float> mixed(rotate && !head_rotation.m.empty() ? hd : 0);
#pragma omp for
      for (int64_t t = 0; t < n; ++t) {
        apply_rope_angles(q + t * q_row, shape.n_heads, hd, table + t * per_position);
        apply_rope_angles(k + t * k_row, shape.n_kv_heads, hd, table + t * per_position);
        if (!rotate) continue;
        for (int64_t h = 0; h < shape.n_heads; ++h)
          apply_online_rotation_row(head_rotation, q + t * q_row + h * hd, mixed.data());
        for (int64_t h = 0; h < shape.n_kv_heads; ++h)
          apply_online_rotation_row(head_rotation, k + t * k_row + h * hd, mixed.data());
      }
    });
  }

  void rotate(const OnlineRotation& r, const float* x, int64_t n_rows, int64_t row_length,
              float* out) const override {
    const bool identity = r.is_identity() && r.m.empty();
    if (!identity) validate_online_rotation(r, row_length);
    if (out != x && n_rows > 0) std::memcpy(out, x, n_rows * row_length * sizeof(float));
    if (!identity) apply_online_rotation(r, out, n_rows, row_length);
  }

  void swiglu(const float* gate, const float* up, int64_t n, float* out) const override {
    // Elementwise, so any split gives the same numbers; chunks keep small calls serial.
    constexpr int64_t kChunk = 4096;
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    parallel_region_if(chunks > 1, [&] {
#pragma omp for
      for (int64_t ch = 0; ch < chunks; ++ch) {
        const int64_t i = ch * kChunk;
        if (isa_ == Isa::kScalar)
          silu_mul(gate + i, up + i, std::min(kChunk, n - i), out + i);
        else
          silu_mul_avx2(gate + i, up + i, std::min(kChunk, n - i), out + i);
      }
    });
  }

  void add(float* x, const float* y, int64_t n) const override { add_parallel(x, y, n); }

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

    if (shared_integer_input(&op, 1, n)) {
      // The integer path: rotate + quantize in one pass, int32 GEMM, fused epilogue (its
      // residual term is the same single add of the finished product).
      integer_linears(&op, 1, x, nullptr, n, &y);
      return;
    }
    // CLAQ with 8-bit activations, decode: the integer lookup GEMV.
    if (w->codebook && quantize && codebook_int8_linears(&op, 1, x, n, &y)) return;
    // CLAQ weight-only: the GEMV adds the residual itself (the same single addition per
    // element as the add below).
    if (w->codebook && !quantize && codebook_linears(&op, 1, x, n, &y)) return;
    if (op.accumulate) {
      // The other paths write their output whole: product into scratch, then the add
      // (rows split over threads; each element is the same single addition).
      thread_local std::vector<float> product;
      const int64_t count = n * w->out_features;
      if (static_cast<int64_t>(product.size()) < count) product.resize(count);
      LinearOp plain = op;
      plain.accumulate = false;
      linear(plain, x, n, product.data());
      add_parallel(y, product.data(), count);
      return;
    }
    const float* input = x;
    if (rotate || quantize) {
      // x is const and shared; the online work happens on a private copy that is
      // reused across calls (one per calling thread).
      const OpPhaseTimer phase(OpPhase::kActivationQuantize);
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
      codebook_gemm(w->lookup_form(), input, n, op.bias, y, isa_);
    else
      weight_only_gemm(w->weight_only_form(), input, n, op.bias, y, isa_);
  }

  void linears(const LinearOp* ops, int count, const float* x, int64_t n, float* const* ys) const override {
    if (codebook_linears(ops, count, x, n, ys)) return;
    if (codebook_int8_linears(ops, count, x, n, ys)) return;
    if (count < 2 || !shared_integer_input(ops, count, n)) {
      Backend::linears(ops, count, x, n, ys);
      return;
    }
    integer_linears(ops, count, x, nullptr, n, ys);
  }

  // The normalization happens row by row inside the activation quantizer (its rows
  // never go through memory) when every op is on the shared integer path or CLAQ's
  // integer lookup path.
  void rmsnorm_linears(const float* x, const float* w, int64_t dim, float eps, const LinearOp* ops, int count,
                       int64_t n, float* h, float* const* ys) const override {
    ActPrologue norm;
    norm.kind = ActPrologue::Kind::kRmsnorm;
    norm.norm_weight = w;
    norm.norm_eps = eps;
    const bool fits = count >= 1 && ops[0].weight->in_features == dim;
    if (fits && shared_integer_input(ops, count, n)) return integer_linears(ops, count, x, &norm, n, ys);
    if (fits && codebook_int8_linears(ops, count, x, n, ys, &norm)) return;
    Backend::rmsnorm_linears(x, w, dim, eps, ops, count, n, h, ys);
  }

  // The integer prefill on a kernel with a gated epilogue (int_gemm_swiglu_fused): one
  // normalization + quantization of x, then both products gated in their epilogue.
  bool rmsnorm_swiglu(const float* x, const float* w, int64_t dim, float eps, const LinearOp& gate, const LinearOp& up,
                      int64_t n, float* out) const override {
    const LinearOp ops[2] = {gate, up};
    if (gate.weight->in_features != dim || gate.bias != nullptr || up.bias != nullptr || gate.accumulate ||
        up.accumulate || !shared_integer_input(ops, 2, n))
      return false;
    const IntGemmWeight& wg = static_cast<const CpuPackedWeight*>(gate.weight)->int_gemm;
    const IntGemmWeight& wu = static_cast<const CpuPackedWeight*>(up.weight)->int_gemm;
    if (!int_gemm_swiglu_fused(wg, wu, n, gate.act.group)) return false;
    ActPrologue norm;
    norm.kind = ActPrologue::Kind::kRmsnorm;
    norm.norm_weight = w;
    norm.norm_eps = eps;
    int_gemm_swiglu(wg, wu, quantized_input(ops, x, &norm, n), out);
    return true;
  }

  void swiglu_linear(const LinearOp& op, float* gate, const float* up, int64_t n, float* y) const override {
    ActPrologue swiglu;
    swiglu.kind = ActPrologue::Kind::kSwiglu;
    swiglu.up = up;
    if (shared_integer_input(&op, 1, n)) return integer_linears(&op, 1, gate, &swiglu, n, &y);
    if (codebook_int8_linears(&op, 1, gate, n, &y, &swiglu)) return;
    Backend::swiglu_linear(op, gate, up, n, y);
  }

  // CLAQ weight-only linears on one input (q/k/v, gate/up; or one linear()): one rotation
  // of x and one codebook_gemm_many call (one parallel region), the results of separate calls.
  // False (nothing done) when the ops do not all qualify.
  bool codebook_linears(const LinearOp* ops, int count, const float* x, int64_t n, float* const* ys) const {
    if (count < 1 || count > kCodebookMaxProducts || n <= 0) return false;
    const auto* w0 = dynamic_cast<const CpuPackedWeight*>(ops[0].weight);
    if (w0 == nullptr || !w0->codebook) return false;
    for (int i = 0; i < count; ++i) {
      const auto* w = dynamic_cast<const CpuPackedWeight*>(ops[i].weight);
      if (w == nullptr || !w->codebook || ops[i].act.enabled() || w->in_features != w0->in_features ||
          ops[i].input_rotation != ops[0].input_rotation)
        return false;
    }
    const int64_t in = w0->in_features;
    const OnlineRotation* r = ops[0].input_rotation;
    const float* input = x;
    if (r != nullptr && !(r->is_identity() && r->m.empty())) {
      validate_online_rotation(*r, in);
      const OpPhaseTimer phase(OpPhase::kActivationQuantize);  // the Hadamard alone (weight-only)
      thread_local std::vector<float> rotated;
      if (static_cast<int64_t>(rotated.size()) < n * in) rotated.resize(n * in);
      std::memcpy(rotated.data(), x, n * in * sizeof(float));
      apply_online_rotation(*r, rotated.data(), n, in);
      input = rotated.data();
    }
    CodebookGemmProduct products[kCodebookMaxProducts];
    for (int i = 0; i < count; ++i)
      products[i] = {&static_cast<const CpuPackedWeight*>(ops[i].weight)->lookup_form(), ops[i].bias,
                     ops[i].accumulate ? ys[i] : nullptr, ys[i]};
    codebook_gemm_many(products, count, input, n, isa_);
    return true;
  }

  // The integer lookup GEMV (codebook_int8.h) runs on AVX-512 VBMI + VNNI CPUs when the
  // backend's path is VNNI or above (a forced lower --isa keeps the FP32 kernels).
  bool codebook_int8_enabled() const { return isa_ >= Isa::kAvx512Vnni && codebook_int8_fast_available(); }

  // CLAQ linears with 8-bit symmetric per-token activations on one input: one rotation +
  // quantization of x (act_quant.h), one codebook_int8_gemv call. Every n: blocks of 4
  // rows beat the FP32 panels + gemm also in prefill (bench_codebook_gemm, 2.x-bit mix,
  // 2 threads: n = 64 at 1536x576 515 vs 705 us, 4096x4096 7.7 vs 11.8 ms). False
  // (nothing done) when the ops do not all qualify: other activation specs, widths
  // above 4, or a CPU without the kernel keep the fake-quantized FP32 path.
  bool codebook_int8_linears(const LinearOp* ops, int count, const float* x, int64_t n, float* const* ys,
                             const ActPrologue* prologue = nullptr) const {
    if (count < 1 || count > kCodebookInt8MaxProducts || n <= 0) return false;
    const auto* w0 = dynamic_cast<const CpuPackedWeight*>(ops[0].weight);
    if (w0 == nullptr || !w0->codebook_int8) return false;
    const ActQuantSpec& a0 = ops[0].act;
    for (int i = 0; i < count; ++i) {
      const auto* w = dynamic_cast<const CpuPackedWeight*>(ops[i].weight);
      const ActQuantSpec& a = ops[i].act;
      if (w == nullptr || !w->codebook_int8 || w->in_features != w0->in_features || a.bits != 8 || !a.symmetric ||
          (a.group != 0 && a.group != w->in_features) || a.clip_ratio != a0.clip_ratio || a.group != a0.group ||
          ops[i].input_rotation != ops[0].input_rotation)
        return false;
    }
    const int64_t in = w0->in_features;
    const OnlineRotation* r = ops[0].input_rotation;
    const bool rotate = r != nullptr && !(r->is_identity() && r->m.empty());
    if (rotate) validate_online_rotation(*r, in);
    CodebookInt8Product products[kCodebookInt8MaxProducts];
    const CodebookInt8Weight* forms[kCodebookInt8MaxProducts] = {};
    for (int i = 0; i < count; ++i) {
      forms[i] = &static_cast<const CpuPackedWeight*>(ops[i].weight)->int8_form();
      products[i] = {forms[i], ops[i].bias, ops[i].accumulate ? ys[i] : nullptr, ys[i]};
    }
    // The products' slot maps and scales, and ownership of the call's buffers, arrive
    // while x is quantized.
    codebook_int8_prefetch_inputs(forms, count);
    thread_local QuantizedActivations qa;
    // (quantize_activations reports its own phases: a fused prologue is split off.)
    if (prologue != nullptr)
      quantize_activations(x, *prologue, n, in, rotate ? r : nullptr, a0, qa, isa_);
    else
      quantize_activations(x, n, in, rotate ? r : nullptr, a0, qa, isa_);
    codebook_int8_gemv(products, count, qa);
    return true;
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
      causal_attention_kv(q, n, pos0, KvSource{nullptr, s->k(layer)}, KvSource{nullptr, s->v(layer)}, shape, scale,
                          out);
    } else if (const auto* s = dynamic_cast<const QuantKvStorage*>(&kv)) {
      // The integer backend multiplies attention in int8 too (where VNNI runs it).
      causal_attention_kv(q, n, pos0, s->k(layer), s->v(layer), shape, scale, out,
                          int8_attention_ ? KvProducts::kInt8 : KvProducts::kFloat);
    } else {
      fail("cpu backend: attention() got a KV cache made by another backend");
    }
  }

 private:
  // The cos / sin of positions pos0 .. pos0 + n - 1 (rope_angles' layout, one block of
  // 2 * half per position). A forward's q and k in every layer turn the same positions
  // by the same frequencies, so the table is made once (the sin / cos calls were most
  // of rope's time) and kept per calling thread while the frequencies (compared by
  // value) and the positions still fit; the values are those apply_rope computes.
  // True when every op takes the integer path with one activation quantization of
  // their common input (same input rotation and activation spec): then the codes are
  // what each separate call would compute, so the outputs are identical.
  static constexpr int kMaxSharedOps = 8;  // products per shared quantization (q/k/v, gate/up)
  static bool shared_integer_input(const LinearOp* ops, int count, int64_t n) {
    if (count < 1 || count > kMaxSharedOps || n <= 0) return false;
    const auto* w0 = dynamic_cast<const CpuPackedWeight*>(ops[0].weight);
    if (w0 == nullptr) return false;
    for (int i = 0; i < count; ++i) {
      const auto* w = dynamic_cast<const CpuPackedWeight*>(ops[i].weight);
      const ActQuantSpec& a = ops[i].act, &a0 = ops[0].act;
      if (w == nullptr || !w->integer || !a.enabled() || a.bits > 8 || !groups_fit(w->int_gemm, a) ||
          w->in_features != w0->in_features || a.bits != a0.bits || a.clip_ratio != a0.clip_ratio ||
          a.group != a0.group || a.symmetric != a0.symmetric || ops[i].input_rotation != ops[0].input_rotation)
        return false;
    }
    return true;
  }

  // The shared input of integer products: prologue(x) (none: x) rotated and quantized in
  // one pass, into a per-thread buffer valid until the next call.
  const QuantizedActivations& quantized_input(const LinearOp* ops, const float* x, const ActPrologue* prologue,
                                              int64_t n) const {
    const auto* w0 = static_cast<const CpuPackedWeight*>(ops[0].weight);
    const int64_t in = w0->in_features;
    const OnlineRotation* r = ops[0].input_rotation;
    const bool rotate = r != nullptr && !(r->is_identity() && r->m.empty());
    if (rotate) validate_online_rotation(*r, in);
    thread_local QuantizedActivations qa;
    // (quantize_activations reports its own phases: a fused prologue is split off.)
    if (prologue != nullptr)
      quantize_activations(x, *prologue, n, in, rotate ? r : nullptr, ops[0].act, qa, isa_);
    else
      quantize_activations(x, n, in, rotate ? r : nullptr, ops[0].act, qa, isa_);
    return qa;
  }

  // The shared integer path (shared_integer_input): one rotation + quantization of
  // prologue(x) (none: x), then the products in one int_gemm_many call.
  void integer_linears(const LinearOp* ops, int count, const float* x, const ActPrologue* prologue, int64_t n,
                       float* const* ys) const {
    const auto* w0 = static_cast<const CpuPackedWeight*>(ops[0].weight);
    const QuantizedActivations& qa = quantized_input(ops, x, prologue, n);
    if (count == 1) {
      int_gemm(w0->int_gemm, qa, ops[0].bias, ops[0].accumulate ? ys[0] : nullptr, ys[0]);
      return;
    }
    IntGemmProduct products[kMaxSharedOps];
    for (int i = 0; i < count; ++i)
      products[i] = {&static_cast<const CpuPackedWeight*>(ops[i].weight)->int_gemm, ops[i].bias,
                     ops[i].accumulate ? ys[i] : nullptr, ys[i]};
    int_gemm_many(products, count, qa);
  }

  static const float* rope_table(const float* inv_freq, int64_t half, int64_t pos0, int64_t n) {
    struct Table {
      std::vector<float> inv_freq;
      int64_t first = 0, count = 0;
      std::vector<float> cs;
    };
    thread_local Table t;
    const bool hit = static_cast<int64_t>(t.inv_freq.size()) == half &&
                     std::equal(t.inv_freq.begin(), t.inv_freq.end(), inv_freq) && pos0 >= t.first &&
                     pos0 + n <= t.first + t.count;
    if (!hit) {
      t.inv_freq.assign(inv_freq, inv_freq + half);
      t.first = pos0;
      t.count = n;
      t.cs.resize(static_cast<size_t>(n * 2 * half));
      float* cs = t.cs.data();
      parallel_region_if(n * half >= 4096, [&] {
#pragma omp for
        for (int64_t i = 0; i < n; ++i) rope_angles(pos0 + i, inv_freq, half, cs + i * 2 * half);
      });
    }
    return t.cs.data() + (pos0 - t.first) * 2 * half;
  }

  // x[i] += y[i]: elementwise, so any split gives the same numbers; chunks keep small
  // (decode) calls on the calling thread.
  static void add_parallel(float* x, const float* y, int64_t n) {
    constexpr int64_t kChunk = 32768;
    const int64_t chunks = (n + kChunk - 1) / kChunk;
    parallel_region_if(chunks > 1, [&] {
#pragma omp for
      for (int64_t ch = 0; ch < chunks; ++ch)
        add_to(x + ch * kChunk, y + ch * kChunk, std::min(kChunk, n - ch * kChunk));
    });
  }

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
  bool int8_attention_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(Isa isa) { return std::make_unique<CpuBackend>(isa, true, false); }

std::unique_ptr<Backend> make_cpu_backend() { return make_cpu_backend(best_isa()); }

std::shared_ptr<const Backend> make_cpu_backend(const CpuBackendOptions& options) {
  const Isa isa = options.isa.empty() ? best_isa() : parse_isa(options.isa, "instruction set");
  const char* env = std::getenv("QUAROT_INT8_ATTENTION");
  const bool int8_attention = options.int8_attention && !(env != nullptr && std::strcmp(env, "0") == 0);
  return std::make_shared<CpuBackend>(isa, options.simulate, int8_attention);
}

}  // namespace quarot
