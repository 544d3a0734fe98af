#pragma once
// Round-to-nearest weight quantization: each output row (or group of input columns)
// gets its grid from its own values (optionally with the MSE clip search), then
// every weight is rounded independently.
#include "common/tensor.h"
#include "quant/quantized_matrix.h"
#include "quant/weight_quantizer.h"

namespace quarot {

// w is [out_features, in_features]. Throws Error when spec.group does not divide
// in_features or bits are out of range. `name` labels errors.
QuantizedMatrix quantize_rtn(const Tensor& w, const WeightQuantSpec& spec, const std::string& name = "weight");

// Checks a spec against a matrix width (shared by RTN and GPTQ).
void check_weight_spec(const WeightQuantSpec& spec, int64_t cols, const std::string& name);

}  // namespace quarot
