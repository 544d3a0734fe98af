#include "kernels/cpu/kv_attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/chunk_queue.h"
#include "common/error.h"
#include "common/threads.h"
#include "common/wait_policy.h"
#include "kernels/cpu/act_quant_kernels.h"
#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/kv_attention_tiles.h"
#include "kernels/cpu/kv_code_tiles.h"
#include "kernels/cpu/kv_dequant.h"
#include "kernels/cpu/kv_prefill_int8.h"
#include "kernels/cpu/kv_prefill_tiles.h"
#include "kernels/cpu/stream_prefetch.h"

namespace quarot {

namespace {

// Below this many new rows the on-the-fly path runs (attention.cpp's GEMM threshold).
constexpr int64_t kMinPrefillRows = 16;
// Positions per work item (the unit of the split softmax), dequantized kSubTile rows
// at a time into an FP32 tile that stays in L1 (8 KiB at head_dim 64) while every
// query sharing the KV head uses it.
constexpr int64_t kTile = 128;
static_assert(kTile <= kv_detail::kCodeTileMaxRows, "decode tiles must fit the integer code kernels' sums");
constexpr int64_t kSubTile = 32;

constexpr float kLog2e = 1.4426950408889634f;

// What one tile contributes to one query vector: with m the tile's largest visible
// score, l = sum_j exp(s_j - m) and o = sum_j exp(s_j - m) v_j. l == 0 when the tile
// holds no position the query may see.
struct Partial {
  float m, l;
};

// Rows p0 .. p0 + rows - 1 of KV head `head` into tile [rows, head_dim].
void fetch_rows(const KvSource& src, kv_detail::DequantRowsFn kernel, int64_t head, int64_t p0, int64_t rows,
                int64_t kvd, int64_t hd, float* tile) {
  if (src.quant == nullptr) {
    for (int64_t j = 0; j < rows; ++j) std::copy_n(src.fp + (p0 + j) * kvd + head * hd, hd, tile + j * hd);
    return;
  }
  const QuantKvLayerStore& store = *src.quant;
  const QuantKvLayout& l = store.layout();
  kernel(store.codes(head, p0), store.params(head, p0), rows, l.head_dim, l.group_size(), l.packed(), tile);
  if (p0 == 0 && store.first_fp_row() != nullptr)
    std::copy_n(store.first_fp_row() + head * l.head_dim, l.head_dim, tile);
}

kv_detail::DequantRowsFn dequant_kernel(const KvSource& src, Isa isa) {
  return src.quant == nullptr ? nullptr : kv_detail::dequant_rows_for(isa, src.quant->layout().group_size());
}

// What decode reads one side of the cache through: the code-domain kernels
// (kv_code_tiles.h) when they take the store's layout on this ISA, else rows
// dequantized into an L1 tile for the FP32 tile kernels, which read an FP32 side
// in place (its rows n_kv_heads * head_dim apart).
struct DecodeSide {
  const KvSource* src = nullptr;
  const kv_detail::CodeTileKernels* codes = nullptr;
  kv_detail::DequantRowsFn dequant = nullptr;
  const float* first_fp = nullptr;  // IntactKV: position 0 in FP32 (all heads), else null

  DecodeSide(const KvSource& s, Isa isa, bool int8) : src(&s) {
    if (s.quant == nullptr) return;
    const QuantKvLayout& l = s.quant->layout();
    codes = int8 ? kv_detail::code_tile_kernels_int8_for(isa, l.head_dim, l.group_size(), l.packed()) : nullptr;
    if (codes == nullptr) codes = kv_detail::code_tile_kernels_for(isa, l.head_dim, l.group_size());
    dequant = kv_detail::dequant_rows_for(isa, l.group_size());
    first_fp = s.quant->first_fp_row();
  }
  // Positions p0 .. p0 + rows - 1 of `head` as code rows (codes set only).
  kv_detail::CodeRows rows_at(int64_t head, int64_t p0, int64_t rows) const {
    const QuantKvLayout& l = src->quant->layout();
    return {src->quant->codes(head, p0), src->quant->params(head, p0), rows, l.head_dim, l.group_size(), l.packed()};
  }
  // Asks for those positions' codes and scales ahead of use (a quantized side only).
  void prefetch(int64_t head, int64_t p0, int64_t rows) const {
    if (src->quant == nullptr) return;
    const QuantKvLayout& l = src->quant->layout();
    prefetch_range(src->quant->codes(head, p0), rows * l.code_bytes_per_head());
    prefetch_range(src->quant->params(head, p0), rows * 2 * l.groups_per_head() * static_cast<int64_t>(sizeof(float)));
  }
};

// Scratch reused across calls (decode runs once per layer and token): grown, never shrunk.
float* grow(std::vector<float>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

// Work below this many multiply-adds per side (KV heads x positions x query vectors x
// head_dim) runs on the calling thread. A decode call at SmolLM2's context 576 (330k)
// takes ~45 us alone on the 2-vCPU EPYC; splitting it was slower in the model
// (~80 us per call, 2.4 vs 1.5 ms per token) because waking a passively waiting
// thread and joining it costs tens of microseconds there. Longer contexts split.
constexpr int64_t kDecodeSerialWork = int64_t{1} << 20;
// The same when the threads spin (common/wait_policy.h): a wake-up then costs ~2 us,
// so a call of ~20 us (SmolLM2 from context ~230 on) is worth both cores.
constexpr int64_t kDecodeSerialWorkSpinning = int64_t{1} << 17;

// int8: run the integer code kernels (kv_code_tiles.h) where the layout and CPU allow.
void attention_decode(const float* q, int64_t n, int64_t pos0, const KvSource& k, const KvSource& v,
                      const AttentionShape& s, float scale, float* out, bool int8) {
  const int64_t hd = s.head_dim, qd = s.n_heads * hd, group = s.n_heads / s.n_kv_heads;
  const int64_t len = pos0 + n, n_tiles = (len + kTile - 1) / kTile, nq = n * group;
  const int64_t items = s.n_kv_heads * n_tiles;
  const Isa isa = best_isa();
  const int64_t kvd = s.n_kv_heads * hd;
  // The integer kernels need the VNNI path (which implies AVX2 for the finiteness check),
  // and codes cannot carry a NaN or an infinity: such queries take the float kernels.
  int8 = int8 && isa >= Isa::kAvx512Vnni && act_quant_detail::act_quant_kernels_avx2().all_finite(q, n * qd);
  const DecodeSide ks(k, isa, int8), vs(v, isa, int8);
  const kv_detail::TileKernels& tiles = kv_detail::tile_kernels_for(isa, hd);
  // The query vectors of KV head g, contiguous: qbuf[g][i] = q row i / group, head
  // g * group + i % group.
  thread_local std::vector<float> qbuf_v, outs_v;
  thread_local std::vector<Partial> parts_v;
  float* qbuf = grow(qbuf_v, s.n_kv_heads * nq * hd);
  for (int64_t g = 0; g < s.n_kv_heads; ++g)
    for (int64_t i = 0; i < nq; ++i)
      std::copy_n(q + (i / group) * qd + (g * group + i % group) * hd, hd, qbuf + (g * nq + i) * hd);
  // Per (item, query vector): the tile's Partial and its hd-wide o.
  if (static_cast<int64_t>(parts_v.size()) < items * nq) parts_v.resize(static_cast<size_t>(items * nq));
  Partial* parts = parts_v.data();
  float* outs = grow(outs_v, items * nq * hd);
  const int64_t serial_work = openmp_threads_spin() ? kDecodeSerialWorkSpinning : kDecodeSerialWork;
  const bool parallel = items > 1 && s.n_kv_heads * len * nq * hd > serial_work;
  ChunkQueue queue(items, parallel ? num_threads() : 1);
  parallel_region_if(parallel, [&] {
    thread_local std::vector<float> tile_v, scores_v, work_v;
    float* tile = grow(tile_v, kSubTile * hd);
    float* scores = grow(scores_v, nq * kTile);
    float* work = grow(work_v, kv_detail::work_floats(nq, kTile, hd));
    // Each thread takes a contiguous run of items (one KV head's tiles are adjacent in
    // memory; a straggler's last items go to whoever is done, common/chunk_queue.h) and
    // requests the next item's codes while it computes one: a decode step finds the cache
    // evicted by the weights streamed since the layer's previous step, and the hardware
    // prefetchers alone fetch its short per-head streams slowly (docs/kernels.md).
    const int t = omp_get_thread_num();
    const auto prefetch_item = [&](int64_t item) {
      const int64_t g = item / n_tiles, c0 = (item % n_tiles) * kTile, rows = std::min(kTile, len - c0);
      ks.prefetch(g, c0, rows);
      vs.prefetch(g, c0, rows);
    };
    for (int64_t item; (item = queue.next(t)) >= 0;) {
      if (item + 1 < items) prefetch_item(item + 1);
      const int64_t g = item / n_tiles, c0 = (item % n_tiles) * kTile, rows = std::min(kTile, len - c0);
      Partial* part = parts + item * nq;
      float* o_all = outs + item * nq * hd;
      const float* qg = qbuf + g * nq * hd;
      if (ks.codes != nullptr) {
        ks.codes->scores(qg, nq, ks.rows_at(g, c0, rows), scale, scores, kTile, work);
        if (c0 == 0 && ks.first_fp != nullptr) {
          // IntactKV: position 0 in FP32 replaces its codes' score.
          const float* k0 = ks.first_fp + g * hd;
          for (int64_t i = 0; i < nq; ++i) {
            float dot = 0.0f;
            for (int64_t d = 0; d < hd; ++d) dot += qg[i * hd + d] * k0[d];
            scores[i * kTile] = dot * scale;
          }
        }
      } else if (k.fp != nullptr) {
        tiles.scores(qg, nq, k.fp + c0 * kvd + g * hd, kvd, rows, hd, scale, scores, kTile);
      } else {
        for (int64_t j0 = 0; j0 < rows; j0 += kSubTile) {
          const int64_t sub = std::min(kSubTile, rows - j0);
          fetch_rows(k, ks.dequant, g, c0 + j0, sub, kvd, hd, tile);
          tiles.scores(qg, nq, tile, hd, sub, hd, scale, scores + j0, kTile);
        }
      }
      for (int64_t i = 0; i < nq; ++i) {
        // Row t sees positions up to pos0 + t.
        const int64_t visible = std::clamp<int64_t>(pos0 + i / group + 1 - c0, 0, rows);
        float* sc = scores + i * kTile;
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int64_t j = 0; j < visible; ++j) mx = mx > sc[j] ? mx : sc[j];
        const float sum = visible > 0 ? tiles.exp_sum(sc, visible, mx) : 0.0f;
        std::fill(sc + visible, sc + rows, 0.0f);
        part[i] = {mx, sum};
      }
      if (vs.codes != nullptr) {
        // IntactKV: position 0 comes from the FP32 row, the codes from position 1 on.
        const int64_t skip = c0 == 0 && vs.first_fp != nullptr ? 1 : 0;
        vs.codes->weighted_sum(scores + skip, nq, kTile, vs.rows_at(g, c0 + skip, rows - skip), o_all, work);
        if (skip == 1) {
          const float* v0 = vs.first_fp + g * hd;
          for (int64_t i = 0; i < nq; ++i) {
            const float a = scores[i * kTile];
            float* oi = o_all + i * hd;
#pragma omp simd
            for (int64_t d = 0; d < hd; ++d) oi[d] += a * v0[d];
          }
        }
      } else if (v.fp != nullptr) {
        tiles.weighted_sum(scores, nq, kTile, v.fp + c0 * kvd + g * hd, kvd, rows, hd, o_all, false);
      } else {
        for (int64_t j0 = 0; j0 < rows; j0 += kSubTile) {
          const int64_t sub = std::min(kSubTile, rows - j0);
          fetch_rows(v, vs.dequant, g, c0 + j0, sub, kvd, hd, tile);
          tiles.weighted_sum(scores + j0, nq, kTile, tile, hd, sub, hd, o_all, j0 > 0);
        }
      }
    }
  });
  // Merge the tiles of each query vector in tile order (fixed, whatever the threads).
  for (int64_t g = 0; g < s.n_kv_heads; ++g) {
    for (int64_t i = 0; i < nq; ++i) {
      float mx = -INFINITY;
      for (int64_t c = 0; c < n_tiles; ++c) {
        const Partial& p = parts[(g * n_tiles + c) * nq + i];
        if (p.l > 0.0f) mx = std::max(mx, p.m);
      }
      float* o = out + (i / group) * qd + (g * group + i % group) * hd;
      std::fill_n(o, hd, 0.0f);
      float total = 0.0f;
      for (int64_t c = 0; c < n_tiles; ++c) {
        const Partial& p = parts[(g * n_tiles + c) * nq + i];
        if (!(p.l > 0.0f)) continue;
        const float w = std::exp2((p.m - mx) * kLog2e);
        total += w * p.l;
        const float* oc = outs + ((g * n_tiles + c) * nq + i) * hd;
#pragma omp simd
        for (int64_t d = 0; d < hd; ++d) o[d] += w * oc[d];
      }
      const float inv = 1.0f / total;
#pragma omp simd
      for (int64_t d = 0; d < hd; ++d) o[d] *= inv;
    }
  }
}

// The prefill blocks' shared steps. Query vector i of a block (rows t0 .., KV head g) is
// row t0 + i / group, head g * group + i % group. The loops walk (row, head) pairs: a
// 64-bit division per vector (or per vector and tile, for the visible keys) was a third
// of the int8 prefill's own time outside its kernels on the 2-vCPU Xeon.
void gather_block_queries(const float* q, int64_t t0, int64_t nq, int64_t group, int64_t qd, int64_t g, int64_t hd,
                          float* qbuf) {
  for (int64_t r = 0, i = 0; i < nq; ++r)
    for (int64_t h = 0; h < group && i < nq; ++h, ++i)
      std::copy_n(q + (t0 + r) * qd + (g * group + h) * hd, hd, qbuf + i * hd);
}

// visible[i] = clamp(first + i / group, 0, cols): the keys of a tile query vector i sees,
// `first` those of the block's first row.
void visible_keys(int64_t first, int64_t nq, int64_t group, int64_t cols, int64_t* visible) {
  for (int64_t r = 0, i = 0; i < nq; ++r) {
    const int64_t v = std::clamp<int64_t>(first + r, 0, cols);
    for (int64_t h = 0; h < group && i < nq; ++h, ++i) visible[i] = v;
  }
}

// A query row's running max rose from `previous` to `mx`: rescale its running sum and
// output (nothing to do before its first visible key).
void rescale_running(float previous, float mx, float& l, float* oi, int64_t hd) {
  if (!(mx > previous && l > 0.0f)) return;
  const float w = detail::fast_exp2(std::max(-150.0f, previous * kLog2e - mx * kLog2e));
  l *= w;
#pragma omp simd
  for (int64_t d = 0; d < hd; ++d) oi[d] *= w;
}

void write_block_output(const float* o, const float* l, int64_t t0, int64_t nq, int64_t group, int64_t qd,
                        int64_t g, int64_t hd, float* out) {
  for (int64_t r = 0, i = 0; i < nq; ++r) {
    for (int64_t h = 0; h < group && i < nq; ++h, ++i) {
      const float inv = 1.0f / l[i];
      const float* oi = o + i * hd;
      float* dst = out + (t0 + r) * qd + (g * group + h) * hd;
#pragma omp simd
      for (int64_t d = 0; d < hd; ++d) dst[d] = oi[d] * inv;
    }
  }
}

// Prefill: the visible cache is dequantized once per call into FP32 (buffers kept
// across calls, so a prompt's layers do not fault in fresh pages): V as one
// contiguous [len, head_dim] run per KV head, K as transposed tiles [tile][head_dim]
// [kPrefillKeys] per KV head, zero past the last position (what the register-blocked
// products of kv_prefill_tiles.h read). Work items of kQueryBlock new rows x one KV
// head then run a streaming (online) softmax over those tiles: scores, running max /
// sum, rescaled output, weighted sum of V, all in FP32. Keys past the item's last row
// are never used, so the causal mask costs at most kQueryBlock - 1 wasted positions
// per tile row. Each item's result depends only on its own inputs and a fixed tile
// order: the same bits for any thread count.
constexpr int64_t kQueryBlock = 16;
constexpr int64_t kPrefillTile = kv_detail::kPrefillKeys;
constexpr int64_t kDequantChunk = 256;  // a multiple of kPrefillTile
// The int8 prefill's query block (kQueryBlock * group vectors) is whole 16-row AMX tiles.
static_assert(kQueryBlock % 16 == 0);

void attention_prefill(const float* q, int64_t n, int64_t pos0, const KvSource& k, const KvSource& v,
                       const AttentionShape& s, float scale, float* out) {
  const int64_t hd = s.head_dim, qd = s.n_heads * hd, kvd = s.n_kv_heads * hd, group = s.n_heads / s.n_kv_heads;
  const int64_t len = pos0 + n;
  const Isa isa = best_isa();
  const kv_detail::DequantRowsFn k_kernel = dequant_kernel(k, isa), v_kernel = dequant_kernel(v, isa);
  const kv_detail::TileKernels& tiles = kv_detail::tile_kernels_for(isa, hd);
  const kv_detail::PrefillKernels& products = kv_detail::prefill_kernels_for(isa, hd);
  const int64_t key_tiles = (len + kPrefillTile - 1) / kPrefillTile;
  const int64_t kt_head = key_tiles * kPrefillTile * hd;  // floats of one head's transposed tiles
  // K tiles [head][tile][hd][kPrefillTile], then V [head][len][hd].
  thread_local AlignedFloats rows;
  const int64_t need = s.n_kv_heads * (kt_head + len * hd);
  if (rows.size() < need) rows = AlignedFloats(need);
  float* kt = rows.data();
  float* vf = rows.data() + s.n_kv_heads * kt_head;
  const int64_t chunks = (len + kDequantChunk - 1) / kDequantChunk;
  const int64_t blocks = (n + kQueryBlock - 1) / kQueryBlock;
#pragma omp parallel num_threads(num_threads())
  {
    AlignedFloats staged(kDequantChunk * hd);
#pragma omp for schedule(static)
    for (int64_t item = 0; item < 2 * s.n_kv_heads * chunks; ++item) {
      const bool is_v = item >= s.n_kv_heads * chunks;
      const int64_t rest = item % (s.n_kv_heads * chunks), g = rest / chunks, p0 = (rest % chunks) * kDequantChunk;
      const int64_t count = std::min(kDequantChunk, len - p0);
      if (is_v) {
        fetch_rows(v, v_kernel, g, p0, count, kvd, hd, vf + (g * len + p0) * hd);
        continue;
      }
      fetch_rows(k, k_kernel, g, p0, count, kvd, hd, staged.data());
      for (int64_t t0 = 0; t0 < count; t0 += kPrefillTile) {
        float* dst = kt + g * kt_head + (p0 + t0) / kPrefillTile * kPrefillTile * hd;
        const int64_t keys = std::min(kPrefillTile, count - t0);
        for (int64_t d = 0; d < hd; ++d) {
          float* row = dst + d * kPrefillTile;
          for (int64_t j = 0; j < keys; ++j) row[j] = staged.data()[(t0 + j) * hd + d];
          std::fill(row + keys, row + kPrefillTile, 0.0f);
        }
      }
    }
    const int64_t nq_max = kQueryBlock * group;
    AlignedFloats qbuf(nq_max * hd), o(nq_max * hd), scores(nq_max * kPrefillTile);
    std::vector<float> m(static_cast<size_t>(nq_max)), l(static_cast<size_t>(nq_max));
    std::vector<int64_t> visible(static_cast<size_t>(nq_max));
    // Blocks with more keys first (dynamic: the items' costs differ up to n / kQueryBlock times).
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t b = blocks - 1; b >= 0; --b) {
      for (int64_t g = 0; g < s.n_kv_heads; ++g) {
        const int64_t t0 = b * kQueryBlock, rows_q = std::min(kQueryBlock, n - t0), nq = rows_q * group;
        gather_block_queries(q, t0, nq, group, qd, g, hd, qbuf.data());
        std::fill_n(o.data(), nq * hd, 0.0f);
        std::fill_n(m.data(), nq, -INFINITY);
        std::fill_n(l.data(), nq, 0.0f);
        const int64_t keys = pos0 + t0 + rows_q;  // what the block's last row sees
        const float* kh = kt + g * kt_head;
        const float* vh = vf + g * len * hd;
        for (int64_t c0 = 0; c0 < keys; c0 += kPrefillTile) {
          const int64_t cols = std::min(kPrefillTile, keys - c0);
          products.scores(qbuf.data(), nq, hd, kh + c0 * hd, cols, scale, scores.data(), kPrefillTile);
          // Row t sees positions up to pos0 + t; every row sees position 0, so the first
          // tile leaves each running max finite.
          visible_keys(pos0 + t0 + 1 - c0, nq, group, cols, visible.data());
          for (int64_t i = 0; i < nq; ++i) {
            float* sc = scores.data() + i * kPrefillTile;
            if (visible[i] == 0) {
              std::fill_n(sc, cols, 0.0f);
              continue;
            }
            float mx = m[i];
#pragma omp simd reduction(max : mx)
            for (int64_t j = 0; j < visible[i]; ++j) mx = mx > sc[j] ? mx : sc[j];
            const float sum = tiles.exp_sum(sc, visible[i], mx);
            std::fill(sc + visible[i], sc + cols, 0.0f);
            rescale_running(m[i], mx, l[i], o.data() + i * hd, hd);
            m[i] = mx;
            l[i] += sum;
          }
          products.weighted_sum(scores.data(), nq, kPrefillTile, vh + c0 * hd, cols, hd, o.data());
        }
        write_block_output(o.data(), l.data(), t0, nq, group, qd, g, hd, out);
      }
    }
  }
}

// For the int8 prefill: each of rows p0 .. p0 + count - 1 of `head` whose dequantized
// values are s * (c - z) with every c - z in [-127, 127] (one group per head, so one
// scale per row), that scale, else 0 (the row is re-expressed from its own max: IntactKV's
// FP32 first row, 8-bit codes, rows whose zero point lies far outside the code range).
// Null when no row qualifies by layout (FP32 source, groups within the head).
const float* exact_code_scales(const KvSource& src, int64_t head, int64_t p0, int64_t count, float* out) {
  if (src.quant == nullptr) return nullptr;
  const QuantKvLayout& l = src.quant->layout();
  if (l.groups_per_head() != 1 || l.bits > 7) return nullptr;
  const float qmax = static_cast<float>((1 << l.bits) - 1);
  const float* params = src.quant->params(head, p0);  // {scale, zero} per row
  for (int64_t r = 0; r < count; ++r) {
    const float scale = params[2 * r], zero = params[2 * r + 1];
    out[r] = scale > 0.0f && std::fabs(zero) <= 127.0f && std::fabs(qmax - zero) <= 127.0f ? scale : 0.0f;
  }
  if (p0 == 0 && src.quant->first_fp_row() != nullptr) out[0] = 0.0f;
  return out;
}

// Prefill with int8 products (kv_prefill_int8.h): the same blocks, tiles and streaming
// softmax as attention_prefill, but the visible cache is re-expressed once per call as
// int8 rows with a scale per position (keys in the VNNI tile layout), each block's
// query vectors as int8, and each tile's softmax weights (times the value scales) as
// uint8 with a scale per row; both products then sum exactly in int32. Everything
// else (max, exp, running sums, the rescaled output) stays FP32. Same bits for any
// thread count. Returns false, having written nothing, when the queries hold a NaN or
// an infinity (codes cannot carry those; the float path takes the call). The cache
// cannot: the stores refuse non-finite rows.
bool attention_prefill_int8(const float* q, int64_t n, int64_t pos0, const KvSource& k, const KvSource& v,
                            const AttentionShape& s, float scale, const kv_detail::PrefillInt8Kernels& products,
                            float* out) {
  const int64_t hd = s.head_dim, qd = s.n_heads * hd, kvd = s.n_kv_heads * hd, group = s.n_heads / s.n_kv_heads;
  const int64_t len = pos0 + n;
  // The VNNI path implies AVX2: the activation quantizer's vector finiteness check, run
  // on the queries' rows in parallel with the cache's re-expression (one serial pass was
  // ~35 us per layer of a 512-token prompt on a 16-core Xeon).
  const auto all_finite = act_quant_detail::act_quant_kernels_avx2().all_finite;
  bool bad_query = false;
  const Isa isa = best_isa();
  const kv_detail::DequantRowsFn k_kernel = dequant_kernel(k, isa), v_kernel = dequant_kernel(v, isa);
  const int64_t key_tiles = (len + kPrefillTile - 1) / kPrefillTile;
  const int64_t positions = key_tiles * kPrefillTile;  // per head, padded to whole tiles
  const int64_t tile_bytes = kv_detail::prefill_int8_tile_bytes(hd);
  // Per head: codes [tile][64 * hd], scales (and key corrections) [positions].
  thread_local AlignedArray<int8_t> codes;
  thread_local std::vector<float> row_scales;
  thread_local std::vector<int32_t> key_corr;
  const int64_t head_codes = key_tiles * tile_bytes;
  if (static_cast<int64_t>(codes.size()) < 2 * s.n_kv_heads * head_codes)
    codes = AlignedArray<int8_t>(2 * s.n_kv_heads * head_codes);
  grow(row_scales, 2 * s.n_kv_heads * positions);
  if (static_cast<int64_t>(key_corr.size()) < s.n_kv_heads * positions)
    key_corr.resize(static_cast<size_t>(s.n_kv_heads * positions));
  int8_t* kq = codes.data();
  int8_t* vq = codes.data() + s.n_kv_heads * head_codes;
  float* kscale = row_scales.data();
  float* vscale = row_scales.data() + s.n_kv_heads * positions;
  int32_t* kcorr = key_corr.data();
  const int64_t chunks = (len + kDequantChunk - 1) / kDequantChunk;
  const int64_t blocks = (n + kQueryBlock - 1) / kQueryBlock;
#pragma omp parallel num_threads(num_threads())
  {
    AlignedFloats staged(kDequantChunk * hd);
    std::vector<float> given_scales(kDequantChunk);
    // The reduction's result is everyone's after the next loop's barrier.
#pragma omp for schedule(static) reduction(|| : bad_query) nowait
    for (int64_t t = 0; t < n; ++t)
      if (!all_finite(q + t * qd, qd)) bad_query = true;
#pragma omp for schedule(static)
    for (int64_t item = 0; item < 2 * s.n_kv_heads * chunks; ++item) {
      const bool is_v = item >= s.n_kv_heads * chunks;
      const int64_t rest = item % (s.n_kv_heads * chunks), g = rest / chunks, p0 = (rest % chunks) * kDequantChunk;
      const int64_t count = std::min(kDequantChunk, len - p0);
      const KvSource& src = is_v ? v : k;
      fetch_rows(src, is_v ? v_kernel : k_kernel, g, p0, count, kvd, hd, staged.data());
      const float* given = exact_code_scales(src, g, p0, count, given_scales.data());
      for (int64_t t0 = 0; t0 < count; t0 += kPrefillTile) {
        const int64_t tile = (p0 + t0) / kPrefillTile, keys = std::min(kPrefillTile, count - t0);
        const int64_t pos = g * positions + p0 + t0;
        int8_t* dst = (is_v ? vq : kq) + g * head_codes + tile * tile_bytes;
        if (keys < kPrefillTile) {
          // The last tile: keys past the cache read as zero codes with zero scales.
          std::fill_n(dst, tile_bytes, int8_t{0});
          std::fill_n((is_v ? vscale : kscale) + pos, kPrefillTile, 0.0f);
          if (!is_v) std::fill_n(kcorr + pos, kPrefillTile, 0);
        }
        const float* tile_given = given == nullptr ? nullptr : given + t0;
        if (is_v)
          products.quantize_values(staged.data() + t0 * hd, keys, hd, hd, 0, tile_given, dst, vscale + pos);
        else
          products.quantize_keys(staged.data() + t0 * hd, keys, hd, hd, 0, tile_given, dst, kscale + pos,
                                 kcorr + pos);
      }
    }
    const int64_t nq_max = kQueryBlock * group;
    AlignedFloats qbuf(nq_max * hd), o(nq_max * hd), scores(nq_max * kPrefillTile);
    AlignedBytes qu(nq_max * hd), u(nq_max * kPrefillTile);
    std::vector<float> m(static_cast<size_t>(nq_max)), l(static_cast<size_t>(nq_max)),
        qfactor(static_cast<size_t>(nq_max)), wscale(static_cast<size_t>(nq_max)), previous(static_cast<size_t>(nq_max)),
        sums(static_cast<size_t>(nq_max));
    std::vector<int64_t> visible(static_cast<size_t>(nq_max));
    if (products.begin != nullptr) products.begin();
    // Every thread sees the same bad_query here, so all skip the loop or none does.
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t b = bad_query ? -1 : blocks - 1; b >= 0; --b) {
      for (int64_t g = 0; g < s.n_kv_heads; ++g) {
        const int64_t t0 = b * kQueryBlock, rows_q = std::min(kQueryBlock, n - t0), nq = rows_q * group;
        gather_block_queries(q, t0, nq, group, qd, g, hd, qbuf.data());
        products.quantize_queries(qbuf.data(), nq, hd, scale, qu.data(), qfactor.data());
        std::fill_n(o.data(), nq * hd, 0.0f);
        std::fill_n(m.data(), nq, -INFINITY);
        std::fill_n(l.data(), nq, 0.0f);
        const int64_t keys = pos0 + t0 + rows_q;
        for (int64_t c0 = 0; c0 < keys; c0 += kPrefillTile) {
          const int64_t cols = std::min(kPrefillTile, keys - c0);
          const int64_t tile = c0 / kPrefillTile, pos = g * positions + c0;
          products.scores(qu.data(), nq, hd, kq + g * head_codes + tile * tile_bytes, kcorr + pos, kscale + pos,
                          cols, qfactor.data(), scores.data(), kPrefillTile);
          visible_keys(pos0 + t0 + 1 - c0, nq, group, cols, visible.data());
          std::copy_n(m.data(), nq, previous.data());
          // Rows that see no key get zero codes (the AMX weighted sum reads all 64).
          products.softmax_rows(scores.data(), kPrefillTile, nq, visible.data(), vscale + pos, m.data(), u.data(),
                                kPrefillTile, wscale.data(), sums.data());
          for (int64_t i = 0; i < nq; ++i) {
            if (visible[i] == 0) continue;
            rescale_running(previous[i], m[i], l[i], o.data() + i * hd, hd);
            l[i] += sums[i];
          }
          products.weighted_sum(u.data(), nq, kPrefillTile, vq + g * head_codes + tile * tile_bytes, cols, hd,
                                wscale.data(), o.data());
        }
        write_block_output(o.data(), l.data(), t0, nq, group, qd, g, hd, out);
      }
    }
    if (products.end != nullptr) products.end();
  }
  return !bad_query;
}

// Int8 products only where the cache is 4 bits or fewer: its own error then dwarfs
// theirs (0.07-0.14 of it in the tests). An 8-bit or FP32 side is already finer than
// the query codes' rounding, which would become the larger error.
bool coarse_cache(const KvSource& src) { return src.quant != nullptr && src.quant->layout().bits <= 4; }

void check_source(const KvSource& src, const char* name, const AttentionShape& s, int64_t len) {
  QUAROT_CHECK((src.quant == nullptr) != (src.fp == nullptr), "attention: the {} cache needs exactly one source",
               name);
  if (src.quant == nullptr) return;
  const QuantKvLayout& l = src.quant->layout();
  QUAROT_CHECK(l.n_kv_heads == s.n_kv_heads && l.head_dim == s.head_dim,
               "attention: the {} cache holds {} heads of dimension {}, attention needs {} of {}", name, l.n_kv_heads,
               l.head_dim, s.n_kv_heads, s.head_dim);
  QUAROT_CHECK(src.quant->size() >= len, "attention: the {} cache holds {} positions, attention needs {}", name,
               src.quant->size(), len);
}

}  // namespace

void causal_attention_kv(const float* q, int64_t n, int64_t pos0, const KvSource& k, const KvSource& v,
                         const AttentionShape& shape, float scale, float* out, KvProducts products) {
  if (shape.n_heads <= 0 || shape.n_kv_heads <= 0 || shape.head_dim <= 0 || shape.n_heads % shape.n_kv_heads != 0)
    fail("attention: {} query heads, {} KV heads, head_dim {}: need positive sizes with KV heads dividing heads",
         shape.n_heads, shape.n_kv_heads, shape.head_dim);
  if (pos0 < 0) fail("attention: negative start position {}", pos0);
  if (n <= 0) return;
  check_source(k, "key", shape, pos0 + n);
  check_source(v, "value", shape, pos0 + n);
  if (n < kMinPrefillRows) {
    attention_decode(q, n, pos0, k, v, shape, scale, out, products == KvProducts::kInt8);
    return;
  }
  if (k.quant == nullptr && v.quant == nullptr) {
    causal_attention(q, n, pos0, k.fp, v.fp, shape, scale, out);
    return;
  }
  const kv_detail::PrefillInt8Kernels* int8 = kv_detail::prefill_int8_kernels_for(best_isa(), shape.head_dim);
  if (products == KvProducts::kInt8 && int8 != nullptr && coarse_cache(k) && coarse_cache(v) &&
      attention_prefill_int8(q, n, pos0, k, v, shape, scale, *int8, out))
    return;
  attention_prefill(q, n, pos0, k, v, shape, scale, out);
}

void causal_attention_quant_kv(const float* q, int64_t n, int64_t pos0, const QuantKvLayerStore& k,
                               const QuantKvLayerStore& v, const AttentionShape& shape, float scale, float* out) {
  causal_attention_kv(q, n, pos0, KvSource{&k, nullptr}, KvSource{&v, nullptr}, shape, scale, out);
}

}  // namespace quarot
