#include "kernels/cpu/codebook_int8.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <optional>

#include "common/chunk_queue.h"
#include "common/error.h"
#include "common/half.h"
#include "common/wait_policy.h"
#include "kernels/cpu/codebook_int8_kernels.h"
#include "kernels/cpu/stream_prefetch.h"
#include "kernels/op_phases.h"

namespace quarot {
namespace {

using codebook_int8_detail::GatherArgs;
using codebook_int8_detail::Int8Act;
using codebook_int8_detail::Int8Kernels;
using codebook_int8_detail::Int8View;

constexpr int64_t kHalfRows = 32;

int class_of_bits(int b) { return b <= 2 ? b - 1 : 2; }

// The calling thread's per-call buffers of codebook_int8_gemv (the activation codes in
// slot order, group sums and scales), reused across calls.
struct CallBuffers {
  AlignedBytes xs;
  std::vector<int32_t> corr;
  std::vector<float> scale;
};

// Each thread's pair tables of the current call, built by the thread on its first half
// stripe of a product (not by the calling thread for all: read by the others, 4.6 KB per
// 576-column product crossed between cores, made two core complexes 20% slower).
struct PairScratch {
  uint64_t call = 0;
  uint32_t built = 0;  // products whose tables are made
  AlignedBytes tables;
  std::vector<float> scales;
};
PairScratch& pair_scratch() {
  thread_local PairScratch scratch;
  return scratch;
}
std::atomic<uint64_t> pair_calls{0};

CodebookInt8PairSetting pair_setting() {
  static const CodebookInt8PairSetting d = parse_codebook_int8_pair_setting(std::getenv("QUAROT_CLAQ_PAIR_TABLES"));
  return d;
}

CallBuffers& call_buffers() {
  thread_local CallBuffers buffers;
  return buffers;
}

Int8View view_of(const CodebookInt8Weight& w) {
  Int8View v;
  v.rows = w.source.rows;
  v.group = w.group;
  for (int c = 0; c <= kCodebookInt8Classes; ++c) {
    v.slot_start[c] = w.slot_start[c];
    v.chunk_start[c] = w.chunk_start[c];
  }
  v.chunks = w.chunks();
  v.tables = w.tables.data();
  v.data = w.data.data();
  v.slot_column = w.slot_column.data();
  v.stream = static_cast<const uint8_t*>(w.source.data);
  v.layout = &w.layout;
  return v;
}


struct Job {
  const CodebookInt8Product* p = nullptr;
  Int8View v;
  Int8Act a;
  int64_t halves = 0;
  // Pair tables (0 bytes: column tables): per activation row, pair_stride bytes of
  // tables and pair_groups scales (two per group), at these offsets into the thread's
  // PairScratch.
  int64_t pair_stride = 0, pair_groups = 0, pair_table_at = 0, pair_scale_at = 0;
};

// Half stripe h of a job: kernel sums, outliers, bias, residual, in that order.
// xd: the dequantized activations s_x (code - 128), [n, cols], for the outliers.
void run_half(const Job& job, const Int8Kernels& k, const QuantizedActivations& qa, const float* xd, int64_t h,
              const int8_t* pair_tables, const float* pair_scales) {
  const CodebookInt8Weight& w = *job.p->w;
  const WeightEncoding& e = w.source;
  const int64_t rows = e.rows, n = qa.rows;
  const int64_t r0 = h * kHalfRows, m = std::min(kHalfRows, rows - r0);
  alignas(64) float out[kCodebookInt8MaxRows * kHalfRows];
  // Activation rows in blocks of the kernel's 4: the half stripe's indices and tables
  // stay in L1 across blocks (prefill).
  // Pair tables are per row: one row per kernel pass.
  const int64_t rows_per_pass = pair_tables != nullptr ? 1 : kCodebookInt8MaxRows;
  for (int64_t i0 = 0; i0 < n; i0 += rows_per_pass) {
    const int64_t nb = std::min(rows_per_pass, n - i0);
    Int8Act a = job.a;
    a.xs += i0 * a.x_stride;
    a.corr += i0 * a.groups;
    a.scale += i0 * a.groups;
    if (pair_tables != nullptr) {
      a.pairs = pair_tables + i0 * job.pair_stride;
      a.pair_scale = pair_scales + i0 * job.pair_groups;
    }
    a.n = nb;
    k.half(job.v, a, h, out);
    if (e.n_outliers > 0)
      for (int64_t j = 0; j < m; ++j)
        for (uint32_t t = e.outlier_row_ptr[r0 + j]; t < e.outlier_row_ptr[r0 + j + 1]; ++t) {
          const float d = w.outlier_delta[t];
          const int64_t c = e.outlier_cols[t];
          for (int64_t i = 0; i < nb; ++i) out[i * kHalfRows + j] += d * xd[(i0 + i) * e.cols + c];
        }
    // Bias, then residual: the same additions in the same order as one element at a
    // time, as whole-row loops the compiler vectorizes (a scalar loop over the 32 rows
    // with the tests inside took 4% of a CLAQ decode). The residual may be y itself
    // (the residual stream): each element is read before it is written.
    const float* bias = job.p->bias != nullptr ? job.p->bias + r0 : nullptr;
    for (int64_t i = 0; i < nb; ++i) {
      float* o = out + i * kHalfRows;
      float* y = job.p->y + (i0 + i) * rows + r0;
      const float* res = job.p->residual != nullptr ? job.p->residual + (i0 + i) * rows + r0 : nullptr;
      if (bias != nullptr)
#pragma omp simd
        for (int64_t j = 0; j < m; ++j) o[j] += bias[j];
      if (res != nullptr) {
#pragma omp simd
        for (int64_t j = 0; j < m; ++j) y[j] = o[j] + res[j];
      } else {
        std::memcpy(y, o, m * sizeof(float));
      }
    }
  }
}

}  // namespace

CodebookInt8PairSetting parse_codebook_int8_pair_setting(const char* value) {
  if (value == nullptr || *value == '\0' || std::strcmp(value, "0") == 0) return CodebookInt8PairSetting::kNever;
  if (std::strcmp(value, "1") == 0) return CodebookInt8PairSetting::kOneRow;
  if (std::strcmp(value, "all") == 0) return CodebookInt8PairSetting::kAlways;
  fail("QUAROT_CLAQ_PAIR_TABLES={} is not 0, 1 or all", value);
}

bool codebook_int8_takes_pairs(CodebookInt8Lookup lookup, CodebookInt8PairSetting setting, int64_t n,
                               int64_t weights) {
  switch (lookup) {
    case CodebookInt8Lookup::kColumns: return false;
    case CodebookInt8Lookup::kPairs: return true;
    case CodebookInt8Lookup::kAuto: break;
  }
  // Under the environment's choice only products big enough to repay their tables' build.
  if (weights < kCodebookInt8PairMinWeights) return false;
  return setting == CodebookInt8PairSetting::kAlways || (setting == CodebookInt8PairSetting::kOneRow && n == 1);
}

bool codebook_int8_supports(const WeightEncoding& w) {
  if (w.kind != WeightKind::kCodebook || w.col_bits == nullptr) return false;
  for (int64_t c = 0; c < w.cols; ++c)
    if (w.col_bits[c] < 1 || w.col_bits[c] > 4) return false;
  return true;
}

int64_t CodebookInt8Weight::table_byte(int64_t s, int v) const {
  return codebook_int8_detail::table_byte(slot_start.data(), s, v);
}

bool codebook_int8_fast_available() { return cpu_features().has_avx512_vbmi_vnni(); }

CodebookInt8Weight pack_codebook_int8(const WeightEncoding& w, int group) {
  QUAROT_CHECK(w.kind == WeightKind::kCodebook, "codebook_int8: weight kind {} is not a codebook",
               weight_kind_name(w.kind));
  QUAROT_CHECK(codebook_int8_supports(w), "codebook_int8: only columns of 1..4 bits are supported");
  QUAROT_CHECK(group == 16 || group == 32 || group == 64, "codebook_int8: scale group {} is not 16, 32 or 64", group);
  QUAROT_CHECK(w.data != nullptr && w.centroids != nullptr, "codebook_int8: weight has no indices or centroids");
  CodebookInt8Weight p;
  p.source = w;
  p.layout = CodebookLayout(w.rows, w.cols, w.col_bits, "codebook_int8");
  p.group = group;
  const CodebookLayout& l = p.layout;
  const auto max_abs = [&](int64_t k) {
    const uint16_t* t = w.centroids + l.centroid_offset(k);
    float m = 0.0f;
    for (int v = 0; v < (1 << l.bits_at(k)); ++v) m = std::max(m, std::fabs(fp16_to_fp32(t[v])));
    return m;
  };
  // Slots: per class, columns by ascending max|centroid| (similar ranges share a scale),
  // padded to whole unrolled blocks (whole groups, whole 64-byte loads).
  std::vector<float> col_max(w.cols, 0.0f);
  for (int64_t k = 0; k < w.cols; ++k) col_max[l.order[k]] = max_abs(k);
  int64_t slots = 0, chunks = 0;
  for (int cls = 0; cls < kCodebookInt8Classes; ++cls) {
    p.slot_start[cls] = slots;
    p.chunk_start[cls] = chunks;
    std::vector<int32_t> cols;
    for (int64_t k = 0; k < w.cols; ++k)
      if (class_of_bits(l.bits_at(k)) == cls) cols.push_back(l.order[k]);
    std::stable_sort(cols.begin(), cols.end(), [&](int32_t a, int32_t b) { return col_max[a] < col_max[b]; });
    const int64_t block = std::max<int64_t>(group, codebook_int8_chunk_slots(cls));
    const int64_t padded = (static_cast<int64_t>(cols.size()) + block - 1) / block * block;
    p.slot_column.insert(p.slot_column.end(), cols.begin(), cols.end());
    p.slot_column.insert(p.slot_column.end(), padded - static_cast<int64_t>(cols.size()), -1);
    slots += padded;
    chunks += padded / codebook_int8_chunk_slots(cls);
  }
  p.slot_start[kCodebookInt8Classes] = slots;
  p.chunk_start[kCodebookInt8Classes] = chunks;
  p.slots = slots;
  p.halves = (w.rows + kHalfRows - 1) / kHalfRows;
  if (w.cols <= kCodebookInt8GatherMaxCols) {
    const int64_t padded = (slots + 63) / 64 * 64;
    p.gather_lo = AlignedBytes(padded, Placement::kWeights);
    p.gather_block = AlignedBytes(padded, Placement::kWeights);
    std::memset(p.gather_lo.data(), 0, padded);
    std::memset(p.gather_block.data(), 0xFF, padded);
    for (int64_t s = 0; s < slots; ++s)
      if (const int32_t c = p.slot_column[s]; c >= 0) {
        p.gather_lo.data()[s] = static_cast<uint8_t>(c % 128);
        p.gather_block.data()[s] = static_cast<uint8_t>(c / 128);
      }
  }

  // Scales and int8 tables (t + 128; entries past 2^b and empty slots: t = 0).
  std::vector<int32_t> slot_of(w.cols, -1);
  p.group_scale.assign(slots / group, 0.0f);
  p.tables = AlignedBytes(slots / 4 * 64, Placement::kWeights);
  std::memset(p.tables.data(), 128, p.tables.size());
  for (int64_t g = 0; g < slots / group; ++g) {
    float m = 0.0f;
    for (int64_t s = g * group; s < (g + 1) * group; ++s)
      if (p.slot_column[s] >= 0) m = std::max(m, col_max[p.slot_column[s]]);
    const float sg = m / 127.0f;
    p.group_scale[g] = sg;
    for (int64_t s = g * group; s < (g + 1) * group; ++s) {
      const int32_t c = p.slot_column[s];
      if (c < 0) continue;
      slot_of[c] = static_cast<int32_t>(s);
      const int64_t k = l.position[c];
      const uint16_t* t = w.centroids + l.centroid_offset(k);
      for (int v = 0; v < (1 << l.bits_at(k)); ++v) {
        const float q = sg > 0.0f ? std::nearbyint(fp16_to_fp32(t[v]) / sg) : 0.0f;
        const int ti = static_cast<int>(std::clamp(q, -127.0f, 127.0f));
        p.tables.data()[p.table_byte(s, v)] = static_cast<uint8_t>(ti + 128);
      }
    }
  }

  // The 2-bit class's table values, 4 per slot, for the pair tables.
  p.pair_t = AlignedBytes(p.pair_slots() * 4, Placement::kWeights);
  for (int64_t k = 0; k < p.pair_slots(); ++k)
    for (int v = 0; v < 4; ++v) {
      const int64_t s = p.slot_start[1] + k;
      p.pair_t.data()[4 * k + v] = static_cast<uint8_t>(static_cast<int8_t>(p.slot_column[s] < 0 ? 0 : p.table_value(s, v)));
    }

  // Index words: per half stripe, chunk, 16-row block, qword l = rows 2l, 2l + 1.
  // Per stripe the 64 rows' codes are unpacked slot by slot from the stream into a
  // [64][slots] scratch, then packed into the words (stripes in parallel: this runs
  // once per weight, ~1 ns per weight).
  p.data = AlignedBytes(p.halves * chunks * 128, Placement::kWeights);
  std::memset(p.data.data(), 0, p.data.size());
  const auto* stream = static_cast<const uint8_t*>(w.data);
  std::vector<int64_t> slot_slice(slots, -1);
  std::vector<int> slot_bits(slots, 0);
  for (int64_t s = 0; s < slots; ++s)
    if (p.slot_column[s] >= 0) {
      const int64_t k = l.position[p.slot_column[s]];
      slot_slice[s] = l.slice_offset(k);
      slot_bits[s] = l.bits_at(k);
    }
#pragma omp parallel if (l.stripes * slots > 4096)
  {
    std::vector<uint8_t> codes(kCodebookStripeRows * slots);  // [slot][row in stripe]
#pragma omp for schedule(static)
    for (int64_t st = 0; st < l.stripes; ++st) {
      const uint8_t* base = stream + st * l.stripe_bytes;
      for (int64_t s = 0; s < slots; ++s) {
        if (slot_slice[s] < 0) {
          std::memset(codes.data() + s * kCodebookStripeRows, 0, kCodebookStripeRows);
          continue;
        }
        // Row j's index: bits [j b, j b + b) of the slice (the stream is padded).
        const uint8_t* slice = base + slot_slice[s];
        const int b = slot_bits[s];
        const unsigned mask = (1u << b) - 1;
        for (int64_t j = 0; j < kCodebookStripeRows; ++j) {
          const int64_t bit = j * b;
          const unsigned v = slice[bit / 8] | (static_cast<unsigned>(slice[bit / 8 + 1]) << 8);
          codes[s * kCodebookStripeRows + j] = static_cast<uint8_t>((v >> (bit % 8)) & mask);
        }
      }
      for (int64_t hh = 0; hh < 2 && 2 * st + hh < p.halves; ++hh) {
        const int64_t h = 2 * st + hh;
        for (int cls = 0; cls < kCodebookInt8Classes; ++cls) {
          const int fw = codebook_int8_field_bits(cls), cs = codebook_int8_chunk_slots(cls);
          for (int64_t ch = p.chunk_start[cls]; ch < p.chunk_start[cls + 1]; ++ch) {
            const int64_t first = p.slot_start[cls] + (ch - p.chunk_start[cls]) * cs;
            for (int q = 0; q < 2; ++q) {
              auto* words = reinterpret_cast<uint64_t*>(p.data.data() + ((h * chunks + ch) * 2 + q) * 64);
              for (int qw = 0; qw < 8; ++qw) {
                uint64_t word = 0;
                for (int e = 0; e < 2; ++e) {
                  // Rows past the matrix decode as 0 from the padded stream; keep them 0.
                  const int64_t j = 32 * hh + 16 * q + 2 * qw + e;
                  if (st * kCodebookStripeRows + j >= w.rows) continue;
                  const uint8_t* col = codes.data() + first * kCodebookStripeRows + j;
                  for (int u = 0; u < cs / 4; ++u)
                    for (int c = 0; c < 4; ++c)
                      word |= uint64_t{col[(4 * u + c) * kCodebookStripeRows]} << (8 * (4 * e + c) + fw * u);
                }
                words[qw] = word;
              }
            }
          }
        }
      }
    }
  }

  if (w.n_outliers > 0) {
    QUAROT_CHECK(w.outlier_row_ptr != nullptr && w.outlier_cols != nullptr && w.outlier_values != nullptr,
                 "codebook_int8: weight lacks its outlier arrays");
    p.outlier_delta.resize(w.n_outliers);
    for (int64_t r = 0; r < w.rows; ++r)
      for (uint32_t t = w.outlier_row_ptr[r]; t < w.outlier_row_ptr[r + 1]; ++t) {
        const int64_t c = w.outlier_cols[t];
        const int64_t s = slot_of[c];
        const int v = l.index_at(stream, r, c);
        const int ti = p.table_value(s, v);
        p.outlier_delta[t] = fp16_to_fp32(w.outlier_values[t]) - p.group_scale[s / group] * static_cast<float>(ti);
      }
  }
  return p;
}

void codebook_int8_prefetch_inputs(const CodebookInt8Weight* const* weights, int count) {
  const auto prefetch = [](const void* p, int64_t bytes, bool write) { prefetch_range(p, bytes, write); };
  // The gathered codes, sums and scales of one activation row (decode). On the 2-vCPU Zen
  // 4 the serial gather took 0.46-1.07 us per call with these lines owned ahead, 0.62-1.48
  // without (docs/results/2026-12-05-epyc-claq-gather-ownership/).
  CallBuffers& buf = call_buffers();
  int64_t bytes = 0, terms = 0;
  for (int j = 0; j < count; ++j) {
    bytes += weights[j]->slots;
    terms += weights[j]->groups();
  }
  prefetch(buf.xs.data(), std::min(bytes, buf.xs.size()), true);
  prefetch(buf.corr.data(), std::min<int64_t>(terms, static_cast<int64_t>(buf.corr.size())) * 4, true);
  prefetch(buf.scale.data(), std::min<int64_t>(terms, static_cast<int64_t>(buf.scale.size())) * 4, true);
  for (int j = 0; j < count; ++j) {
    const CodebookInt8Weight& w = *weights[j];
    // The pair tables' inputs, where the environment asks for them (off: not a byte more).
    if (codebook_int8_takes_pairs(CodebookInt8Lookup::kAuto, pair_setting(), 1, w.source.rows * w.source.cols))
      prefetch(w.pair_t.data(), static_cast<int64_t>(w.pair_t.size()), false);
    if (w.gather_lo.size() > 0) {
      prefetch(w.gather_lo.data(), w.slots, false);
      prefetch(w.gather_block.data(), w.slots, false);
    } else {
      prefetch(w.slot_column.data(), w.slots * static_cast<int64_t>(sizeof(int32_t)), false);
    }
    prefetch(w.group_scale.data(), static_cast<int64_t>(w.group_scale.size() * sizeof(float)), false);
  }
}

void codebook_int8_gemv(const CodebookInt8Product* products, int count, const QuantizedActivations& a,
                        bool reference, CodebookInt8Lookup lookup) {
  QUAROT_CHECK(count >= 0 && count <= kCodebookInt8MaxProducts, "codebook_int8: {} products, at most {} at once",
               count, kCodebookInt8MaxProducts);
  QUAROT_CHECK(products != nullptr || count == 0, "codebook_int8: null product list");
  QUAROT_CHECK(a.bits == 8 && a.symmetric && a.group == a.cols,
               "codebook_int8: activations must be 8-bit symmetric per token (got {} bits, group {} of {})", a.bits,
               a.group, a.cols);
  QUAROT_CHECK(a.rows >= 0, "codebook_int8: {} activation rows", a.rows);
  for (int j = 0; j < count; ++j) {
    const CodebookInt8Weight* w = products[j].w;
    QUAROT_CHECK(w != nullptr && w->source.kind == WeightKind::kCodebook && w->slots > 0,
                 "codebook_int8: weight was not prepared by pack_codebook_int8");
    QUAROT_CHECK(w->source.cols == a.cols, "codebook_int8: weight reads {} inputs, activations have {}",
                 w->source.cols, a.cols);
    QUAROT_CHECK(products[j].y != nullptr, "codebook_int8: null output");
  }
  QUAROT_CHECK(reference || codebook_int8_fast_available(),
               "codebook_int8: this CPU lacks AVX-512 VBMI + VNNI ({})", cpu_features().brand);
  const int64_t n = a.rows;
  if (n == 0 || count == 0) return;
  const Int8Kernels& k =
      reference ? codebook_int8_detail::int8_kernels_scalar() : codebook_int8_detail::int8_kernels_avx512vbmi();

  std::optional<OpPhaseTimer> phase(std::in_place, OpPhase::kCodebookGather);
  // Per product: the signed codes in slot order, each group's -128 sum and combined scale.
  const CodebookInt8PairSetting setting = pair_setting();
  // (A weight without pair_t, e.g. assembled by hand, keeps the column tables.)
  const auto pair_bytes = [](const CodebookInt8Weight& w) {
    return static_cast<int64_t>(w.pair_t.size()) >= 4 * w.pair_slots() ? w.pair_slots() / 16 * 128 : int64_t{0};
  };
  int64_t bytes = 0, terms = 0;
  for (int j = 0; j < count; ++j) {
    bytes += n * products[j].w->slots;
    terms += n * products[j].w->groups();
  }
  CallBuffers& buf = call_buffers();
  if (buf.xs.size() < bytes) buf.xs = AlignedBytes(bytes);
  if (static_cast<int64_t>(buf.corr.size()) < terms) buf.corr.resize(terms);
  if (static_cast<int64_t>(buf.scale.size()) < terms) buf.scale.resize(terms);
  auto* xs = reinterpret_cast<int8_t*>(buf.xs.data());
  int32_t* corr = buf.corr.data();
  float* scale = buf.scale.data();
  int64_t pair_table_at = 0, pair_scale_at = 0;
  // The outliers' activations, dequantized once per call (act_quant.h's contract value).
  bool outliers = false;
  for (int j = 0; j < count; ++j) outliers = outliers || products[j].w->source.n_outliers > 0;
  thread_local std::vector<float> xd;
  if (outliers) {
    if (static_cast<int64_t>(xd.size()) < n * a.cols) xd.resize(n * a.cols);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < a.cols; ++c)
        xd[i * a.cols + c] = a.scales[i] * static_cast<float>(static_cast<int32_t>(a.row(i)[c]) - a.offsets[i]);
  }
  const float* xdp = xd.data();  // thread_local: worker threads must not name it
  // The vector gather reads each row's codes in whole 128-byte blocks: quantize_activations'
  // rows have room (stride round_up(cols, 64) + 64); anything narrower takes the loop.
  const int64_t block_bytes = (a.cols + 127) / 128 * 128;
  const bool rows_readable = a.stride >= block_bytes &&
                             static_cast<int64_t>(a.codes.size()) >= (n - 1) * a.stride + block_bytes;
  const auto vector_gather = [&](const CodebookInt8Weight& w) {
    return !reference && rows_readable && w.gather_lo.size() > 0;
  };
  // The slot maps and group scales are cold (one per product, read once per call): ask
  // for all their lines up front, not one miss at a time (a caller may have already).
  const CodebookInt8Weight* ws[kCodebookInt8MaxProducts];
  for (int j = 0; j < count; ++j) ws[j] = products[j].w;
  codebook_int8_prefetch_inputs(ws, count);
  Job jobs[kCodebookInt8MaxProducts];
  int64_t halves = 0, weights = 0;
  for (int j = 0; j < count; ++j) {
    const CodebookInt8Weight& w = *products[j].w;
    const int64_t slots = w.slots, groups = w.groups();
    const float* group_scale = w.group_scale.data();
    const bool maps = vector_gather(w);
    for (int64_t i = 0; i < n; ++i) {
      GatherArgs g;
      g.codes = a.row(i);
      g.offset = a.offsets[i];
      g.slot_column = w.slot_column.data();
      g.lo = maps ? w.gather_lo.data() : nullptr;
      g.block = maps ? w.gather_block.data() : nullptr;
      g.slots = slots;
      g.cols = a.cols;
      g.group = w.group;
      g.xs = xs + i * slots;
      g.corr = corr + i * groups;
      k.gather(g);
      const float x_scale = a.scales[i];
      for (int64_t gi = 0; gi < groups; ++gi) scale[i * groups + gi] = group_scale[gi] * x_scale;
    }
    Job& job = jobs[j];
    job.p = &products[j];
    job.v = view_of(w);
    job.a = Int8Act{xs, slots, corr, scale, groups, n};
    if (pair_bytes(w) > 0 && codebook_int8_takes_pairs(lookup, setting, n, w.source.rows * w.source.cols)) {
      job.pair_stride = pair_bytes(w);
      job.pair_groups = 2 * w.pair_slots() / w.group;  // a scale per group and table half
      job.pair_table_at = pair_table_at;
      job.pair_scale_at = pair_scale_at;
      pair_table_at += n * job.pair_stride;
      pair_scale_at += n * job.pair_groups;
    }
    job.halves = w.halves;
    xs += n * slots;
    corr += n * groups;
    scale += n * groups;
    halves += w.halves;
    weights += w.source.rows * w.source.cols * n;
  }
  phase.emplace(OpPhase::kProductKernels);
  const uint64_t call = pair_table_at > 0 ? pair_calls.fetch_add(1, std::memory_order_relaxed) + 1 : 0;
  // This thread's pair tables of job j, made on first use in this call.
  const auto tables_of = [&](int j, const int8_t** t, const float** sc) {
    PairScratch& ps = pair_scratch();
    if (ps.call != call) {
      ps.call = call;
      ps.built = 0;
      if (ps.tables.size() < pair_table_at) ps.tables = AlignedBytes(pair_table_at);
      if (static_cast<int64_t>(ps.scales.size()) < pair_scale_at) ps.scales.resize(pair_scale_at);
    }
    const Job& job = jobs[j];
    auto* tables = reinterpret_cast<int8_t*>(ps.tables.data()) + job.pair_table_at;
    float* scales = ps.scales.data() + job.pair_scale_at;
    if (!(ps.built & (1u << j))) {
      const CodebookInt8Weight& w = *job.p->w;
      for (int64_t i = 0; i < n; ++i) {
        codebook_int8_detail::PairTableArgs pt;
        pt.xs = job.a.xs + i * job.a.x_stride;
        pt.pair_t = reinterpret_cast<const int8_t*>(w.pair_t.data());
        pt.first_slot = w.slot_start[1];
        pt.chunks = w.pair_slots() / 16;
        pt.group = w.group;
        pt.scale = job.a.scale + i * job.a.groups;
        pt.out = tables + i * job.pair_stride;
        pt.pair_scale = scales + i * job.pair_groups;
        k.pair_tables(pt);
      }
      ps.built |= 1u << j;
    }
    *t = tables;
    *sc = scales;
  };
  const auto run = [&](int64_t h) {
    for (int j = 0; j < count; ++j) {
      if (h < jobs[j].halves) {
        const int8_t* t = nullptr;
        const float* sc = nullptr;
        if (jobs[j].pair_stride > 0) tables_of(j, &t, &sc);
        return run_half(jobs[j], k, a, xdp, h, t, sc);
      }
      h -= jobs[j].halves;
    }
  };
  // Small products on the calling thread (decode_serial_weights(), common/wait_policy.h).
  if (weights <= decode_serial_weights()) {
    for (int64_t h = 0; h < halves; ++h) run(h);
    return;
  }
  // Each thread's half stripes in one run, the stragglers' last ones taken by whoever is
  // done (common/chunk_queue.h); every half stripe is computed alone.
  run_chunks(halves, run);
}

}  // namespace quarot
