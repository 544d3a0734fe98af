#include "kernels/cpu/int_gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <omp.h>

#include "common/chunk_queue.h"

#include "common/error.h"
#include "common/threads.h"
#include "common/wait_policy.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/int_gemm_kernels.h"
#include "kernels/cpu/int_gemv_kernels.h"
#include "kernels/cpu/vec_ops.h"
#include "kernels/op_phases.h"

namespace quarot {
namespace {

using int_gemm_detail::IntGemmKernels;
using int_gemm_detail::IntRowsOutput;
using int_gemm_detail::IntTileArgs;
using int_gemm_detail::ProductMode;
using int_gemm_detail::WeightFormat;

constexpr int64_t kPanel = 16;        // output columns per panel
constexpr int64_t kGemvRows = 8;      // up to this many rows: stream packed weights, no prepare
constexpr int64_t kRowBlock = 128;    // prefill: activation rows per task (rounded to the tile height)
                                      // unless the kernel asks for more (IntGemmKernels::row_block)
constexpr int64_t kColumnBlock = 64;  // prefill: output columns per task
constexpr int kMaxProducts = 8;        // products sharing one parallel region (prefill) or job list (decode)
// Decode: products (one int_gemm_many call) that read fewer weight bytes (times rows)
// than decode_serial_bytes() (common/wait_policy.h) run on the calling thread. Results
// do not depend on it (each panel is computed alone).
// Decode: panels per kernel call (2 KiB result buffer). Small, so a product of a few
// dozen panels (SmolLM2's o_proj: 36) still splits evenly between the threads.
constexpr int64_t kGemvChunkPanels = 4;

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

const IntGemmKernels& kernels_for(Isa isa) {
  switch (isa) {
    case Isa::kAmx:
      return int_gemm_detail::int_gemm_kernels_amx();
    case Isa::kAvx512Vnni:
      return int_gemm_detail::int_gemm_kernels_avx512vnni();
    default:
      return int_gemm_detail::int_gemm_kernels_avx2();
  }
}

// Decode streams the packed codes through the GEMV kernels; AMX tiles only pay off
// with more rows, and plain AVX-512 (no VNNI) runs the AVX2 integer code.
const int_gemv_detail::IntGemvKernels& gemv_kernels_for(Isa isa) {
  if (isa == Isa::kAmx || isa == Isa::kAvx512Vnni) return int_gemv_detail::int_gemv_kernels_avx512vnni();
  return int_gemv_detail::int_gemv_kernels_avx2();
}

int source_code(const IntWeightSource& s, int64_t n, int64_t k) {
  const int64_t i = n * s.cols + k;
  if (s.bits <= 4) return (s.packed_codes[i / 2] >> (4 * (i % 2))) & 0xF;
  return s.packed_codes[i];
}

// The stored value s = code - c at panel position kp of column `col` in `panel`.
int stored_value(const IntGemmWeight& w, const uint8_t* panel, int64_t col, int64_t kp) {
  const int64_t byte = (kp / 8) * 64 + col * 4 + kp % 4;
  if (w.nibbles) return (panel[byte] >> (4 * ((kp / 4) % 2))) & 0xF;
  return static_cast<int8_t>(panel[(kp / 4) * 64 + col * 4 + kp % 4]);
}

// Block sums per row, taken from the group's own sum when the block is the group.
struct ActBlocks {
  const float* scale;
  const int32_t* offset;
  const int32_t* sum;
  std::vector<float> scale_store;
  std::vector<int32_t> offset_store, sum_store;
};

void act_blocks(const QuantizedActivations& a, int64_t kb, ActBlocks& out) {
  if (kb == a.group) {
    out.scale = a.scales.data();
    out.offset = a.offsets.data();
    out.sum = a.code_sums.data();
    return;
  }
  const int64_t nb = a.cols / kb, ga = a.groups(), per = a.group / kb;
  out.scale_store.resize(a.rows * nb);
  out.offset_store.resize(a.rows * nb);
  out.sum_store.resize(a.rows * nb);
  for (int64_t m = 0; m < a.rows; ++m) {
    const uint8_t* codes = a.row(m);
    for (int64_t b = 0; b < nb; ++b) {
      out.scale_store[m * nb + b] = a.scales[m * ga + b / per];
      out.offset_store[m * nb + b] = a.offsets[m * ga + b / per];
      int32_t sum = 0;
      for (int64_t k = b * kb; k < (b + 1) * kb; ++k) sum += codes[k];
      out.sum_store[m * nb + b] = sum;
    }
  }
  out.scale = out.scale_store.data();
  out.offset = out.offset_store.data();
  out.sum = out.sum_store.data();
}

struct WeightBlocks {
  const float* scale;
  const int32_t* zero_term;
  const int32_t* sum;
  AlignedFloats scale_store;
  AlignedArray<int32_t> zero_store, sum_store;
};

// SIMD layout: [panel][block][16]; blocks finer than the weight group (kb < group,
// a multiple of 8 so blocks start on a nibble vector) get their sums recomputed.
void weight_blocks(const IntGemmWeight& w, int64_t kb, WeightBlocks& out) {
  if (kb == w.group) {
    out.scale = w.scales.data();
    out.zero_term = w.zero_terms.data();
    out.sum = w.sums.data();
    return;
  }
  const int64_t nb = w.cols / kb, per = w.group / kb;
  out.scale_store = AlignedFloats(w.panels * nb * kPanel);
  out.zero_store = AlignedArray<int32_t>(w.panels * nb * kPanel);
  out.sum_store = AlignedArray<int32_t>(w.panels * nb * kPanel);
#pragma omp parallel for schedule(static) num_threads(num_threads())
  for (int64_t p = 0; p < w.panels; ++p) {
    const uint8_t* panel = w.data.data() + p * w.panel_bytes;
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t g = b / per;
      for (int64_t c = 0; c < kPanel; ++c) {
        const int64_t src = (p * w.groups + g) * kPanel + c;
        const int64_t dst = (p * nb + b) * kPanel + c;
        out.scale_store.data()[dst] = w.scales.data()[src];
        const int32_t zt = w.zero_terms.data()[src];
        out.zero_store.data()[dst] = zt;
        // sum(code - zero) = sum(s) + kb * (c - zero)
        int32_t sum = 0;
        if (p * kPanel + c < w.rows) {
          const int64_t kp0 = g * w.group_padded + (b % per) * kb;
          for (int64_t kp = kp0; kp < kp0 + kb; ++kp) sum += stored_value(w, panel, c, kp);
          sum += static_cast<int32_t>(kb) * zt;
        }
        out.sum_store.data()[dst] = sum;
      }
    }
  }
  out.scale = out.scale_store.data();
  out.zero_term = out.zero_store.data();
  out.sum = out.sum_store.data();
}

// Steps of 8 positions whose kFast int16 sums may be added before widening (kDeep).
int64_t deep_steps(const IntGemmWeight& w, int act_bits) {
  const int64_t amax = (int64_t{1} << act_bits) - 1;
  const int64_t wmax = w.nibbles ? 15 : (int64_t{1} << (w.bits - 1));
  return std::min<int64_t>(32, 32767 / (4 * amax * wmax));
}

ProductMode product_mode(const IntGemmWeight& w, int act_bits) {
  const int64_t amax = (int64_t{1} << act_bits) - 1;
  const int64_t wmax = w.nibbles ? 15 : (int64_t{1} << (w.bits - 1));
  if (deep_steps(w, act_bits) >= 2) return ProductMode::kDeep;
  if (4 * amax * wmax <= 32767) return ProductMode::kFast;
  if (2 * amax * wmax <= 32767) return ProductMode::kPlain;
  return ProductMode::kSplit;
}

// y = (f + bias) + residual for the tile's valid columns: the contract's order. One
// loop per case, so each vectorizes (a test inside the loop kept it scalar).
void finish_tile(const float* out, int64_t ld_out, int64_t m, int64_t col0, int64_t cols, int64_t n_total,
                 const float* bias, const float* residual, float* y, int64_t row0) {
  const float* b = bias != nullptr ? bias + col0 : nullptr;
  for (int64_t i = 0; i < m; ++i) {
    const float* f = out + i * ld_out;
    float* yr = y + (row0 + i) * n_total + col0;
    const float* rr = residual != nullptr ? residual + (row0 + i) * n_total + col0 : nullptr;
    if (b == nullptr && rr == nullptr) {
      std::memcpy(yr, f, cols * sizeof(float));
    } else if (rr == nullptr) {
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) yr[c] = f[c] + b[c];
    } else if (b == nullptr) {
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) yr[c] = f[c] + rr[c];
    } else {
#pragma omp simd
      for (int64_t c = 0; c < cols; ++c) yr[c] = (f[c] + b[c]) + rr[c];
    }
  }
}

void int_gemm_scalar(const IntGemmWeight& w, const QuantizedActivations& a, int64_t kb, const ActBlocks& ab,
                     const float* bias, const float* residual, float* y) {
  const int64_t nb = w.cols / kb, n_out = w.rows;
#pragma omp parallel for collapse(2) schedule(static) num_threads(num_threads())
  for (int64_t m = 0; m < a.rows; ++m) {
    for (int64_t n = 0; n < n_out; ++n) {
      const uint8_t* ac = a.row(m);
      const uint8_t* wc = w.data.data() + n * w.cols;
      float f = 0.0f;
      for (int64_t b = 0; b < nb; ++b) {
        const int64_t g = b * kb / w.group;
        const int64_t zero = w.zeros.data()[n * w.groups + g];
        const int64_t offset = ab.offset[m * nb + b];
        int64_t d = 0;
        for (int64_t k = b * kb; k < (b + 1) * kb; ++k) d += (ac[k] - offset) * (wc[k] - zero);
        const float t = ab.scale[m * nb + b] * w.scales.data()[n * w.groups + g];
        f = std::fma(t, static_cast<float>(static_cast<int32_t>(d)), f);
      }
      float v = f;
      if (bias != nullptr) v = v + bias[n];
      if (residual != nullptr) v = v + residual[m * n_out + n];
      y[m * n_out + n] = v;
    }
  }
}

// One SIMD product's prefill work, split into tasks of a row block x a column block
// (equal row blocks rounded to whole tiles, as gemm.cpp, for balanced threads).
struct SimdGemmPlan {
  const IntGemmWeight* w = nullptr;
  const float* bias = nullptr;
  const float* residual = nullptr;
  float* y = nullptr;
  ActBlocks ab;
  WeightBlocks wb;
  IntTileArgs base;
  const IntGemmKernels* k = nullptr;
  int64_t np = 0, mr = 0, row_blocks = 0, row_block = 0, panels_per_block = 0, column_blocks = 0;
  bool prepare = false;
  int64_t kbw_prepared = 0, prepared_bytes = 0;
  // int_gemm_swiglu: the up weight (w is the gate); y then receives silu(gate) * up
  // through IntGemmKernels::rows_swiglu.
  const IntGemmWeight* up = nullptr;
  WeightBlocks wb_up;
  int64_t tasks() const { return row_blocks * column_blocks; }
  int64_t scratch_bytes() const { return prepare ? np * prepared_bytes * (up != nullptr ? 2 : 1) : 0; }
};

// Fills p in place (its blocks point into their own storage: not copyable after this).
void plan_simd(const IntGemmProduct& product, const QuantizedActivations& a, int64_t kb, SimdGemmPlan& p) {
  const IntGemmWeight& w = *product.w;
  p.w = &w;
  p.bias = product.bias;
  p.residual = product.residual;
  p.y = product.y;
  act_blocks(a, kb, p.ab);
  weight_blocks(w, kb, p.wb);
  const int64_t nb = w.cols / kb;
  IntTileArgs& base = p.base;
  base.lda = a.stride;
  base.w_panel_stride = w.panel_bytes;
  base.format = w.nibbles ? WeightFormat::kNibbles : WeightFormat::kInt8;
  base.mode = product_mode(w, a.bits);
  base.deep_steps = base.mode == ProductMode::kDeep ? deep_steps(w, a.bits) : 1;
  base.blocks = nb;
  base.kb = kb;
  base.kbw = kb == w.group ? w.group_padded : kb;
  p.k = &kernels_for(w.isa);
  p.np = p.k->panels_per_tile;
  p.mr = p.k->rows_per_tile;
  const int64_t M = a.rows;
  p.panels_per_block = std::max(p.np, kColumnBlock / kPanel / p.np * p.np);
  p.column_blocks = (w.panels + p.panels_per_block - 1) / p.panels_per_block;
  // A kernel's taller row block (each task widens its panels once: fewer widenings) only
  // while the product still has two tasks per thread.
  int64_t rows_per_task = p.k->row_block;
  if (rows_per_task > kRowBlock && (M + rows_per_task - 1) / rows_per_task * p.column_blocks < 2 * num_threads())
    rows_per_task = kRowBlock;
  p.row_blocks = (M + rows_per_task - 1) / rows_per_task;
  p.row_block = round_up((M + p.row_blocks - 1) / p.row_blocks, p.mr);
  p.prepare = w.nibbles || p.k->prepared_kbw(base.kbw) != base.kbw;
  p.kbw_prepared = p.k->prepared_kbw(base.kbw);
  p.prepared_bytes = nb * p.kbw_prepared * kPanel;
}

void run_simd_task(const SimdGemmPlan& p, int64_t task, const QuantizedActivations& a, float* out,
                   uint8_t* scratch) {
  const IntGemmWeight& w = *p.w;
  const int64_t rb = task / p.column_blocks, cb = task % p.column_blocks;
  const int64_t M = a.rows, N = w.rows, nb = p.base.blocks;
  const int64_t row_begin = rb * p.row_block, row_end = std::min(M, row_begin + p.row_block);
  const int64_t panel_end = std::min(w.panels, (cb + 1) * p.panels_per_block);
  // Panels p0 .. p0 + np of `weight` (its terms in wb) into args: packed, or widened into
  // `dst` where the kernel reads another layout.
  const auto point_at = [&](IntTileArgs& args, const IntGemmWeight& weight, const WeightBlocks& wb, int64_t p0,
                            uint8_t* dst) {
    args.w = weight.data.data() + p0 * weight.panel_bytes;
    if (p.prepare) {
      for (int64_t j = 0; j < args.np; ++j)
        p.k->prepare_panel(args.w + j * weight.panel_bytes, p.base.format, nb, p.base.kbw, dst + j * p.prepared_bytes);
      args.w = dst;
      args.w_panel_stride = p.prepared_bytes;
      args.format = WeightFormat::kInt8;
      args.kbw = p.kbw_prepared;
    }
    args.w_scale = wb.scale + p0 * nb * kPanel;
    args.w_zero_term = wb.zero_term + p0 * nb * kPanel;
    args.w_sum = wb.sum + p0 * nb * kPanel;
  };
  if (p.k->begin != nullptr) p.k->begin();
  for (int64_t p0 = cb * p.panels_per_block; p0 < panel_end; p0 += p.np) {
    IntTileArgs args = p.base;
    args.np = std::min(p.np, panel_end - p0);
    point_at(args, w, p.wb, p0, scratch);
    const int64_t col0 = p0 * kPanel;
    const int64_t cols = std::min(args.np * kPanel, N - col0);
    if (p.k->rows != nullptr && nb == 1) {
      args.a = a.row(row_begin);
      args.a_scale = p.ab.scale + row_begin;
      args.a_offset = p.ab.offset + row_begin;
      args.a_sum = p.ab.sum + row_begin;
      const IntRowsOutput o{p.y + row_begin * N + col0, N, cols, p.bias != nullptr ? p.bias + col0 : nullptr,
                            p.residual != nullptr ? p.residual + row_begin * N + col0 : nullptr};
      if (p.up == nullptr) {
        p.k->rows(args, row_end - row_begin, o);
        continue;
      }
      // The up panels beside the gate's (int_gemm_swiglu_fused: packed alike).
      IntTileArgs up = p.base;
      up.np = args.np;
      up.a = args.a;
      point_at(up, *p.up, p.wb_up, p0, scratch + p.np * p.prepared_bytes);
      p.k->rows_swiglu(args, up, row_end - row_begin, o);
      continue;
    }
    for (int64_t i0 = row_begin; i0 < row_end; i0 += p.mr) {
      args.m = std::min(p.mr, row_end - i0);
      args.a = a.row(i0);
      args.a_scale = p.ab.scale + i0 * nb;
      args.a_offset = p.ab.offset + i0 * nb;
      args.a_sum = p.ab.sum + i0 * nb;
      args.out = out;
      p.k->tile(args);
      finish_tile(out, args.np * kPanel, args.m, col0, cols, N, p.bias, p.residual, p.y, i0);
    }
  }
  if (p.k->end != nullptr) p.k->end();
}

// Prefill products of one activation matrix (q/k/v, gate/up) as one pool of tasks in one
// parallel region: small products (k and v, 192 columns) left most of 16 threads idle
// when each ran alone, and every region is a fork and a barrier. Each output element is
// still computed by exactly one task, as with separate calls.
void int_gemm_simd_many(SimdGemmPlan* plans, int count, const QuantizedActivations& a) {
  int64_t total = 0, out_floats = 0, scratch_bytes = 0;
  int64_t first_task[kMaxProducts + 1];
  for (int j = 0; j < count; ++j) {
    first_task[j] = total;
    total += plans[j].tasks();
    out_floats = std::max(out_floats, plans[j].mr * plans[j].np * kPanel);
    scratch_bytes = std::max(scratch_bytes, plans[j].scratch_bytes());
  }
  first_task[count] = total;
#pragma omp parallel num_threads(num_threads())
  {
    std::vector<float> out(static_cast<size_t>(out_floats));
    AlignedBytes scratch(scratch_bytes);
#pragma omp for schedule(static)
    for (int64_t t = 0; t < total; ++t) {
      int j = 0;
      while (t >= first_task[j + 1]) ++j;
      run_simd_task(plans[j], t - first_task[j], a, out.data(), scratch.data());
    }
  }
}

// Decode products of one activation matrix (M <= kGemvRows, SIMD weights): the
// GEMV kernels (int_gemv_kernels.h) over chunks of kGemvChunkPanels panels, every
// product's chunks in one list, so several products (q/k/v, gate/up) share one
// parallel region. Each thread takes one contiguous run of the list: its panels
// are then one sequential stream (taking chunks in turn made each thread's reads
// jump every 18 KB, and a 1536 x 576 int4 GEMV on 2 Zen 4 cores took 25-33 us
// instead of 17-21); a thread done with its run takes chunks from the back of the
// others' (common/chunk_queue.h: SmolLM2's o_proj and down_proj are 9 chunks, which
// split 4:5). Each chunk is computed alone: the same bits for any thread count or order.
struct GemvJob {
  const IntGemmWeight* w;
  const float* bias;
  const float* residual;
  float* y;
  int64_t kb;
  ActBlocks ab;
  WeightBlocks wb;
  int_gemv_detail::IntGemvArgs args;
};

void gemv_chunk(const GemvJob& job, int64_t p0, int64_t m) {
  const IntGemmWeight& w = *job.w;
  const int64_t nb = w.cols / job.kb;
  alignas(64) float out[kGemvRows * kGemvChunkPanels * kPanel];
  int_gemv_detail::IntGemvArgs args = job.args;
  args.panels = std::min(kGemvChunkPanels, w.panels - p0);
  args.w = w.data.data() + p0 * w.panel_bytes;
  args.w_scale = job.wb.scale + p0 * nb * kPanel;
  args.w_zero_term = job.wb.zero_term + p0 * nb * kPanel;
  args.w_sum = job.wb.sum + p0 * nb * kPanel;
  args.out = out;
  args.ldo = args.panels * kPanel;
  gemv_kernels_for(w.isa).run(args);
  const int64_t col0 = p0 * kPanel;
  finish_tile(out, args.ldo, m, col0, std::min(args.ldo, w.rows - col0), w.rows, job.bias, job.residual, job.y, 0);
}

void gemv_products(GemvJob* jobs, int count, const QuantizedActivations& a) {
  const int64_t M = a.rows;
  int64_t chunks = 0, bytes = 0;
  for (int j = 0; j < count; ++j) {
    GemvJob& job = jobs[j];
    const IntGemmWeight& w = *job.w;
    act_blocks(a, job.kb, job.ab);
    weight_blocks(w, job.kb, job.wb);
    int_gemv_detail::IntGemvArgs& g = job.args;
    g.a = a.row(0);
    g.lda = a.stride;
    g.m = M;
    g.panel_bytes = w.panel_bytes;
    g.format = w.nibbles ? WeightFormat::kNibbles : WeightFormat::kInt8;
    g.mode = product_mode(w, a.bits);
    g.deep_steps = g.mode == ProductMode::kDeep ? deep_steps(w, a.bits) : 1;
    g.blocks = w.cols / job.kb;
    g.kb = job.kb;
    g.kbw = job.kb == w.group ? w.group_padded : job.kb;
    g.a_scale = job.ab.scale;
    g.a_offset = job.ab.offset;
    g.a_sum = job.ab.sum;
    g.prefetch = decode_prefetch();
    chunks += (w.panels + kGemvChunkPanels - 1) / kGemvChunkPanels;
    bytes += w.panels * w.panel_bytes * M;
  }
  const OpPhaseTimer phase(OpPhase::kProductKernels);
  const auto run = [&](int64_t c) {
    for (int j = 0; j < count; ++j) {
      const int64_t n = (jobs[j].w->panels + kGemvChunkPanels - 1) / kGemvChunkPanels;
      if (c < n) return gemv_chunk(jobs[j], c * kGemvChunkPanels, M);
      c -= n;
    }
  };
  if (bytes <= decode_serial_bytes()) {
    for (int64_t c = 0; c < chunks; ++c) run(c);
    return;
  }
  run_chunks(chunks, run);
}

}  // namespace

IntGemmWeight pack_int_gemm_weight(const IntWeightSource& src, Isa isa) {
  QUAROT_CHECK(src.rows > 0 && src.cols > 0, "int weight: invalid shape [{}, {}]", src.rows, src.cols);
  QUAROT_CHECK(src.bits >= 2 && src.bits <= 8, "int weight: bit width {} is outside 2..8", src.bits);
  QUAROT_CHECK(src.group >= 0, "int weight: negative group size {}", src.group);
  const int64_t group = src.group == 0 ? src.cols : src.group;
  QUAROT_CHECK(src.cols % group == 0, "int weight: group size {} does not divide the row length {}", group, src.cols);
  QUAROT_CHECK(src.packed_codes != nullptr && src.scales != nullptr, "int weight: missing codes or scales");
  QUAROT_CHECK(isa_supported(isa), "int weight: instruction set {} is not supported by this CPU", isa_name(isa));
  const int64_t groups = src.cols / group;
  const int code_max = (1 << src.bits) - 1;
  for (int64_t i = 0; i < src.rows * groups; ++i) {
    QUAROT_CHECK(std::isfinite(src.scales[i]), "int weight: non-finite scale {} (row {}, group {})", src.scales[i],
                 i / groups, i % groups);
    if (src.zeros != nullptr) {
      const float z = src.zeros[i];
      QUAROT_CHECK(z >= 0.0f && z <= static_cast<float>(code_max) && z == std::nearbyint(z),
                   "int weight: zero point {} (row {}, group {}) is not an integer in 0..{}", z, i / groups,
                   i % groups, code_max);
    }
  }
  if (src.bits < 8) {
    // Load-time check of every code, in parallel (a 7B model has billions); the
    // first bad row is reported.
    int64_t bad_row = src.rows;
#pragma omp parallel for schedule(static) reduction(min : bad_row) num_threads(num_threads())
    for (int64_t n = 0; n < src.rows; ++n) {
      for (int64_t k = 0; k < src.cols; ++k) {
        if (source_code(src, n, k) > code_max) {
          bad_row = std::min(bad_row, n);
          break;
        }
      }
    }
    if (bad_row < src.rows) {
      for (int64_t k = 0; k < src.cols; ++k) {
        const int code = source_code(src, bad_row, k);
        QUAROT_CHECK(code <= code_max, "int weight: code {} at ({}, {}) exceeds {} bits", code, bad_row, k,
                     src.bits);
      }
    }
  }
  auto zero_of = [&](int64_t n, int64_t g) -> int32_t {
    return src.zeros != nullptr ? static_cast<int32_t>(src.zeros[n * groups + g]) : (1 << (src.bits - 1));
  };

  IntGemmWeight w;
  w.isa = isa;
  w.rows = src.rows;
  w.cols = src.cols;
  w.bits = src.bits;
  w.group = group;
  w.groups = groups;
  if (isa == Isa::kScalar) {
    w.data = AlignedBytes(src.rows * src.cols, Placement::kWeights);
    w.scales = AlignedFloats(src.rows * groups, Placement::kWeights);
    w.zeros = AlignedArray<int32_t>(src.rows * groups, Placement::kWeights);
    for (int64_t n = 0; n < src.rows; ++n) {
      for (int64_t k = 0; k < src.cols; ++k) w.data.data()[n * src.cols + k] = static_cast<uint8_t>(source_code(src, n, k));
      for (int64_t g = 0; g < groups; ++g) {
        w.scales.data()[n * groups + g] = src.scales[n * groups + g];
        w.zeros.data()[n * groups + g] = zero_of(n, g);
      }
    }
    return w;
  }

  w.nibbles = src.bits <= 4;
  w.code_bias = w.nibbles ? 0 : 1 << (src.bits - 1);
  w.group_padded = round_up(group, 8);
  w.panels = (src.rows + kPanel - 1) / kPanel;
  const int64_t positions = groups * w.group_padded;
  w.panel_bytes = positions * (w.nibbles ? 8 : 16);
  w.data = AlignedBytes(w.panels * w.panel_bytes, Placement::kWeights);
  w.scales = AlignedFloats(w.panels * groups * kPanel, Placement::kWeights);
  w.zero_terms = AlignedArray<int32_t>(w.panels * groups * kPanel, Placement::kWeights);
  w.sums = AlignedArray<int32_t>(w.panels * groups * kPanel, Placement::kWeights);
  std::memset(w.data.data(), 0, w.panels * w.panel_bytes);  // padding: s = 0
#pragma omp parallel for schedule(static) num_threads(num_threads())
  for (int64_t p = 0; p < w.panels; ++p) {
    uint8_t* panel = w.data.data() + p * w.panel_bytes;
    for (int64_t c = 0; c < kPanel; ++c) {
      const int64_t n = p * kPanel + c;
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t meta = (p * groups + g) * kPanel + c;
        if (n >= src.rows) {
          w.scales.data()[meta] = 0.0f;
          w.zero_terms.data()[meta] = 0;
          w.sums.data()[meta] = 0;
          continue;
        }
        const int32_t zero = zero_of(n, g);
        int32_t sum = 0;
        for (int64_t kk = 0; kk < group; ++kk) {
          const int code = source_code(src, n, g * group + kk);
          sum += code - zero;
          const int64_t kp = g * w.group_padded + kk;
          if (w.nibbles) {
            panel[(kp / 8) * 64 + c * 4 + kp % 4] |= static_cast<uint8_t>(code << (4 * ((kp / 4) % 2)));
          } else {
            panel[(kp / 4) * 64 + c * 4 + kp % 4] = static_cast<uint8_t>(static_cast<int8_t>(code - w.code_bias));
          }
        }
        w.scales.data()[meta] = src.scales[n * groups + g];
        w.zero_terms.data()[meta] = w.code_bias - zero;
        w.sums.data()[meta] = sum;
      }
    }
  }
  return w;
}

namespace {

// Checks that w and a can be multiplied; returns the block size (the finer group).
int64_t product_block(const IntGemmWeight& w, const QuantizedActivations& a) {
  QUAROT_CHECK(w.data.size() > 0, "int_gemm: weight was not packed");
  QUAROT_CHECK(a.cols == w.cols, "int_gemm: activations have {} columns, the weight {}", a.cols, w.cols);
  QUAROT_CHECK(a.bits >= 2 && a.bits <= 8 && a.group > 0 && a.cols % a.group == 0 &&
                   a.codes.size() >= a.padded_rows * a.stride && a.padded_rows >= a.rows,
               "int_gemm: activations were not quantized by quantize_activations");
  const int64_t kb = std::min(a.group, w.group);
  const int64_t coarse = std::max(a.group, w.group);
  QUAROT_CHECK(coarse % kb == 0,
               "int_gemm: activation group {} and weight group {} do not nest (the finer must divide the coarser)",
               a.group, w.group);
  QUAROT_CHECK(w.isa == Isa::kScalar || kb == w.group || kb % 8 == 0,
               "int_gemm: activation group {} is finer than the weight group {} but not a multiple of 8", a.group,
               w.group);
  const int64_t bound = kb * ((int64_t{1} << a.bits) - 1) * ((int64_t{1} << w.bits) - 1);
  QUAROT_CHECK(bound < (int64_t{1} << 31),
               "int_gemm: blocks of {} products of {}-bit by {}-bit codes could overflow int32", kb, a.bits, w.bits);
  return kb;
}

}  // namespace

void int_gemm(const IntGemmWeight& w, const QuantizedActivations& a, const float* bias, const float* residual,
              float* y) {
  const IntGemmProduct p{&w, bias, residual, y};
  int_gemm_many(&p, 1, a);
}

void int_gemm_many(const IntGemmProduct* products, int count, const QuantizedActivations& a) {
  int64_t kbs[kMaxProducts];
  bool gemv = a.rows <= kGemvRows && count <= kMaxProducts;
  for (int j = 0; j < count; ++j) {
    const IntGemmProduct& p = products[j];
    QUAROT_CHECK(p.w != nullptr, "int_gemm: null weight");
    const int64_t kb = product_block(*p.w, a);
    QUAROT_CHECK(p.y != nullptr || a.rows == 0, "int_gemm: null output");
    if (j < kMaxProducts) kbs[j] = kb;
    gemv = gemv && p.w->isa != Isa::kScalar;
  }
  if (a.rows == 0) return;
  if (gemv) {
    GemvJob jobs[kMaxProducts];
    for (int j = 0; j < count; ++j) {
      jobs[j].w = products[j].w;
      jobs[j].bias = products[j].bias;
      jobs[j].residual = products[j].residual;
      jobs[j].y = products[j].y;
      jobs[j].kb = kbs[j];
    }
    gemv_products(jobs, count, a);
    return;
  }
  // SIMD products in batches of up to kMaxProducts, each batch one region; scalar ones alone.
  SimdGemmPlan plans[kMaxProducts];
  int batched = 0;
  for (int j = 0; j < count; ++j) {
    const IntGemmProduct& p = products[j];
    const int64_t kb = product_block(*p.w, a);
    if (p.w->isa == Isa::kScalar) {
      ActBlocks ab;
      act_blocks(a, kb, ab);
      int_gemm_scalar(*p.w, a, kb, ab, p.bias, p.residual, p.y);
      continue;
    }
    plan_simd(p, a, kb, plans[batched++]);
    if (batched == kMaxProducts) {
      int_gemm_simd_many(plans, batched, a);
      for (int i = 0; i < batched; ++i) plans[i] = SimdGemmPlan{};
      batched = 0;
    }
  }
  if (batched > 0) int_gemm_simd_many(plans, batched, a);
}

bool int_gemm_swiglu_fused(const IntGemmWeight& gate, const IntGemmWeight& up, int64_t rows, int64_t act_group) {
  const int64_t kb = std::min(act_group > 0 ? act_group : gate.cols, gate.group);
  // Packed alike: the layout (panels, nibbles, padding) follows from these five.
  return rows > kGemvRows && gate.isa == up.isa && gate.isa != Isa::kScalar &&
         kernels_for(gate.isa).rows_swiglu != nullptr && kb == gate.cols && gate.rows == up.rows &&
         gate.cols == up.cols && gate.bits == up.bits && gate.group == up.group;
}

void int_gemm_swiglu(const IntGemmWeight& gate, const IntGemmWeight& up, const QuantizedActivations& a, float* y) {
  QUAROT_CHECK(gate.rows == up.rows && gate.cols == up.cols,
               "int_gemm_swiglu: gate [{}, {}] and up [{}, {}] differ in shape", gate.rows, gate.cols, up.rows,
               up.cols);
  const int64_t kb = product_block(gate, a);
  product_block(up, a);
  QUAROT_CHECK(y != nullptr || a.rows == 0, "int_gemm_swiglu: null output");
  if (a.rows == 0) return;
  if (int_gemm_swiglu_fused(gate, up, a.rows, a.group)) {
    SimdGemmPlan plan;
    plan_simd(IntGemmProduct{&gate, nullptr, nullptr, y}, a, kb, plan);
    plan.up = &up;
    weight_blocks(up, kb, plan.wb_up);
    int_gemm_simd_many(&plan, 1, a);
    return;
  }
  // Elsewhere the two products, then the gating with the operations an activation
  // quantizer's SwiGLU prologue uses (act_quant.cpp).
  const int64_t count = a.rows * gate.rows;
  thread_local std::vector<float> g, u;
  if (static_cast<int64_t>(g.size()) < count) g.resize(count), u.resize(count);
  const IntGemmProduct products[2] = {{&gate, nullptr, nullptr, g.data()}, {&up, nullptr, nullptr, u.data()}};
  int_gemm_many(products, 2, a);
  if (gate.isa == Isa::kScalar)
    silu_mul(g.data(), u.data(), count, y);
  else
    silu_mul_avx2(g.data(), u.data(), count, y);
}

const char* int_gemm_path(const IntGemmWeight& w, int64_t rows) {
  switch (w.isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAmx:
      return rows <= kGemvRows ? "avx512vnni gemv" : "amx";
    case Isa::kAvx512Vnni:
      return rows <= kGemvRows ? "avx512vnni gemv" : "avx512vnni";
    default:
      return rows <= kGemvRows ? "avx2 gemv" : "avx2";
  }
}

}  // namespace quarot
