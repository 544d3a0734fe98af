#pragma once
// Internal: the two products of prefill attention over the int4/int8 KV cache
// (kv_attention.cpp's prefill path) on one tile of kPrefillKeys keys, register-blocked
// over several query vectors at once. The decode tile kernels (kv_attention_tiles.h)
// take one query at a time against key rows, which reloads every key row per query;
// here a block of queries shares each load:
//   scores: the tile's keys are stored transposed (kt[d][j]), so a 16-key strip of one
//           dimension is two vector loads used by six queries;
//   weighted sum: a 16-lane strip of one value row is two loads used by six queries.
// ISA kernels live in files compiled with that ISA's flags (kv_prefill_tiles_avx2.cpp);
// no inline code here (ODR).
#include <cstdint>

#include "kernels/cpu/cpu_features.h"

namespace quarot::kv_detail {

// Keys per prefill tile (the width of a transposed key tile).
inline constexpr int64_t kPrefillKeys = 64;

struct PrefillKernels {
  // s[i * ld + j] = scale * sum_d q[i * hd + d] * kt[d * kPrefillKeys + j] for i < nq,
  // j < keys rounded up to a multiple of 16 (at most kPrefillKeys; s is left alone
  // past that). Sums run over d in order, one fma per step (the same value on every path).
  void (*scores)(const float* q, int64_t nq, int64_t hd, const float* kt, int64_t keys, float scale, float* s,
                 int64_t ld);
  // o[i * hd + d] += sum_{j < keys} p[i * ld + j] * v[j * hd + d] for i < nq, d < hd,
  // summed over j in order, one fma per step.
  void (*weighted_sum)(const float* p, int64_t nq, int64_t ld, const float* v, int64_t keys, int64_t hd, float* o);
};

// The reference (any hd).
const PrefillKernels& prefill_kernels_scalar();
// Needs hd % 16 == 0.
const PrefillKernels& prefill_kernels_avx2();
// The fastest kernels `isa` allows for this head dimension.
const PrefillKernels& prefill_kernels_for(Isa isa, int64_t hd);

}  // namespace quarot::kv_detail
