#pragma once
// GPTQ (Frantar et al., 2022): quantizes a linear layer's weight one input column
// at a time and spreads each column's rounding error over the columns not yet
// quantized, weighted by the inverse Hessian of the layer's inputs, so the output
// error ||X W^T - X Wq^T|| shrinks. Uses the same grid as RTN (quant/weight_quantizer.h):
// with H = identity GPTQ reduces to RTN exactly.
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "common/tensor.h"
#include "quant/quantized_matrix.h"
#include "quant/scheme.h"
#include "quant/weight_quantizer.h"

namespace quarot {

// Rows whose X^T X is formed in FP32 before being added to the double sum.
inline constexpr int64_t kHessianChunk = 256;

// Accumulates H = 2 X^T X / N over calibration rows: FP32 products of up to
// kHessianChunk rows, summed in double. add() may be called from several threads
// at once (calls are serialized).
class HessianAccumulator {
 public:
  explicit HessianAccumulator(int64_t dim);
  // n rows of length dim, contiguous. Throws Error when dim differs from the accumulator's.
  void add(const float* x, int64_t n, int64_t dim);
  int64_t dim() const { return dim_; }
  int64_t rows_seen() const;
  // [dim, dim] row-major. Throws Error when no row was added.
  std::vector<double> finalize() const;

 private:
  int64_t dim_;
  int64_t rows_ = 0;
  std::vector<double> upper_;  // running sum of x x^T, upper triangle
  mutable std::mutex mutex_;
};

// A weight and its Hessian made ready for column-by-column error feedback (GPTQ,
// CLAQ): both checked (shapes, finite values), and inputs that never fire (h_ii = 0)
// have their weights zeroed and a unit diagonal, so the Hessian stays invertible and
// they carry no error forward. Throws Error naming `name`.
struct FeedbackInputs {
  Tensor w;               // [out, in]
  std::vector<double> h;  // [in, in]
};
FeedbackInputs prepare_feedback_inputs(const Tensor& w, const std::vector<double>& h, const std::string& name);

// Quantizes w [out, in] against the Hessian h [in, in] (row-major). Columns with
// h_ii = 0 (never activated) are zeroed. With spec.group > 0 and dynamic groups,
// each group's scales come from the weights as updated when the group is reached.
// Throws Error (naming `name`) on bad sizes, non-finite input, or when h + damping is
// not positive definite.
QuantizedMatrix quantize_gptq(const Tensor& w, const std::vector<double>& h, const WeightQuantSpec& spec,
                              const GptqOptions& options, const std::string& name = "weight");

}  // namespace quarot
