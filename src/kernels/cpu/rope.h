#pragma once
// Rotary position embedding in HF's "rotate_half" layout: dimension i of a head
// pairs with i + head_dim/2, both turned by the angle position * inv_freq[i]
// (computed in float32 as transformers does). The frequencies come from the model
// (model/rope.h rope_inverse_frequencies).
#include <cstdint>

namespace quarot {

// Rotates n_heads vectors of head_dim values (contiguous) for one position;
// inv_freq has head_dim / 2 values.
void apply_rope(float* x, int64_t n_heads, int64_t head_dim, int64_t position, const float* inv_freq);

}  // namespace quarot
