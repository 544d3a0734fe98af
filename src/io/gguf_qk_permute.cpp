#include "io/gguf_qk_permute.h"

#include <algorithm>

#include "common/error.h"

namespace quarot {

namespace {

// Copies row blocks: to_gguf selects the direction of the mapping above.
Tensor move_rows(const Tensor& w, int64_t n_heads, bool to_gguf) {
  if (w.shape.empty() || n_heads <= 0 || w.shape[0] % n_heads != 0 || (w.shape[0] / n_heads) % 2 != 0)
    fail("cannot undo the GGUF Q/K row permutation: {} rows are not {} heads of even size", w.shape_str(), n_heads);
  // Nothing to move in an empty tensor, however many rows it claims (a GGUF may declare
  // [2^41, 0]; the loader's shape checks reject it after this).
  if (w.numel() == 0) return w;
  const int64_t rows = w.shape[0];
  const int64_t head_dim = rows / n_heads;
  const int64_t half = head_dim / 2;
  const int64_t cols = rows == 0 ? 0 : w.numel() / rows;
  Tensor out(w.shape);
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t p = 0; p < 2; ++p) {
        const int64_t gguf_row = h * head_dim + 2 * i + p;
        const int64_t hf_row = h * head_dim + p * half + i;
        const int64_t src = to_gguf ? hf_row : gguf_row;
        const int64_t dst = to_gguf ? gguf_row : hf_row;
        std::copy_n(w.data.data() + src * cols, cols, out.data.data() + dst * cols);
      }
    }
  }
  return out;
}

}  // namespace

Tensor permute_qk_to_gguf(const Tensor& w, int64_t n_heads) { return move_rows(w, n_heads, true); }
Tensor unpermute_qk_from_gguf(const Tensor& w, int64_t n_heads) { return move_rows(w, n_heads, false); }

}  // namespace quarot
