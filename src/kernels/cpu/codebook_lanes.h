#pragma once
// The index stream of a codebook weight (kernels/weight_encoding.h, kind kCodebook)
// repacked once at load for the decode GEMV (kernels/cpu/codebook_gemm.h).
//
// Why: the file keeps each column's 64 stripe rows as one bit stream, so the GEMV spent
// a broadcast and a per-lane variable shift on every 8 weights to bring row j's index
// to lane j. Here one 32-bit word per row holds the indices of F = 32 / b consecutive
// same-width positions (a "group"): 8 (AVX2) or 16 (AVX-512) rows of a group are one
// aligned vector, and field f of every lane sits one shift by the immediate b f away
// from the low bits (a load at byte offset (b f) / 8 does the multiple-of-8 part). The
// table permute (vpermps) reads only the low 3 (4 on AVX-512) bits, so the neighbouring
// fields above need no mask as long as tables of fewer entries are repeated.
//
// Layout (widths 1..4, everything CLAQ produces; positions of widths 5..8 stay in the
// stream and keep the slower path):
//   groups of width b:  [group_start[b], group_start[b + 1]), F(b) = 32 / b fields each
//   word(s, g, j):      words[(s * groups_per_stripe + g) * 64 + j], stripe s, row j of
//                       it (rows past the matrix: index 0), field f at bits [b f, b f + b)
//   slots:              slot_start[b] + (g - group_start[b]) * F(b) + f is field f of
//                       group g; slot_position[slot] = its layout position, or -1 for the
//                       unused fields of a width's last group (index 0, table all zero)
//   tables:             FP32, tables[table_start[b] + (slot - slot_start[b]) * stride(b)],
//                       stride 8 for b <= 3 (entry m = centroid m mod 2^b), 16 for b = 4
// words ends with kCodebookLanePadWords zero words, so a 64-byte load at a byte offset
// of up to 3 past any block of 16 rows stays inside.
// Cost: 3-bit groups use 30 of 32 bits (6.7% more index bytes than the stream); 1-, 2-
// and 4-bit groups none, apart from each width's last partial group.
#include <array>
#include <cstdint>
#include <vector>

#include "kernels/cpu/aligned_buffer.h"
#include "kernels/weight_encoding.h"

namespace quarot {

inline constexpr int kCodebookLaneMaxBits = 4;
inline constexpr int64_t kCodebookLanePadWords = 16;

constexpr int codebook_lane_fields(int b) { return 32 / b; }
constexpr int codebook_lane_table_stride(int b) { return b == 4 ? 16 : 8; }

struct CodebookLanes {
  int64_t groups_per_stripe = 0;
  std::array<int64_t, kCodebookLaneMaxBits + 2> group_start{};  // index b = 1..5
  std::array<int64_t, kCodebookLaneMaxBits + 2> slot_start{};
  std::array<int64_t, kCodebookLaneMaxBits + 2> table_start{};
  int64_t slots = 0;                    // slot_start[5]
  std::vector<int32_t> slot_position;   // [slots]
  AlignedArray<uint32_t> words;         // [stripes * groups_per_stripe * 64 + pad]
  AlignedFloats tables;                 // [table_start[5]]

  int64_t bytes() const { return words.size() * 4 + tables.size() * 4; }
};

// Repacks w (kind kCodebook, validated; `layout` derived from it).
CodebookLanes make_codebook_lanes(const WeightEncoding& w, const CodebookLayout& layout);

}  // namespace quarot
