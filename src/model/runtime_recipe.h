#pragma once
// What the runtime does around the weights of a (rotated, quantized) model:
// online rotations, activation quantization and KV-cache quantization. An FP model
// has an empty recipe. transform/ fills the rotations, quant/ the quantizer specs,
// the quantized file stores it, and LlamaModel executes it through the Backend.
#include <cstdint>
#include <map>
#include <string>

#include "kernels/backend.h"
#include "model/linear_slots.h"

namespace quarot {

struct RuntimeRecipe {
  // Online rotations (identity when is_identity()).
  OnlineRotation qk_rotation;      // per head, on q and k after RoPE: {k=1, p=head_dim}
  OnlineRotation o_proj_input;     // across heads on the attention output, before o_proj
  OnlineRotation down_proj_input;  // on the SwiGLU output, before down_proj
  // Activation quantization of every linear layer's input...
  ActQuantSpec act;
  // ...except lm_head (stays FP by default)...
  ActQuantSpec lm_head_act;
  // ...and except the decoder-layer slots given here (never kLmHead): mixed
  // precision beyond QuaRot, e.g. 8-bit down_proj inputs in a W4A4 model. bits 0
  // keeps that input FP.
  std::map<LinearSlot, ActQuantSpec> act_overrides;
  const ActQuantSpec& act_for(LinearSlot slot) const {
    const auto it = act_overrides.find(slot);
    return it == act_overrides.end() ? act : it->second;
  }
  KvQuantSpec k_cache, v_cache;
  bool intact_kv = false;  // keep the first position's K/V in full precision (IntactKV)
  // True once norm scales are folded into the following linears (norms keep only
  // the normalization, their weights are all ones).
  bool norms_folded = false;
};

}  // namespace quarot
