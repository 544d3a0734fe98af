#include "quant/pipeline/rotation_step.h"

#include "common/error.h"
#include "transform/fold_norms.h"
#include "transform/rotate_model.h"

namespace quarot {

namespace {

bool is_fallback(const std::string& description) {
  return description.find("random orthogonal") != std::string::npos;
}

}  // namespace

RotationSummary apply_rotation_stage(ModelWeights& weights, RuntimeRecipe& recipe, const std::string& mode,
                                     uint64_t seed) {
  RotationSummary s;
  s.mode = mode;
  if (mode == "none") {
    fold_norms(weights);
    recipe.norms_folded = true;
    s.residual = s.qk = s.v_head = s.o_proj = s.down_proj = "none";
    return s;
  }
  RotationOptions ro;
  ro.mode = parse_rotation_mode(mode);
  ro.seed = seed;
  const RotationReport r = rotate_model(weights, recipe, ro);
  s.residual = r.residual;
  s.qk = r.qk;
  s.v_head = r.v_head;
  s.o_proj = r.o_proj;
  s.down_proj = r.down_proj;
  s.all_exact_hadamard = r.all_exact_hadamard;
  s.max_orthogonality_error = r.max_orthogonality_error;
  // The residual rotation is random by request in "random" mode; report only the
  // online transforms (and a Hadamard residual) that had to fall back.
  const std::pair<const char*, const std::string*> parts[] = {
      {"residual", &s.residual}, {"q/k per-head", &s.qk}, {"v/o per-head", &s.v_head},
      {"o_proj across-head", &s.o_proj}, {"down_proj", &s.down_proj}};
  for (const auto& [label, text] : parts) {
    if (mode == "random" && text == &s.residual) continue;
    if (is_fallback(*text)) s.fallbacks += std::string(label) + ": " + *text + "\n";
  }
  return s;
}

}  // namespace quarot
