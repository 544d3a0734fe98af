// The Q/K row permutation of llama.cpp's converter and its inverse.
#include <gtest/gtest.h>

#include "common/error.h"
#include "io/gguf_qk_permute.h"

namespace quarot {
namespace {

Tensor numbered(int64_t rows, int64_t cols) {
  Tensor t({rows, cols});
  for (int64_t i = 0; i < t.numel(); ++i) t.data[i] = static_cast<float>(i);
  return t;
}

// numpy semantics of w.reshape(n_head, 2, half, cols).swapaxes(1, 2).reshape(rows, cols),
// evaluated by walking the output in C order over the swapped view (h, i, p, c).
Tensor reference_permute(const Tensor& w, int64_t n_head) {
  const int64_t rows = w.shape[0], cols = w.shape[1], half = rows / n_head / 2;
  Tensor out({rows, cols});
  int64_t flat = 0;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t p = 0; p < 2; ++p)
        for (int64_t c = 0; c < cols; ++c)
          out.data[flat++] = w.data[((h * 2 + p) * half + i) * cols + c];
  return out;
}

TEST(GgufQkPermute, MatchesConverterFormula) {
  const Tensor w = numbered(3 * 8, 5);  // 3 heads of head_dim 8
  EXPECT_EQ(permute_qk_to_gguf(w, 3).data, reference_permute(w, 3).data);
  // Spot check by hand: head 1, GGUF row 8 + 3 = pair i=1, p=1 -> HF row 8 + 4 + 1.
  const Tensor g = permute_qk_to_gguf(w, 3);
  EXPECT_EQ(g.at(8 + 3, 0), w.at(8 + 4 + 1, 0));
  EXPECT_EQ(g.at(1, 2), w.at(4, 2));  // head 0, i=0, p=1 -> HF row half = 4
}

TEST(GgufQkPermute, InverseIsIdentityBothWays) {
  for (int64_t heads : {1, 2, 9}) {
    const Tensor w = numbered(heads * 64, 3);
    EXPECT_EQ(unpermute_qk_from_gguf(permute_qk_to_gguf(w, heads), heads).data, w.data);
    EXPECT_EQ(permute_qk_to_gguf(unpermute_qk_from_gguf(w, heads), heads).data, w.data);
    EXPECT_NE(permute_qk_to_gguf(w, heads).data, w.data);
  }
  Tensor bias({16});
  for (int i = 0; i < 16; ++i) bias.data[i] = static_cast<float>(i);
  EXPECT_EQ(unpermute_qk_from_gguf(permute_qk_to_gguf(bias, 2), 2).data, bias.data);
}

// A fuzzed GGUF declared attn_q as [2^41, 0]: the row loop ran 2^41 times for no data.
TEST(GgufQkPermute, EmptyTensorWithManyRowsReturnsAtOnce) {
  const Tensor empty({int64_t{1} << 41, 0});
  EXPECT_EQ(unpermute_qk_from_gguf(empty, 2).shape, empty.shape);
  EXPECT_EQ(permute_qk_to_gguf(empty, 2).numel(), 0);
}

TEST(GgufQkPermute, RejectsIndivisibleShapes) {
  EXPECT_THROW(unpermute_qk_from_gguf(numbered(10, 2), 3), Error);
  EXPECT_THROW(unpermute_qk_from_gguf(numbered(6, 2), 2), Error);  // odd head_dim 3
}

}  // namespace
}  // namespace quarot
