#include "transform/fold_norms.h"

#include <algorithm>

#include "common/error.h"

namespace quarot {

namespace {

// W <- W diag(g): column j of every row times g[j]; the product is formed in double
// and rounded once.
void scale_columns(Tensor& w, const Tensor& g) {
  const int64_t rows = w.rows(), cols = w.cols();
  if (cols != g.numel()) fail("fold_norms: linear has {} inputs but the norm has {} weights", cols, g.numel());
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 18))
  for (int64_t r = 0; r < rows; ++r) {
    float* row = w.row(r);
    for (int64_t c = 0; c < cols; ++c)
      row[c] = static_cast<float>(static_cast<double>(row[c]) * static_cast<double>(g.data[c]));
  }
}

void set_ones(Tensor& g) { std::fill(g.data.begin(), g.data.end(), 1.0f); }

}  // namespace

void fold_norms(ModelWeights& w) {
  if (w.lm_head.empty()) {
    w.lm_head = w.tok_embeddings;
    w.config.tied_embeddings = false;
  }
  for (LayerWeights& l : w.layers) {
    for (Tensor* t : {&l.wq, &l.wk, &l.wv}) scale_columns(*t, l.attn_norm);
    for (Tensor* t : {&l.w_gate, &l.w_up}) scale_columns(*t, l.ffn_norm);
    set_ones(l.attn_norm);
    set_ones(l.ffn_norm);
  }
  scale_columns(w.lm_head, w.output_norm);
  set_ones(w.output_norm);
}

bool norms_are_folded(const ModelWeights& w) {
  auto ones = [](const Tensor& g) { return std::all_of(g.data.begin(), g.data.end(), [](float v) { return v == 1.0f; }); };
  if (!ones(w.output_norm)) return false;
  for (const LayerWeights& l : w.layers)
    if (!ones(l.attn_norm) || !ones(l.ffn_norm)) return false;
  return true;
}

}  // namespace quarot
