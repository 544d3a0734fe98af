#pragma once
// QuaRot's rotation of a Llama model: folds the norms, rotates the residual stream by
// an orthogonal Q fused into the weights, and installs the online rotations (Q/K per
// head after RoPE, across heads before o_proj, on down_proj's input) in the runtime
// recipe, with their weight-side halves fused. The FP model computes the same logits
// (up to float rounding); every activation and the KV cache lose their outliers.
#include <cstdint>
#include <string>

#include "model/runtime_recipe.h"
#include "model/weights.h"
#include "transform/hadamard_transform.h"
#include "transform/residual_rotation.h"

namespace quarot {

struct RotationOptions {
  RotationMode mode = RotationMode::kHadamard;  // residual-stream rotation
  uint64_t seed = kDefaultRotationSeed;
  bool online_qk = true;    // Hadamard on q and k per head after RoPE (K-cache quantization)
  bool online_o = true;     // per-head Hadamard fused into v_proj/o_proj + online across heads
  bool online_down = true;  // Hadamard on down_proj's input, fused into w_down
};

struct RotationReport {
  std::string residual;   // e.g. "randomized hadamard 36 x 2^4 (paley2(q=17))", "none"
  std::string qk;         // descriptions of the online rotations, "none" when off
  std::string v_head;     // per-head rotation fused into v_proj / o_proj
  std::string o_proj;     // across-heads online part
  std::string down_proj;
  bool all_exact_hadamard = true;   // false when any used rotation fell back to random orthogonal
  double max_orthogonality_error = 0.0;  // over every orthogonal matrix used
};

// Requires an un-rotated recipe (its online rotations identity); throws Error otherwise.
// Folds the norms if not done (sets recipe.norms_folded). The fusion runs in double.
RotationReport rotate_model(ModelWeights& weights, RuntimeRecipe& recipe, const RotationOptions& options);

}  // namespace quarot
