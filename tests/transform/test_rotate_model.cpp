// Computational invariance: folding norms and rotating (every mode, every online
// rotation) must leave the FP model's logits unchanged. Checked twice: against an
// independent double-precision forward (reference_forward.h) and through LlamaModel.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "common/rng.h"
#include "kernels/backend.h"
#include "model/llama_model.h"
#include "reference_forward.h"
#include "transform/fold_norms.h"
#include "transform/rotate_model.h"

namespace quarot {
namespace {

// 3 query heads over 1 kv head (across-heads fallback: random orthogonal 3), head_dim
// 12 (Paley 12 for q/k), hidden 54 = 27 x 2 and ffn 90 = 45 x 2 (both fall back), with
// q/k/v biases: every fallback path and the bias fusion.
LlamaConfig three_head_config() {
  LlamaConfig c = tiny_test_config();
  c.name = "three-heads";
  c.arch = "qwen2";
  c.qkv_bias = true;
  c.hidden = 54;
  c.intermediate = 90;
  c.n_heads = 3;
  c.n_kv_heads = 1;
  c.head_dim = 12;
  c.tied_embeddings = false;
  return c;
}

std::vector<int32_t> some_tokens(int64_t vocab, int n, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& v : t) v = static_cast<int32_t>(rng.below(vocab));
  return t;
}

double relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(a[i]));
  }
  return diff / scale;
}

std::vector<double> llama_logits(const ModelWeights& w, const RuntimeRecipe& recipe, const std::vector<int32_t>& t) {
  LlamaModel model(w, recipe, std::shared_ptr<const Backend>(make_cpu_backend()));
  KvCache cache = model.make_cache(static_cast<int64_t>(t.size()));
  std::vector<float> logits;
  model.forward(t.data(), static_cast<int64_t>(t.size()), cache, logits, /*all_logits=*/true);
  return std::vector<double>(logits.begin(), logits.end());
}

class Invariance : public ::testing::TestWithParam<LlamaConfig> {};

TEST_P(Invariance, FoldNormsKeepsLogits) {
  const ModelWeights original = make_synthetic_model(GetParam(), 17);
  ModelWeights folded = original;
  fold_norms(folded);
  EXPECT_TRUE(norms_are_folded(folded));
  EXPECT_FALSE(norms_are_folded(original));
  EXPECT_FALSE(folded.lm_head.empty());
  EXPECT_FALSE(folded.config.tied_embeddings);
  // Hand check of one entry: wq[2][5] * attn_norm[5].
  EXPECT_FLOAT_EQ(folded.layers[0].wq.at(2, 5), original.layers[0].wq.at(2, 5) * original.layers[0].attn_norm.data[5]);
  EXPECT_FLOAT_EQ(folded.lm_head.at(7, 3), original.output_matrix().at(7, 3) * original.output_norm.data[3]);
  // The embeddings themselves are untouched even when lm_head was tied.
  EXPECT_EQ(folded.tok_embeddings.data, original.tok_embeddings.data);

  const auto tokens = some_tokens(GetParam().vocab_size, 12, 1);
  const RuntimeRecipe fp;
  RuntimeRecipe folded_recipe;
  folded_recipe.norms_folded = true;
  const auto ref = test::reference_logits(original, fp, tokens);
  EXPECT_LT(relative_difference(ref, test::reference_logits(folded, folded_recipe, tokens)), 1e-5);
  // Folding twice changes nothing.
  ModelWeights twice = folded;
  fold_norms(twice);
  EXPECT_EQ(twice.layers[1].w_up.data, folded.layers[1].w_up.data);
}

struct Flags {
  bool qk, o, down;
};

TEST_P(Invariance, RotationKeepsLogitsInEveryMode) {
  const ModelWeights original = make_synthetic_model(GetParam(), 23);
  const auto tokens = some_tokens(GetParam().vocab_size, 12, 2);
  const auto ref = test::reference_logits(original, RuntimeRecipe{}, tokens);
  for (RotationMode mode : {RotationMode::kHadamard, RotationMode::kRandom, RotationMode::kNone}) {
    for (Flags f : {Flags{true, true, true}, Flags{false, false, false}, Flags{true, false, true},
                    Flags{false, true, false}}) {
      SCOPED_TRACE(testing::Message() << rotation_mode_name(mode) << " qk=" << f.qk << " o=" << f.o
                                      << " down=" << f.down);
      ModelWeights w = original;
      RuntimeRecipe recipe;
      RotationOptions opt;
      opt.mode = mode;
      opt.seed = 99;
      opt.online_qk = f.qk;
      opt.online_o = f.o;
      opt.online_down = f.down;
      const RotationReport report = rotate_model(w, recipe, opt);
      EXPECT_TRUE(recipe.norms_folded);
      EXPECT_LT(report.max_orthogonality_error, 1e-5);
      EXPECT_NO_THROW(w.validate("rotated"));
      EXPECT_EQ(recipe.qk_rotation.is_identity(), !f.qk);
      EXPECT_EQ(recipe.down_proj_input.is_identity(), !f.down);
      if (f.qk) {
        EXPECT_EQ(recipe.qk_rotation.size(), GetParam().head_dim);
      }
      if (f.down) {
        EXPECT_EQ(recipe.down_proj_input.size(), GetParam().intermediate);
      }
      if (f.o) {
        EXPECT_EQ(recipe.o_proj_input.size(), GetParam().q_dim());
      }
      if (mode != RotationMode::kNone) {
        // The residual rotation really happened: embeddings moved.
        EXPECT_NE(w.tok_embeddings.data, original.tok_embeddings.data);
      }
      EXPECT_LT(relative_difference(ref, test::reference_logits(w, recipe, tokens)), 1e-4);
    }
  }
}

// The same invariance through the runtime (float, CPU backend, its own online rotations).
TEST_P(Invariance, LlamaModelLogitsUnchanged) {
  const ModelWeights original = make_synthetic_model(GetParam(), 29);
  const auto tokens = some_tokens(GetParam().vocab_size, 10, 3);
  const auto ref = llama_logits(original, RuntimeRecipe{}, tokens);
  // The runtime agrees with the double reference on the original model.
  EXPECT_LT(relative_difference(test::reference_logits(original, RuntimeRecipe{}, tokens), ref), 1e-4);

  ModelWeights folded = original;
  fold_norms(folded);
  RuntimeRecipe folded_recipe;
  folded_recipe.norms_folded = true;
  EXPECT_LT(relative_difference(ref, llama_logits(folded, folded_recipe, tokens)), 1e-4);

  for (RotationMode mode : {RotationMode::kHadamard, RotationMode::kRandom, RotationMode::kNone}) {
    SCOPED_TRACE(rotation_mode_name(mode));
    ModelWeights w = original;
    RuntimeRecipe recipe;
    RotationOptions opt;
    opt.mode = mode;
    rotate_model(w, recipe, opt);
    EXPECT_LT(relative_difference(ref, llama_logits(w, recipe, tokens)), 1e-4);
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, Invariance, ::testing::Values(tiny_test_config(), three_head_config()),
                         [](const auto& info) { return info.index == 0 ? std::string("FourHeads") : std::string("ThreeHeads"); });

TEST(RotateModel, ReportsExactnessAndPlans) {
  ModelWeights w = make_synthetic_model(tiny_test_config(), 3);
  RuntimeRecipe recipe;
  const RotationReport r = rotate_model(w, recipe, RotationOptions{});
  EXPECT_TRUE(r.all_exact_hadamard) << r.residual << " | " << r.o_proj << " | " << r.down_proj;
  EXPECT_EQ(r.residual, "randomized hadamard 2^6");
  EXPECT_EQ(r.down_proj.rfind("hadamard 20 x 2^3", 0), 0u) << r.down_proj;  // 160 = 20 x 8
  // 4 heads: the across-heads part is a Sylvester H4 over [4, 16] (p = 4, inner = 16).
  EXPECT_EQ(recipe.o_proj_input.p, 4);
  EXPECT_EQ(recipe.o_proj_input.inner, 16);
  EXPECT_EQ(recipe.qk_rotation.p, 16);

  ModelWeights w3 = make_synthetic_model(three_head_config(), 3);
  RuntimeRecipe recipe3;
  const RotationReport r3 = rotate_model(w3, recipe3, RotationOptions{});
  EXPECT_FALSE(r3.all_exact_hadamard);
  EXPECT_NE(r3.o_proj.find("random orthogonal 3"), std::string::npos) << r3.o_proj;
  EXPECT_EQ(recipe3.o_proj_input.k, 3);
  EXPECT_EQ(recipe3.o_proj_input.inner, 12);
  EXPECT_EQ(recipe3.qk_rotation.k, 12);  // head_dim 12 = Paley 12
  EXPECT_LT(r3.max_orthogonality_error, 1e-5);

  // Rotating twice would compose online rotations incorrectly: refused.
  EXPECT_THROW(rotate_model(w3, recipe3, RotationOptions{}), Error);
}

// Why QuaRot rotates: the synthetic embeddings carry two outlier channels (25x); after
// the Hadamard rotation the largest |value| relative to the RMS must drop sharply.
TEST(RotateModel, HadamardRemovesOutlierChannels) {
  ModelWeights w = make_synthetic_model(tiny_test_config(), 5);
  auto peak_over_rms = [](const Tensor& t) {
    double peak = 0.0, ss = 0.0;
    for (float v : t.data) {
      peak = std::max(peak, double(std::abs(v)));
      ss += double(v) * v;
    }
    return peak / std::sqrt(ss / t.numel());
  };
  const double before = peak_over_rms(w.tok_embeddings);
  RuntimeRecipe recipe;
  rotate_model(w, recipe, RotationOptions{});
  const double after = peak_over_rms(w.tok_embeddings);
  EXPECT_LT(after, before / 2.0) << before << " -> " << after;
}

}  // namespace
}  // namespace quarot
