#pragma once
// Internal: per-instruction-set inner kernels behind codebook_gemm(). The SIMD ones
// live in codebook_gemm_avx2.cpp / codebook_gemm_avx512.cpp (compiled with those
// flags) and are reached only through this table; the weight is described by a
// plain struct with no inline code (see weight_only_gemm_kernels.h on the ODR).
#include <cstdint>

namespace quarot::codebook_detail {

// The dense part of a kCodebook weight (kernels/weight_encoding.h, CodebookLayout):
// per-width position ranges and offsets; position k of width b holds an index slice
// of 8 b bytes per stripe and a table of 2^b FP16 centroids.
struct CodebookView {
  int64_t cols = 0;
  int64_t stripe_bytes = 0;
  int64_t width_start[10] = {};     // positions [width_start[b], width_start[b + 1]) have width b
  int64_t slice_start[10] = {};     // byte offset of width_start[b]'s slice in a stripe
  int64_t centroid_start[10] = {};  // centroid index of width_start[b]'s table
  const uint8_t* indices = nullptr;
  const uint16_t* centroids = nullptr;
  // The GEMV's repacked form of widths 1..4 (kernels/cpu/codebook_lanes.h).
  int64_t groups_per_stripe = 0;
  int64_t group_start[6] = {};  // index b = 1..5
  int64_t slot_start[6] = {};
  int64_t table_start[6] = {};
  const uint32_t* words = nullptr;
  const float* tables = nullptr;
  // Activations as the GEMV kernels read them: row i at xs + i * x_stride, slot s of
  // widths 1..4 at xs[s] (0 for unused slots), then position k of widths 5..8 at
  // xs[wide_x + k - width_start[5]].
  int64_t x_stride = 0;
  int64_t wide_x = 0;
  // One activation row only (n == 1), where the kernels offer pair_tables: the 2-bit
  // groups' fields taken two at a time, pair p of group g (fields 2p, 2p + 1, i.e. bits
  // [4p, 4p + 4) of its words) at pair_tables[((g - group_start[2]) * 8 + p) * 16 + a + 4b]
  // = T_2p[a] x_2p + T_2p+1[b] x_2p+1, so one lookup replaces two lookups and two
  // multiply-adds. Null: every width multiplies its own table by x.
  const float* pair_tables = nullptr;
};

struct CodebookKernels {
  // out[i * 64 + j] = sum_k T_k[idx(64 s + j, k)] * x_i[k] for i < n (1..8), j in
  // [32 half, 32 half + 32): the codebook part of one half of a stripe's 64 rows
  // (padding rows included; the other half of out is left alone), x given as xs (see
  // CodebookView), every row's terms summed in position order (widths 1..4 in slot
  // order, which is position order with zero terms between) except where pair tables
  // are set (then pairs of 2-bit terms, in two chains). Outliers are not applied.
  // Half stripes are the unit of decode work: a 576-row matrix is 9 stripes, which two
  // threads split 5:4, but 18 halves split evenly.
  void (*gemv_stripe)(const CodebookView& w, int64_t stripe, int half, const float* xs, int64_t n, float* out);
  // dst[order[k] * ld + j] = T_k[idx(r0 + j, k)] for j < 16, every position k; r0 a
  // multiple of 16 (rows past the end decode their stored index 0).
  void (*decode16)(const CodebookView& w, int64_t r0, const int32_t* order, float* dst, int64_t ld);
  // Fills out[(group_start[3] - group_start[2]) * 128] with CodebookView::pair_tables
  // for the activation row xs (in slot order), which gemv_stripe then reads for n == 1;
  // null where the kernels do not use pair tables (gemv_stripe ignores them).
  void (*pair_tables)(const CodebookView& w, const float* xs, float* out);
};

const CodebookKernels& codebook_kernels_scalar();
const CodebookKernels& codebook_kernels_avx2();
const CodebookKernels& codebook_kernels_avx512();

}  // namespace quarot::codebook_detail
