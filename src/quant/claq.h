#pragma once
// CLAQ (Wang et al. 2024, "CLAQ: Pushing the Limits of Low-Bit Post-Training
// Quantization for LLMs"): GPTQ's column-by-column error feedback (quant/gptq.h)
// with three changes to what each column is rounded to.
//  1. Column codebooks: input column c (all output rows) is quantized to its own
//     2^b_c centroids, found by 1-D K-means (quant/kmeans_1d.h) on the column as the
//     earlier columns' errors have updated it, instead of a uniform grid.
//  2. Adaptive precision: columns are ranked by their outlier count, the number of
//     weights with |w| >= outlier_threshold * mean|W| over the whole matrix (the
//     paper's outlier ratio, threshold 13); the top-ranked columns get high_bits and
//     the rest low_bits, the split chosen so the average index width meets the
//     budget (2.12 -> 6% of the columns at 4 bits, the rest at 2).
//  3. Outlier reservation: a fraction of the weights stays exact (FP16, stored
//     sparse with positions). The quota is split across columns as in the paper's
//     dynamic scheme: the top `outlier_top_share` of columns by outlier count get
//     `outlier_top_weight` times the share of the others; within a column the
//     weights farthest from the column mean (as updated) are kept, and the K-means
//     runs on the rest.
// Codebook values and kept weights are rounded to FP16 (what the file stores)
// before the error that is fed back is formed, so the feedback corrects the stored
// values. A per-column codebook gives every weight of a column the same Hessian
// diagonal, so weighting the K-means by it would change nothing; it is not done.
// Deterministic: the same input and seed give the same codes.
#include <cstdint>
#include <string>
#include <vector>

#include "common/tensor.h"
#include "quant/codebook_matrix.h"
#include "quant/scheme.h"

namespace quarot {

struct ClaqOptions {
  double bits = 3.0;               // average index bits per weight, 2..8 (fractional allowed)
  double outlier_fraction = 0.0;   // of all weights, kept in FP16; 0..0.1
  double outlier_threshold = 13.0; // multiple of mean|W| that makes a weight count as an outlier
  double outlier_top_share = 0.1;  // columns that get the larger share of the kept weights
  double outlier_top_weight = 3.5; // their per-column quota relative to the other columns' (paper: 1.4% vs 0.4%)
  int kmeans_iter = 100;
  int kmeans_restarts = 0;         // k-means++ starts beside the quantile start
  uint64_t seed = 0;
  GptqOptions gptq;                // block, percdamp, act_order (groups do not apply)
};

// The two widths a budget splits into: the integer part and the next width up,
// except below 4 bits, where the upper width is 4 as in the paper (2.x = 2 and 4,
// 3.x = 3 and 4). An integral budget uses one width.
struct ClaqWidths {
  int low = 3, high = 3;
};
ClaqWidths claq_widths(double bits);

// Column indices, most outlier-laden first: by decreasing count of weights with
// |w| >= threshold * mean|w| (the mean over all of w), ties by decreasing max |w| of
// the column (so a rotated matrix, which has no such weights, is still ranked by
// how heavy its columns' tails are), then by index.
std::vector<int64_t> claq_column_ranking(const Tensor& w, double threshold);

// The index width of every column: the first round((bits - low) / (high - low) * cols)
// columns of the ranking get `high`, the rest `low`.
std::vector<uint8_t> claq_column_bits(const std::vector<int64_t>& ranking, double bits);

// How many weights each column keeps exact: round(fraction * rows * cols) in all,
// the first round(outlier_top_share * cols) columns of the ranking weighted
// outlier_top_weight, the others 1; split by largest remainders, at most `rows` per column.
std::vector<int64_t> claq_outlier_quota(const std::vector<int64_t>& ranking, int64_t rows,
                                        const ClaqOptions& options);

// Quantizes w [out, in] against the Hessian h [in, in] of its inputs (row-major,
// as HessianAccumulator::finalize gives). Columns with h_ii = 0 are zeroed. Throws
// Error naming `name` on bad sizes or options, non-finite input, or a Hessian that
// damping does not make positive definite.
CodebookMatrix quantize_claq(const Tensor& w, const std::vector<double>& h, const ClaqOptions& options,
                             const std::string& name = "weight");

// Checks the options alone (budget, fraction, K-means and GPTQ settings).
void check_claq_options(const ClaqOptions& options, const std::string& name);

}  // namespace quarot
