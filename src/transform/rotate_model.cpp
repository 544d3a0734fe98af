// Conventions and derivations (row vectors, as the runtime computes them):
//
// A linear layer with weight W [out, in] computes y = x W^T.
//  * Rotating its INPUT: if the layer now receives x' = x Q (Q orthogonal), then
//    W' = W Q gives x' W'^T = x Q Q^T W^T = x W^T.
//  * Rotating its OUTPUT: to produce y' = y Q, use W' = Q^T W: x W'^T = x W^T Q = y Q.
//
// Residual stream (Q = hidden x hidden; with folded norms, RMSNorm has no scale and
// rms(x Q) = rms(x), so norm(x Q) = norm(x) Q):
//    tok_embeddings E' = E Q                     (rows are residual vectors)
//    wq, wk, wv, w_gate, w_up, lm_head: W' = W Q  (read the residual)
//    wo, w_down:                        W' = Q^T W (write into the residual)
//
// Online rotations follow kernels/backend.h: an OnlineRotation is the matrix A with
// y = A x for a column x, i.e. the row x becomes x A^T.
//  * down_proj: the runtime feeds w_down with x A^T (A = plan_hadamard(ffn)); so
//    W' = W A^T gives (x A^T)(W A^T)^T = x A^T A W^T = x W^T. Applying A to every row
//    of W computes exactly W A^T.
//  * v_proj / o_proj: R = per-head plan (head_dim). Fuse v'_g = v_g R^T for every
//    kv head g (row form of R v_g): W_v' rows of block g = R W_v[g] (and b_v' = R b_v).
//    Attention mixes positions, not coordinates, and GQA reuses v_g for all query heads
//    of the group, so each head's output becomes o_h R^T. The runtime then applies the
//    across-heads rotation B = M (x) I_hd (o_proj_input: k = n_heads, inner = head_dim),
//    so o_proj receives o T^T with T = M (x) R, and W_o' = W_o T^T restores o W_o^T.
//    Applying R to each head_dim segment of each row of W_o, then B to the row, is T.
//  * q/k: the runtime applies R to q_h and k_h after RoPE; q_h R^T (k_h R^T)^T =
//    q_h k_h^T, so scores are unchanged and no weight changes.
//
// Combined, e.g. W_o'' = Q^T W_o T^T and W_down'' = Q^T W_down A^T; each is computed in
// double and rounded to float once.
#include "transform/rotate_model.h"

#include <algorithm>

#include "common/error.h"
#include "transform/fold_norms.h"
#include "transform/matrix_double.h"

namespace quarot {

namespace {

std::string describe(const OnlineRotation& r, const std::string& text) { return r.is_identity() ? "none" : text; }

// Row-wise application in double of rotation A to every row of w: W <- W A^T.
void rotate_rows(MatrixD& w, const OnlineRotation& a) {
  if (w.cols % a.size() != 0)
    fail("rotate_model: rotation of size {} does not divide rows of {}", a.size(), w.cols);
  // A row of length cols made of cols / size segments: each segment rotated independently.
  apply_rotation_rows(a, w.data.data(), w.rows * (w.cols / a.size()));
}

}  // namespace

RotationReport rotate_model(ModelWeights& w, RuntimeRecipe& recipe, const RotationOptions& opt) {
  const LlamaConfig& c = w.config;
  if (!recipe.qk_rotation.is_identity() || !recipe.o_proj_input.is_identity() ||
      !recipe.down_proj_input.is_identity())
    fail("rotate_model: the model is already rotated (its recipe holds online rotations)");
  c.validate(c.name.empty() ? "model" : c.name);

  fold_norms(w);  // idempotent; untie lm_head so output_norm and Q do not touch embeddings
  recipe.norms_folded = true;

  RotationReport report;
  const ResidualRotation q(opt.mode, c.hidden, opt.seed);
  report.residual = q.description();
  report.max_orthogonality_error = q.orthogonality_error();
  if (opt.mode == RotationMode::kHadamard && !q.exact_hadamard()) report.all_exact_hadamard = false;

  // Distinct seeds per fallback so two random factors are never the same matrix.
  const HadamardPlan head = plan_hadamard(c.head_dim, opt.seed + 1);
  HadamardPlan heads = plan_hadamard(c.n_heads, opt.seed + 2);
  heads.rotation.inner = c.head_dim;
  const HadamardPlan down = plan_hadamard(c.intermediate, opt.seed + 3);

  auto note = [&](const HadamardPlan& p) {
    report.max_orthogonality_error = std::max(report.max_orthogonality_error, orthogonality_error(p.rotation));
    if (!p.exact_hadamard) report.all_exact_hadamard = false;
  };
  report.qk = report.v_head = report.o_proj = report.down_proj = "none";
  if (opt.online_qk) {
    note(head);
    report.qk = head.description;
  }
  if (opt.online_o) {
    note(head);
    note(heads);
    report.v_head = head.description;
    report.o_proj = describe(heads.rotation, heads.description + " across heads");
  }
  if (opt.online_down) {
    note(down);
    report.down_proj = down.description;
  }

  auto read_residual = [&](Tensor& t) {
    MatrixD m = MatrixD::from_tensor(t);
    q.right_multiply(m);
    m.store(t);
  };
  read_residual(w.tok_embeddings);
  read_residual(w.lm_head);

  for (LayerWeights& l : w.layers) {
    read_residual(l.wq);
    read_residual(l.wk);
    read_residual(l.w_gate);
    read_residual(l.w_up);
    {
      MatrixD v = MatrixD::from_tensor(l.wv);
      q.right_multiply(v);
      if (opt.online_o) {
        // Block g of rows <- R W_v[g]: on W_v^T, every head_dim segment of every row gets R.
        MatrixD vt = v.transposed();
        rotate_rows(vt, head.rotation);
        v = vt.transposed();
        if (!l.bv.empty()) {
          MatrixD b = MatrixD::from_tensor(l.bv);
          b.rows = 1;
          b.cols = l.bv.numel();
          rotate_rows(b, head.rotation);
          b.store(l.bv);
        }
      }
      v.store(l.wv);
    }
    {
      MatrixD o = MatrixD::from_tensor(l.wo);
      if (opt.online_o) {
        rotate_rows(o, head.rotation);    // (I (x) R) per head segment
        rotate_rows(o, heads.rotation);   // (M (x) I_hd) across heads
      }
      q.left_multiply_transposed(o);
      o.store(l.wo);
    }
    {
      MatrixD d = MatrixD::from_tensor(l.w_down);
      if (opt.online_down) rotate_rows(d, down.rotation);
      q.left_multiply_transposed(d);
      d.store(l.w_down);
    }
  }

  if (opt.online_qk) recipe.qk_rotation = head.rotation;
  if (opt.online_o) recipe.o_proj_input = heads.rotation;
  if (opt.online_down) recipe.down_proj_input = down.rotation;
  return report;
}

}  // namespace quarot
