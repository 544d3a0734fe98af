// LlamaModel fed encoded weights (integer grids, FP16) through the backend seam:
// the FP32 reference backend must give exactly the logits of the same model with
// the dequantized FP32 weights, and copies of a KV cache must be independent.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "common/half.h"
#include "common/rng.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/llama_model.h"

namespace quarot {
namespace {

// A simple per-row symmetric RTN grid, so the test does not lean on quant/.
WeightEncoding rtn_encode(const Tensor& w, int bits, int64_t group) {
  const int64_t rows = w.shape[0], cols = w.shape[1], gs = group > 0 ? group : cols, ng = cols / gs;
  const int qmax = (1 << (bits - 1)) - 1, zero = 1 << (bits - 1);
  std::vector<uint8_t> codes(rows * cols);
  std::vector<float> scales(rows * ng);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < ng; ++g) {
      float amax = 0.0f;
      for (int64_t c = g * gs; c < (g + 1) * gs; ++c) amax = std::max(amax, std::fabs(w.at(r, c)));
      const float s = amax > 0.0f ? amax / static_cast<float>(qmax) : 1.0f;
      scales[r * ng + g] = s;
      for (int64_t c = g * gs; c < (g + 1) * gs; ++c) {
        const int q = std::clamp(static_cast<int>(std::nearbyint(w.at(r, c) / s)), -qmax - 1, qmax);
        codes[r * cols + c] = static_cast<uint8_t>(q + zero);
      }
    }
  return make_int_grid_weight(bits, true, group, rows, cols, codes, scales, {});
}

Tensor to_tensor(const WeightEncoding& e) {
  Tensor t({e.rows, e.cols});
  t.data = e.dequantize();
  return t;
}

TEST(EncodedWeights, ReferenceBackendMatchesDequantizedModelExactly) {
  const LlamaConfig c = tiny_test_config();
  ModelWeights fp = make_synthetic_model(c, 9);
  WeightEncodings enc;
  ModelWeights deq = fp;
  for (int64_t li = 0; li < c.n_layers; ++li)
    for (const LayerLinear& l : kLayerLinears) {
      const int bits = l.slot == LinearSlot::kDown ? 8 : 4;
      const WeightEncoding e = rtn_encode(fp.layers[li].*l.weight, bits, l.slot == LinearSlot::kQkv ? 32 : 0);
      enc[layer_linear_name(li, l)] = e;
      deq.layers[li].*l.weight = to_tensor(e);
      fp.layers[li].*l.weight = Tensor();  // the encoding replaces it
    }
  // A 16-bit embedding table (tied lm_head).
  auto half = std::make_shared<std::vector<uint16_t>>();
  for (float v : fp.tok_embeddings.data) half->push_back(fp32_to_fp16(v));
  enc["tok_embeddings"] = f16_weight(half->data(), c.vocab_size, c.hidden, half);
  deq.tok_embeddings = to_tensor(enc["tok_embeddings"]);
  fp.tok_embeddings = Tensor();

  RuntimeRecipe recipe;
  recipe.act.bits = 8;
  recipe.k_cache.bits = recipe.v_cache.bits = 4;
  const auto backend = make_cpu_backend(CpuBackendOptions{.simulate = true, .isa = {}});
  LlamaModel encoded(fp, recipe, backend, enc);
  LlamaModel dequantized(deq, recipe, backend);
  std::vector<int32_t> toks;
  for (int i = 0; i < 20; ++i) toks.push_back((i * 53 + 7) % c.vocab_size);
  KvCache ka = encoded.make_cache(20), kb = dequantized.make_cache(20);
  std::vector<float> a, b;
  encoded.forward(toks.data(), 20, ka, a, true);
  dequantized.forward(toks.data(), 20, kb, b, true);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "logit " << i;
}

// The integer path (int32 GEMMs, packed KV cache) against the simulated reference on
// a whole model: per linear they differ only in FP32 summation order (~1e-7), which
// through 2 layers of 8-bit activation and KV quantization may flip an occasional
// code by one step (1/127 of a row's range); logits stay within 1e-3.
TEST(EncodedWeights, IntegerPathMatchesTheSimulatedModel) {
  const LlamaConfig c = tiny_test_config();
  ModelWeights w = make_synthetic_model(c, 21);
  WeightEncodings enc;
  for (int64_t li = 0; li < c.n_layers; ++li)
    for (const LayerLinear& l : kLayerLinears) {
      enc[layer_linear_name(li, l)] = rtn_encode(w.layers[li].*l.weight, 8, 0);
      w.layers[li].*l.weight = Tensor();
    }
  RuntimeRecipe recipe;
  recipe.act.bits = 8;
  recipe.k_cache.bits = recipe.v_cache.bits = 8;
  LlamaModel integer(w, recipe, make_cpu_backend(CpuBackendOptions{}), enc);
  LlamaModel simulated(w, recipe, make_cpu_backend(CpuBackendOptions{.simulate = true, .isa = {}}), enc);
  ASSERT_EQ(integer.backend().name().rfind("cpu-int", 0), 0u);
  std::vector<int32_t> toks;
  for (int i = 0; i < 24; ++i) toks.push_back((i * 29 + 3) % c.vocab_size);
  KvCache ka = integer.make_cache(32), kb = simulated.make_cache(32);
  EXPECT_LT(ka.bytes(), kb.bytes() / 2);  // 8-bit codes + scale and zero per head (head_dim 16) vs FP32 rows
  std::vector<float> a, b;
  integer.forward(toks.data(), 24, ka, a, true);
  simulated.forward(toks.data(), 24, kb, b, true);
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, static_cast<double>(std::fabs(a[i] - b[i])));
    den = std::max(den, static_cast<double>(std::fabs(b[i])));
  }
  EXPECT_LT(num / den, 1e-3);
  // Decode steps on the packed cache continue the same sequence.
  std::vector<float> step_a, step_b;
  integer.forward(&toks[5], 1, ka, step_a, false);
  simulated.forward(&toks[5], 1, kb, step_b, false);
  num = den = 0.0;
  for (size_t i = 0; i < step_a.size(); ++i) {
    num = std::max(num, static_cast<double>(std::fabs(step_a[i] - step_b[i])));
    den = std::max(den, static_cast<double>(std::fabs(step_b[i])));
  }
  EXPECT_LT(num / den, 1e-3);
}

TEST(EncodedWeights, RejectsAnEncodingOfTheWrongShape) {
  const LlamaConfig c = tiny_test_config();
  const ModelWeights w = make_synthetic_model(c, 2);
  WeightEncodings enc;
  enc["layers.0.wk"] = rtn_encode(w.layers[0].wq, 4, 0);  // wq is [q_dim, hidden], wk needs [kv_dim, hidden]
  try {
    LlamaModel m(w, RuntimeRecipe{}, make_cpu_backend(CpuBackendOptions{}), enc);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers.0.wk"), std::string::npos) << e.what();
  }
}

TEST(EncodedWeights, KvCacheCopiesAreIndependentAndKeepThePrefix) {
  const LlamaConfig c = tiny_test_config();
  RuntimeRecipe r;
  r.k_cache.bits = r.v_cache.bits = 4;
  LlamaModel m(make_synthetic_model(c, 4), r, make_cpu_backend(CpuBackendOptions{}));
  std::vector<int32_t> prefix = {1, 2, 3, 4, 5}, a = {6, 7}, b = {8, 9};
  KvCache base = m.make_cache(16);
  std::vector<float> logits;
  m.forward(prefix.data(), 5, base, logits, false);
  KvCache copy = base;  // shares nothing with base
  std::vector<float> la, lb, lc;
  m.forward(a.data(), 2, base, la, false);
  m.forward(b.data(), 2, copy, lb, false);
  // The copy continued from the same prefix: equal to a fresh run of prefix + b.
  KvCache fresh = m.make_cache(16);
  std::vector<int32_t> pb = prefix;
  pb.insert(pb.end(), b.begin(), b.end());
  m.forward(pb.data(), 7, fresh, lc, false);
  ASSERT_EQ(lb.size(), lc.size());
  for (size_t i = 0; i < lb.size(); ++i) ASSERT_NEAR(lb[i], lc[i], 1e-4f * (1.0f + std::fabs(lc[i])));
  EXPECT_NE(la, lb);
  EXPECT_EQ(base.size(), 7);
  EXPECT_EQ(copy.size(), 7);
}

}  // namespace
}  // namespace quarot
