#pragma once
// Integer lookup-table GEMV for a CLAQ codebook weight (WeightKind::kCodebook, widths
// 1..4) with 8-bit symmetric per-token activations (act_quant.h codes):
//   y[i, r] = sum_g fma order of  float(D[i, g, r]) * (s_g * s_x[i])  + outliers (+ bias) (+ residual)
// Built for decode; any number of activation rows runs, kCodebookInt8MaxRows at a time
// per half stripe (prefill re-reads each half stripe's indices from L1 per 4 rows).
//
// Why: the FP32 lookup GEMV (codebook_gemm.h) spends a shift, a vpermps and an FMA per
// 16 weights and is compute-bound. Here each column's 2^b centroids become int8 at pack
// time, four columns' tables share one 64-byte table, and one AVX-512 VBMI vpermb looks
// up 64 weights (16 rows x 4 columns) in exactly the byte layout vpdpbusd multiplies
// with 4 activation codes: per 64 weights one vpternlogd builds the index bytes from
// the repacked indices (a 16-bit shift first for the quads stored in a byte's top
// bits: one in 4 quads at 2 bits), then vpermb and vpdpbusd (no FP work except per
// scale group). Zen 4 issues one 512-bit shift, permute or vpdpbusd per cycle, so
// these, not the ternary logic, set the rate.
//
// Pack (pack_codebook_int8):
//   * Columns are split by field width fw: 1-bit, 2-bit, and 3- or 4-bit columns (3-bit
//     indices are stored in 4-bit fields: 33% more index bytes for them, a register
//     layout with no fields straddling 64-bit words). Within a class the columns are
//     ordered by max|centroid| (so a scale group holds columns of similar range) and
//     padded with empty slots to whole scale groups and 64-byte loads.
//   * Scale group g = `group` consecutive slots of one class: s_g = max |centroid| over
//     its columns / 127, t_c[v] = clamp(round_half_even(c[v] / s_g), -127, 127), so
//     |c[v] - s_g t_c[v]| <= s_g / 2 (+ FP32 rounding of the division) = the group's
//     max|centroid| / 254.
//   * Index words (data): per half stripe, chunk (one 64-byte load per 16 rows) and
//     16-row block, qword l holds rows 2l, 2l + 1; byte 4 e + c of the qword (row e,
//     column c of a quad) holds that row's field of column c for every quad u of the
//     chunk, at bits fw u of the byte. vpermb reads an index's low 6 bits, so quad u's
//     index byte is (word >> shift) & field mask | c << cpos (codebook_int8_quad_field):
//     the field where it lies when it fits in bits 0..5, else shifted down by 4, and the
//     column c in two bits the field leaves free.
//   * Quad tables: 64 bytes per quad (4 slots); slot c's entry v at byte
//     v << pos | c << cpos of its quad's table (other bytes unused).
//   * Tables stored as unsigned t + 128 (vpdpbusd's unsigned operand); the signed
//     activation q = code - 128 is the other operand; the + 128 adds 128 * sum_g q,
//     the same for every row, so D starts at -128 * sum_g q (one broadcast per group).
//   * Outliers keep the FP correction (value - s_g t[idx]) * s_x q, added after the sums:
//     the weight used at an outlier is its stored value.
//
// Pair tables (decode): with one activation row, a lookup can take two 2-bit columns at
// once. Per call and row, every pair of 2-bit slots (c, c + 4) and (c + 8, c + 12) of a
// 16-slot chunk (the two nibbles of the index byte above) gets a 16-entry table of
//   P[a + 4 b] = q_1 t_1[a] + q_2 t_2[b]      (exact int, |P| <= 2 * 127 * 127)
// rounded to int8 with one multiplier per scale group g and table half h (the low
// nibbles' pairs, the high nibbles' pairs: two accumulators in the kernel anyway):
//   M = max |P| over those pairs, m = min(32767, floor(127 * 32768 / M)),
//   P8 = (P m + 16384) >> 15 (vpmulhrsw; |P8| <= 127; exact when M <= 127),
//   and that half's sum is scaled by (s_g * s_x) * RN(32768 / m) (0 when M = 0).
// One vpermb then looks up 128 weights (16 rows x 4 pairs) and one vpdpbusd with ones
// sums them: half the shifts, permutes and vpdpbusd per weight of the column tables,
// for one more rounding: |P8 * 32768 / m - P| <= 16384 / m per pair, about M / 254.
// The 1-bit and 3-4-bit classes keep the column tables.
// Opt-in (`CodebookInt8Lookup`; by default QUAROT_CLAQ_PAIR_TABLES: unset or 0 column
// tables everywhere, 1 pairs for one-row calls (decode), all pairs for every call, rows
// one at a time: how their perplexity cost was measured). Measured on the 2-vCPU Zen 4
// (docs/claq.md): the GEMV 1.23-1.30x at LLaMA-7B shapes (2-bit, 2 threads, cold), the
// default model's decode 1.02-1.05x (pairs on its gate/up and down only), and +0.53%
// WikiText-2 perplexity for CLAQ 2.12 W2A8KV4; so off by default.
//
// Exactness: D[i, g, r] = sum over the group's slots of t * q, exact in int32 on every
// path. The FP32 result of one activation row and output row is
//   f = 0; for g in slot order: f = fma(float(D), s_g * s_x, f); then f += delta * x' per
//   outlier in CSR order, f += bias, f += residual
// on every instruction set: the AVX-512 kernel equals the scalar reference bit for bit.
// Against the simulated arithmetic (FP centroids, fake-quantized x) the difference is
// the table rounding above: |dy| <= sum_c |x'_c| s_g(c) / 2 per output (plus FP32
// summation order); with pair tables, plus s_g s_x 16384 / m per pair. In pair mode
// each group's two halves' P8 sums are exact in int32 and enter f low half first, the
// same on every path.
// Threads: OpenMP over the half stripes (32 rows) of all products, each thread's
// contiguous run first (one sequential index stream), stragglers' tails taken by the
// others (common/chunk_queue.h); small calls run on the calling thread; each
// output is one thread's sum in a fixed order, so results do not depend on the threads.
// Errors (quarot::Error): a weight with widths above 4 or that is not kCodebook (pack),
// activations that are not 8-bit symmetric per-token or do not match the weight,
// a fast path requested where the CPU lacks AVX-512 VBMI + VNNI.
#include <array>
#include <cstdint>
#include <vector>

#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/codebook_int8_layout.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/weight_encoding.h"

namespace quarot {

// Activation rows one kernel pass takes (its register tiles).
inline constexpr int64_t kCodebookInt8MaxRows = 4;
// Slots per scale group. Measured (docs/claq.md, 2026-12-03, WikiText-2, 8 windows, vs
// FP32 tables 159.036 / 37.633): CLAQ 2.12-bit W2A8KV4 160.513 (G 16), 159.035 (32);
// 3-bit W3A8KV4 37.848 (16), 38.112 (32), 38.072 (64). The tables' relative RMS error is
// ~0.4% at every G (0.38% with a scale per column), so these +-1% moves are the
// 8-window perplexity's sensitivity, not a trend; 16 has the tightest bound. Speed
// differences between 16, 32 and 64 were within this machine's noise (16 costs ~8% more
// instructions: one conversion and one FMA per 16 slots instead of 32).
inline constexpr int kCodebookInt8Group = 16;

// Widest input the byte maps of the vector gather address (block numbers 0..254).
inline constexpr int64_t kCodebookInt8GatherMaxCols = 255 * 128;

struct CodebookInt8Weight {
  WeightEncoding source;  // view: outliers and the reference's indices
  CodebookLayout layout;
  int group = kCodebookInt8Group;
  std::array<int64_t, kCodebookInt8Classes + 1> slot_start{};   // class c: slots [slot_start[c], slot_start[c + 1])
  std::array<int64_t, kCodebookInt8Classes + 1> chunk_start{};  // its 64-byte loads per 16 rows
  int64_t slots = 0;
  int64_t halves = 0;                 // half stripes of 32 rows: ceil(rows / 32)
  std::vector<int32_t> slot_column;   // [slots] column, -1 = empty slot
  // The same map as bytes for the vector gather (vpermi2b over 128-byte blocks of the
  // codes), [round_up(slots, 64)]: column % 128 and column / 128 (0xFF: empty or past
  // the slots); empty when cols > kCodebookInt8GatherMaxCols (the loop gathers then).
  AlignedBytes gather_lo, gather_block;
  std::vector<float> group_scale;     // [slots / group] s_g
  AlignedBytes tables;                // [slots / 4][64]: t + 128, at table_byte(slot, v)
  // Indices: half stripe h, chunk k, 16-row block q at data[((h * chunks + k) * 2 + q) * 64];
  // qword l holds rows 2l, 2l + 1: field (quad u, row e, column-in-quad c) at bit
  // 8 (4 e + c) + fw u (see "Index words" above).
  AlignedBytes data;
  std::vector<float> outlier_delta;   // [n_outliers] value - s_g t[idx]
  // The 2-bit class's table values for the pair tables: slot slot_start[1] + k's t[v]
  // at pair_t[4 k + v] (signed; empty slots 0).
  AlignedBytes pair_t;

  int64_t chunks() const { return chunk_start[kCodebookInt8Classes]; }
  int64_t pair_slots() const { return slot_start[2] - slot_start[1]; }  // the 2-bit class's slots
  // Byte of `tables` holding slot s's entry v, and the signed table value there.
  int64_t table_byte(int64_t s, int v) const;
  int table_value(int64_t s, int v) const { return static_cast<int>(tables.data()[table_byte(s, v)]) - 128; }
  int64_t groups() const { return group == 0 ? 0 : slots / group; }
  int64_t bytes() const {
    return static_cast<int64_t>(tables.size() + data.size() + gather_lo.size() + gather_block.size() + pair_t.size()) +
           4 * groups();
  }
};

// True when w is a codebook weight this path takes (every column 1..4 bits).
bool codebook_int8_supports(const WeightEncoding& w);
// True when this CPU runs the fast kernel (AVX-512 VBMI + VNNI, OS support).
bool codebook_int8_fast_available();

// `group`: 16, 32 or 64 (benchmarks); throws on weights codebook_int8_supports rejects.
CodebookInt8Weight pack_codebook_int8(const WeightEncoding& w, int group = kCodebookInt8Group);

struct CodebookInt8Product {
  const CodebookInt8Weight* w = nullptr;
  const float* bias = nullptr;      // [rows] or null
  const float* residual = nullptr;  // [n, rows] or null, may alias y
  float* y = nullptr;               // [n, rows]
};
inline constexpr int kCodebookInt8MaxProducts = 8;

// Asks for what a codebook_int8_gemv call over these weights reads before its kernels
// (the gather's byte maps or slot map, the group scales) and for ownership of what it
// writes there (the calling thread's buffers of gathered codes, sums and scales, which
// the other threads read during the previous call), so that a caller can start those
// misses before the work that precedes the call (the input's quantization) instead of
// waiting on them store by store inside it. A hint: changes no result.
void codebook_int8_prefetch_inputs(const CodebookInt8Weight* const* weights, int count);

// Which tables the 2-bit columns are looked up in ("Pair tables" above). kAuto: as
// QUAROT_CLAQ_PAIR_TABLES says (unset: columns), and then only for products of at least
// kCodebookInt8PairMinWeights weights; kPairs: every product.
enum class CodebookInt8Lookup { kAuto, kColumns, kPairs };
// Each thread builds every table of a call's product before its first half stripe
// (~0.3 us per 576 columns on Zen 4): measured on SmolLM2 decode, the 1536 x 576 gate /
// up and 576 x 1536 down products gained (gate/up 521 -> 482 us per token, down 425 ->
// 393), the 576 x 576 q and o and 192 x 576 k / v lost (q/k/v 282 -> 304, o 172 -> 177).
inline constexpr int64_t kCodebookInt8PairMinWeights = 512 * 1024;

// QUAROT_CLAQ_PAIR_TABLES: unset or "0" never, "1" one-row calls, "all" every call
// (quarot::Error naming the variable for anything else).
enum class CodebookInt8PairSetting { kNever, kOneRow, kAlways };
CodebookInt8PairSetting parse_codebook_int8_pair_setting(const char* value);
// Whether a product of `weights` weights in a call of n activation rows takes pair tables.
bool codebook_int8_takes_pairs(CodebookInt8Lookup lookup, CodebookInt8PairSetting setting, int64_t n,
                               int64_t weights);

// The products of one quantized input a (8-bit, symmetric, per token; every
// w->source.cols == a.cols), in one parallel region.
// `reference`: the scalar reference (any CPU); otherwise the AVX-512 VBMI kernel.
void codebook_int8_gemv(const CodebookInt8Product* products, int count, const QuantizedActivations& a,
                        bool reference = false, CodebookInt8Lookup lookup = CodebookInt8Lookup::kAuto);

}  // namespace quarot
