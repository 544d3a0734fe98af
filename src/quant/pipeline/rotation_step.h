#pragma once
// The rotation stage of the QuaRot pipeline: fold the RMSNorm scales, then (unless
// the mode is "none") rotate the residual stream and install the online rotations.
// Takes the mode by name so this header needs neither transform/residual_rotation.h
// nor quant/scheme.h (both declare a RotationMode in namespace quarot).
#include <cstdint>
#include <string>

#include "model/runtime_recipe.h"
#include "model/weights.h"

namespace quarot {

struct RotationSummary {
  std::string mode;        // "hadamard" | "random" | "none"
  std::string residual;    // description of the residual-stream rotation, "none" when off
  std::string qk;          // per-head rotation of q/k after RoPE
  std::string v_head;      // per-head rotation fused into v_proj / o_proj
  std::string o_proj;      // online across-heads rotation before o_proj
  std::string down_proj;   // online rotation before down_proj
  bool all_exact_hadamard = true;
  double max_orthogonality_error = 0.0;
  // One line per rotation that is not an exact Hadamard matrix, e.g.
  // "o_proj across-head: random orthogonal 9 (no Hadamard of order 9 exists)".
  std::string fallbacks;
};

// mode: "hadamard" | "random" | "none" (Error otherwise). With "none" the norms are
// still folded (so the weights are laid out as in the rotated model) but nothing is rotated.
RotationSummary apply_rotation_stage(ModelWeights& weights, RuntimeRecipe& recipe, const std::string& mode,
                                     uint64_t seed);

}  // namespace quarot
