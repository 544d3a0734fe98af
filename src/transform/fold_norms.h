#pragma once
// Folds every RMSNorm scale into the linear layers that read the normalized vector,
// leaving norms that only normalize (weights all ones). The FP model computes the same
// function: norm(x) * g feeds y = (x_n * g) W^T = x_n (W diag(g))^T. Computational
// invariance under the residual rotation needs this, since diag(g) does not commute
// with Q. A tied lm_head is untied first (output_norm's scale must not touch the
// embeddings). Idempotent: folding ones changes nothing.
#include "model/weights.h"

namespace quarot {

void fold_norms(ModelWeights& weights);

// True when every norm weight is exactly 1 (what fold_norms leaves).
bool norms_are_folded(const ModelWeights& weights);

}  // namespace quarot
