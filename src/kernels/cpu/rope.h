#pragma once
// Rotary position embedding in HF's "rotate_half" layout: dimension i of a head
// pairs with i + head_dim/2, both turned by the angle position * inv_freq[i]
// (computed in float32 as transformers does). The frequencies come from the model
// (model/rope.h rope_inverse_frequencies).
#include <cstdint>

namespace quarot {

// Rotates n_heads vectors of head_dim values (contiguous) for one position;
// inv_freq has head_dim / 2 values. The reference: rope_angles + apply_rope_angles.
void apply_rope(float* x, int64_t n_heads, int64_t head_dim, int64_t position, const float* inv_freq);

// cs[i] = cos(angle_i), cs[half + i] = sin(angle_i), angle_i = float(position) * inv_freq[i]
// (libm, float), i < half: what apply_rope turns one position's pairs by.
void rope_angles(int64_t position, const float* inv_freq, int64_t half, float* cs);
// apply_rope with the angles' cos / sin given (cs as rope_angles writes it), so a
// table made once serves every head, layer and the q and k of one forward.
void apply_rope_angles(float* x, int64_t n_heads, int64_t head_dim, const float* cs);

}  // namespace quarot
