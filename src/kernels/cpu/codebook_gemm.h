#pragma once
// FP32-activation product with a CLAQ codebook weight (WeightKind::kCodebook) read in
// its stored form:  y[n, rows] = x[n, cols] * W^T (+ bias[rows]).
//
// Decode (n <= kCodebookGemvMaxRows) is a lookup-table GEMV over the indices repacked
// at pack time (kernels/cpu/codebook_lanes.h: one 32-bit word per row holds 32 / b
// same-width columns): per 8 (AVX2) or 16 (AVX-512) weights one vector load or an
// immediate shift, one register permute of the column's FP32 table (AVX2: vpermilps up
// to 4 entries, vpermps for 8, two vpermps and a blend for 16; AVX-512: one vpermps)
// and one FMA into per-row accumulators. Outliers are a sparse correction
// (value - centroid) * x added afterwards, so the dense loop has no branches.
// Prefill (larger n) decodes panels of rows into FP32 in a thread-local tile (the
// same lookups) and multiplies them with the FP32 gemm's register tiles.
//
// Exactness contract: every weight used equals WeightEncoding::dequantize_rows'
// value (FP16 -> FP32 is exact); outliers enter as centroid + (value - centroid) in
// the GEMV, so results differ from an FP32 gemm on dequantize() only by FP32
// summation order and that one extra rounding per outlier.
// Threads: OpenMP, dynamic schedule over half stripes (decode; small products run on
// the calling thread) / static over row blocks (prefill); every output element is one thread's
// sum in a fixed order, so results do not depend on the thread count.
// isa: kScalar is the reference; kAvx2 needs AVX2+FMA+F16C; kAvx512 and above use the
// AVX-512 kernels. Throws quarot::Error on a weight that is not kCodebook, n < 0,
// null x / y (n > 0) or an instruction set this CPU cannot run. The encoding must have
// passed validate().
#include <cstdint>
#include <vector>

#include "kernels/cpu/codebook_lanes.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/weight_encoding.h"

namespace quarot {

// Rows the lookup-table GEMV can take at once (its register tiles).
inline constexpr int64_t kCodebookLutMaxRows = 8;
// Rows up to which the automatic choice runs the GEMV. Measured on a 2-core AVX2 EPYC
// (bench_codebook_gemm, BM_CodebookPath, 2.3-bit weights): the GEMV is 2-3x faster at
// n = 1..2, even at n = 4 (4096x4096: 16.2 vs 17.5 ms; 1536x576: 0.86 vs 1.0 ms) and
// slower from n = 6 (it re-reads each index slice and re-widens its table once per
// group of accumulators, while panels decode once and reuse the FP32 gemm's tiles).
inline constexpr int64_t kCodebookGemvMaxRows = 4;

enum class CodebookPath {
  kAuto,    // the GEMV for n <= kCodebookGemvMaxRows, panels above
  kLut,     // the lookup-table GEMV (n <= kCodebookLutMaxRows)
  kPanels,  // FP32 panels + gemm tiles, any n
};

// A codebook weight prepared for the kernels: the layout derived once, the GEMV's
// repacked indices and FP32 tables (widths 1..4; lanes.bytes() more memory, about the
// index stream's size), and each outlier's correction (value - centroid it replaces) in
// FP32. Views `source` (prefill and widths 5..8 read its stream). Move-only.
struct CodebookGemmWeight {
  WeightEncoding source;
  CodebookLayout layout;
  CodebookLanes lanes;
  std::vector<int32_t> x_source;     // GEMV activation slot -> column, -1 for unused slots
  std::vector<float> outlier_delta;  // [n_outliers]
};

CodebookGemmWeight pack_codebook_weight(const WeightEncoding& w);

// `path` forces one algorithm (benchmarks and tests); kLut with n > kCodebookLutMaxRows throws.
void codebook_gemm(const CodebookGemmWeight& w, const float* x, int64_t n, const float* bias, float* y, Isa isa,
                   CodebookPath path = CodebookPath::kAuto);

// One product of codebook_gemm_many: y = x * w^T + bias + residual, summed as
// (product + bias) + residual; bias and residual may be null, residual [n, w->rows]
// may alias y.
struct CodebookGemmProduct {
  const CodebookGemmWeight* w = nullptr;
  const float* bias = nullptr;
  const float* residual = nullptr;
  float* y = nullptr;
};
inline constexpr int kCodebookMaxProducts = 8;
// The products of one input x [n, cols] (every w has the same cols; at most
// kCodebookMaxProducts), each with the results codebook_gemm would give (plus the
// residual added after the bias). Decode runs them in one parallel region (the half
// stripes of all products in one work list; on the calling thread when their weights
// times n are few), which saves a thread wake-up and join per product (q/k/v,
// gate/up) and the separate pass of a residual add (o, down). No y may alias x or
// another product's residual.
void codebook_gemm_many(const CodebookGemmProduct* products, int count, const float* x, int64_t n, Isa isa,
                        CodebookPath path = CodebookPath::kAuto);

}  // namespace quarot
