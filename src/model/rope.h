#pragma once
// Rotary position embedding in HF's "rotate_half" layout: dimension i pairs with
// i + head_dim/2. Frequencies follow rope_theta and, for Llama 3, the piecewise
// "llama3" rescaling of long wavelengths.
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace quarot {

std::vector<float> rope_inverse_frequencies(const LlamaConfig& config);
// Rotates n_heads vectors of head_dim values (contiguous) for one position.
void apply_rope(float* x, int64_t n_heads, int64_t head_dim, int64_t position, const std::vector<float>& inv_freq);

}  // namespace quarot
