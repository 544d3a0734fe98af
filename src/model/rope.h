#pragma once
// The frequencies of the rotary position embedding (applied by the backend:
// Backend::rope, kernels/cpu/rope.h): they follow rope_theta and, for Llama 3, the
// piecewise "llama3" rescaling of long wavelengths.
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace quarot {

// inv_freq[i], i < head_dim / 2: dimension i of a head turns by position * inv_freq[i].
std::vector<float> rope_inverse_frequencies(const LlamaConfig& config);

}  // namespace quarot
