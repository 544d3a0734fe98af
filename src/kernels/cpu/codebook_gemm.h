#pragma once
// FP32-activation product with a CLAQ codebook weight (WeightKind::kCodebook) read in
// its stored form:  y[n, rows] = x[n, cols] * W^T (+ bias[rows]).
//
// Decode (n <= kCodebookGemvMaxRows) is a lookup-table GEMV: the weight streams once,
// stripe by stripe (64 rows, columns grouped by width), each group of 8 (AVX2) or 16
// (AVX-512) indices becomes FP32 weights by a register permute of the column's
// centroid table (vpermps; two and a blend for 16 entries on AVX2), multiplied into
// per-row accumulators. Outliers are a sparse correction (value - centroid) * x
// added afterwards, so the dense loop has no branches.
// Prefill (larger n) decodes panels of rows into FP32 in a thread-local tile (the
// same lookups) and multiplies them with the FP32 gemm's register tiles.
//
// Exactness contract: every weight used equals WeightEncoding::dequantize_rows'
// value (FP16 -> FP32 is exact); outliers enter as centroid + (value - centroid) in
// the GEMV, so results differ from an FP32 gemm on dequantize() only by FP32
// summation order and that one extra rounding per outlier.
// Threads: OpenMP, static schedule over stripes / row blocks; every output element is
// one thread's sum in a fixed order, so results do not depend on the thread count.
// isa: kScalar is the reference; kAvx2 needs AVX2+FMA+F16C; kAvx512 and above use the
// AVX-512 kernels. Throws quarot::Error on a weight that is not kCodebook, n < 0,
// null x / y (n > 0) or an instruction set this CPU cannot run. The encoding must have
// passed validate().
#include <cstdint>
#include <vector>

#include "kernels/cpu/cpu_features.h"
#include "kernels/weight_encoding.h"

namespace quarot {

// Activation rows up to which codebook_gemm runs the lookup-table GEMV.
inline constexpr int64_t kCodebookGemvMaxRows = 8;

// A codebook weight prepared for the kernels: the layout derived once, and each
// outlier's correction (value - centroid it replaces) in FP32. Views `source`.
struct CodebookGemmWeight {
  WeightEncoding source;
  CodebookLayout layout;
  std::vector<float> outlier_delta;  // [n_outliers]
};

CodebookGemmWeight pack_codebook_weight(const WeightEncoding& w);

void codebook_gemm(const CodebookGemmWeight& w, const float* x, int64_t n, const float* bias, float* y, Isa isa);

}  // namespace quarot
