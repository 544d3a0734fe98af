// The QuaRot pass end to end on the tiny synthetic model (which carries injected
// outlier channels in its residual stream, as real LLMs do).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <tuple>

#include "common/error.h"
#include "common/half.h"
#include "common/rng.h"
#include "model/llama_model.h"
#include "quant/pipeline/pipeline_test_util.h"
#include "quant/pipeline/quarot_pipeline.h"
#include "quant/pipeline/runtime_scheme.h"
#include "quant/quantized_model.h"
#include "test_support.h"

namespace quarot {
namespace {

std::vector<int32_t> token_sequence(int64_t n, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& v : t) v = static_cast<int32_t>(rng.below(vocab));
  return t;
}

std::vector<float> all_logits(const ModelWeights& w, const RuntimeRecipe& recipe, const std::vector<int32_t>& tokens) {
  LlamaModel model(w, recipe, make_cpu_backend());
  KvCache cache = model.make_cache(static_cast<int64_t>(tokens.size()));
  std::vector<float> logits;
  model.forward(tokens.data(), static_cast<int64_t>(tokens.size()), cache, logits, true);
  return logits;
}

// max |a - b| / max |b|
double max_rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    num = std::max(num, static_cast<double>(std::fabs(a[i] - b[i])));
    den = std::max(den, static_cast<double>(std::fabs(b[i])));
  }
  return num / den;
}

// sqrt(mean (a - b)^2) / sqrt(mean b^2)
double rms_rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

QuantizeOptions options_for(const std::string& scheme, RotationMode rotate, WeightMethod method = WeightMethod::kRtn) {
  QuantizeOptions o;
  o.scheme = parse_quant_scheme(scheme);
  o.rotate = rotate;
  o.weights = method;
  o.seed = 3;
  return o;
}

class QuarotPipeline : public ::testing::Test {
 protected:
  LlamaConfig config = tiny_test_config();
  ModelWeights fp = make_synthetic_model(config, 11);
  std::vector<int32_t> tokens = token_sequence(48, config.vocab_size, 5);
  std::vector<float> fp_logits = all_logits(fp, RuntimeRecipe{}, tokens);
};

TEST_F(QuarotPipeline, RunLayerReproducesForwardLayerByLayer) {
  LlamaModel model(fp, RuntimeRecipe{}, make_cpu_backend());
  using Key = std::tuple<int, LinearSlot>;
  std::map<Key, std::vector<float>> seen_forward, seen_layerwise;
  auto record = [](std::map<Key, std::vector<float>>& into) {
    return [&into](int layer, LinearSlot slot, const float* x, int64_t n, int64_t dim) {
      into[{layer, slot}].assign(x, x + n * dim);
    };
  };
  model.set_activation_hook(record(seen_forward));
  KvCache cache = model.make_cache(48);
  std::vector<float> logits;
  model.forward(tokens.data(), 48, cache, logits, true);

  model.set_activation_hook(record(seen_layerwise));
  std::vector<float> x(48 * config.hidden);
  model.embed(tokens.data(), 48, x.data());
  for (int layer = 0; layer < config.n_layers; ++layer) model.run_layer(layer, x.data(), 48);

  int compared = 0;
  for (const auto& [key, v] : seen_forward) {
    if (std::get<1>(key) == LinearSlot::kLmHead) continue;
    ASSERT_TRUE(seen_layerwise.count(key));
    EXPECT_EQ(seen_layerwise[key], v) << "layer " << std::get<0>(key) << " " << linear_slot_name(std::get<1>(key));
    ++compared;
  }
  EXPECT_EQ(compared, 4 * config.n_layers);
  EXPECT_THROW(model.run_layer(static_cast<int>(config.n_layers), x.data(), 48), Error);
}

TEST_F(QuarotPipeline, FullPrecisionRotatedModelComputesTheSameLogits) {
  for (RotationMode mode : {RotationMode::kHadamard, RotationMode::kRandom, RotationMode::kNone}) {
    QuantizeOptions o = options_for("W16A16", mode);
    o.embed_bits = o.lm_head_bits = 32;  // FP32 matrices: the rotation alone must be exact
    const QuantizationResult r = quantize_model(fp, o, {}, calibration_backend());
    EXPECT_TRUE(r.layers.empty());
    EXPECT_TRUE(r.recipe.norms_folded);
    if (mode == RotationMode::kNone) {
      EXPECT_TRUE(r.recipe.qk_rotation.is_identity());
      EXPECT_TRUE(r.recipe.down_proj_input.is_identity());
    } else {
      EXPECT_FALSE(r.recipe.qk_rotation.is_identity());
      EXPECT_FALSE(r.recipe.o_proj_input.is_identity());
      EXPECT_FALSE(r.recipe.down_proj_input.is_identity());
    }
    EXPECT_LT(max_rel_err(all_logits(r.weights, r.recipe, tokens), fp_logits), 1e-4) << to_string(mode);
  }
}

// The default file keeps the embedding table in 16 bits: the result already holds
// those values (so a saved file reproduces it), at a cost far below 4-bit noise.
TEST_F(QuarotPipeline, SixteenBitEmbeddingIsRoundedInTheResult) {
  const QuantizationResult r16 = quantize_model(fp, options_for("W16A16", RotationMode::kHadamard), {}, calibration_backend());
  for (float v : r16.weights.tok_embeddings.data) ASSERT_EQ(v, fp16_to_fp32(fp32_to_fp16(v)));
  const double err = max_rel_err(all_logits(r16.weights, r16.recipe, tokens), fp_logits);
  EXPECT_GT(err, 0.0);
  EXPECT_LT(err, 5e-3);  // FP16 keeps 11 significant bits: ~5e-4 relative per value
}

TEST_F(QuarotPipeline, RecipeFollowsTheSchemeAsInQuarot) {
  QuantizeOptions o = options_for("W4A4KV4", RotationMode::kHadamard);
  o.intact_kv = true;
  const QuantizationResult r = quantize_model(fp, o, {}, calibration_backend());
  EXPECT_EQ(r.recipe.act.bits, 4);
  EXPECT_FLOAT_EQ(r.recipe.act.clip_ratio, 0.9f);
  EXPECT_TRUE(r.recipe.act.symmetric);
  EXPECT_FALSE(r.recipe.lm_head_act.enabled());
  for (const KvQuantSpec* kv : {&r.recipe.k_cache, &r.recipe.v_cache}) {
    EXPECT_EQ(kv->bits, 4);
    EXPECT_FALSE(kv->symmetric);
    EXPECT_FLOAT_EQ(kv->clip_ratio, 0.95f);
    EXPECT_EQ(kv->group, 0);  // = head_dim
  }
  EXPECT_TRUE(r.recipe.intact_kv);
  ASSERT_EQ(r.layers.size(), static_cast<size_t>(config.n_layers));
  EXPECT_EQ(r.layers[0].wq.bits, 4);
  // The stored weights are exactly the dequantized integer grids.
  EXPECT_EQ(r.layers[1].w_down.dequantize().data, r.weights.layers[1].w_down.data);
  // 8-bit activations are not clipped.
  const QuantizationResult r8 = quantize_model(fp, options_for("W8A8", RotationMode::kHadamard), {}, calibration_backend());
  EXPECT_FLOAT_EQ(r8.recipe.act.clip_ratio, 1.0f);
  EXPECT_FALSE(r8.recipe.k_cache.enabled());
}

TEST_F(QuarotPipeline, W8A8RotatedIsCloseToFullPrecision) {
  const QuantizationResult r = quantize_model(fp, options_for("W8A8", RotationMode::kHadamard), {}, calibration_backend());
  const QuantizationResult r4 = quantize_model(fp, options_for("W4A4", RotationMode::kHadamard), {}, calibration_backend());
  const double err8 = rms_rel_err(all_logits(r.weights, r.recipe, tokens), fp_logits);
  const double err4 = rms_rel_err(all_logits(r4.weights, r4.recipe, tokens), fp_logits);
  std::printf("rms relative logit error: W8A8 %.3g, W4A4 %.3g\n", err8, err4);
  // An 8-bit row grid has steps of max|row| / 127; uniform rounding noise of step / sqrt(12)
  // is ~0.5% of a Gaussian row's rms (max ~ 2.4 sigma over 64 values), and the token-wise
  // activation grid adds as much again (measured: W8A8 1.5%, W4A4 27%). A quantizer that does
  // nothing leaves only the rotation's FP32 rounding (~1e-6), far below the lower bound;
  // 4-bit grids are 16x coarser, so W4A4 must be clearly worse.
  EXPECT_GT(err8, 1e-3);
  EXPECT_LT(err8, 0.03);
  EXPECT_GT(err4, 4.0 * err8);
}

TEST_F(QuarotPipeline, RotationReducesW4A4KV4ErrorOnOutlierModel) {
  const QuantizationResult rotated = quantize_model(fp, options_for("W4A4KV4", RotationMode::kHadamard), {}, calibration_backend());
  const QuantizationResult plain = quantize_model(fp, options_for("W4A4KV4", RotationMode::kNone), {}, calibration_backend());
  const double err_rotated = rms_rel_err(all_logits(rotated.weights, rotated.recipe, tokens), fp_logits);
  const double err_plain = rms_rel_err(all_logits(plain.weights, plain.recipe, tokens), fp_logits);
  EXPECT_LT(err_rotated, err_plain) << "rotated " << err_rotated << " plain " << err_plain;
  // The outliers hurt activation quantization most (they set every token's scale):
  // there rotation must help clearly. (Random Gaussian weights have no outliers, so
  // weight-only quantization gains nothing from rotation on this model.)
  const QuantizationResult a4_rot = quantize_model(fp, options_for("W16A4", RotationMode::kHadamard), {}, calibration_backend());
  const QuantizationResult a4_plain = quantize_model(fp, options_for("W16A4", RotationMode::kNone), {}, calibration_backend());
  const double a4_err_rot = rms_rel_err(all_logits(a4_rot.weights, a4_rot.recipe, tokens), fp_logits);
  const double a4_err_plain = rms_rel_err(all_logits(a4_plain.weights, a4_plain.recipe, tokens), fp_logits);
  EXPECT_LT(a4_err_rot, 0.8 * a4_err_plain) << "rotated " << a4_err_rot << " plain " << a4_err_plain;
}

// Inputs of every linear slot of the FP (rotated) model on `windows`.
std::map<std::tuple<int, LinearSlot>, std::vector<float>> linear_inputs(const ModelWeights& w, const RuntimeRecipe& recipe,
                                                                        const std::vector<std::vector<int32_t>>& windows) {
  std::map<std::tuple<int, LinearSlot>, std::vector<float>> inputs;
  LlamaModel model(w, recipe, make_cpu_backend());
  model.set_activation_hook([&](int layer, LinearSlot slot, const float* x, int64_t n, int64_t dim) {
    auto& v = inputs[{layer, slot}];
    v.insert(v.end(), x, x + n * dim);
  });
  for (const auto& win : windows) {
    KvCache cache = model.make_cache(static_cast<int64_t>(win.size()));
    std::vector<float> logits;
    model.forward(win.data(), static_cast<int64_t>(win.size()), cache, logits, false);
  }
  return inputs;
}

// sum over rows of ||x (W - Wq)^T||^2
double output_error(const std::vector<float>& x, const Tensor& w, const Tensor& wq) {
  const int64_t in = w.cols(), out = w.rows(), n = static_cast<int64_t>(x.size()) / in;
  double err = 0.0;
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t o = 0; o < out; ++o) {
      double d = 0.0;
      for (int64_t i = 0; i < in; ++i) d += static_cast<double>(x[t * in + i]) * (w.at(o, i) - wq.at(o, i));
      err += d * d;
    }
  }
  return err;
}

// Zipf-like token stream: real text is dominated by few frequent tokens.
std::vector<int32_t> text_like_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& v : t) v = static_cast<int32_t>(std::min<double>(vocab - 1, std::floor(std::pow(vocab, rng.uniform())) - 1));
  return t;
}

TEST_F(QuarotPipeline, GptqHasLowerLayerOutputErrorThanRtn) {
  std::vector<std::vector<int32_t>> calib, held_out;
  for (int i = 0; i < 8; ++i) calib.push_back(text_like_tokens(64, config.vocab_size, 100 + i));
  for (int i = 0; i < 4; ++i) held_out.push_back(text_like_tokens(64, config.vocab_size, 200 + i));
  const QuantizationResult reference = quantize_model(fp, options_for("W16A16", RotationMode::kHadamard), {}, calibration_backend());
  const QuantizationResult rtn = quantize_model(fp, options_for("W4A16", RotationMode::kHadamard), calib, calibration_backend());
  const QuantizationResult gptq =
      quantize_model(fp, options_for("W4A16", RotationMode::kHadamard, WeightMethod::kGptq), calib, calibration_backend());
  EXPECT_EQ(gptq.report.calib_windows, 8);
  EXPECT_EQ(gptq.report.calib_seqlen, 64);
  // Layer 0 sees the same inputs in every variant; compare on held-out windows.
  const auto inputs = linear_inputs(reference.weights, reference.recipe, held_out);
  struct Lin {
    const char* name;
    Tensor LayerWeights::*w;
    LinearSlot slot;
  };
  const Lin lins[] = {{"q", &LayerWeights::wq, LinearSlot::kQkv},       {"k", &LayerWeights::wk, LinearSlot::kQkv},
                      {"v", &LayerWeights::wv, LinearSlot::kQkv},       {"o", &LayerWeights::wo, LinearSlot::kO},
                      {"gate", &LayerWeights::w_gate, LinearSlot::kGateUp}, {"up", &LayerWeights::w_up, LinearSlot::kGateUp},
                      {"down", &LayerWeights::w_down, LinearSlot::kDown}};
  for (const Lin& l : lins) {
    const std::vector<float>& x = inputs.at({0, l.slot});
    const Tensor& w = reference.weights.layers[0].*l.w;
    const double e_rtn = output_error(x, w, rtn.weights.layers[0].*l.w);
    const double e_gptq = output_error(x, w, gptq.weights.layers[0].*l.w);
    EXPECT_LT(e_gptq, e_rtn) << l.name;
  }
  // And the whole model follows FP more closely.
  const auto probe = text_like_tokens(48, config.vocab_size, 999);
  const auto ref_logits = all_logits(reference.weights, reference.recipe, probe);
  EXPECT_LT(rms_rel_err(all_logits(gptq.weights, gptq.recipe, probe), ref_logits),
            rms_rel_err(all_logits(rtn.weights, rtn.recipe, probe), ref_logits));
}

TEST_F(QuarotPipeline, ClaqRunsLayerByLayerAndBeatsGptqAtThreeBits) {
  std::vector<std::vector<int32_t>> calib, held_out;
  for (int i = 0; i < 8; ++i) calib.push_back(text_like_tokens(64, config.vocab_size, 100 + i));
  for (int i = 0; i < 4; ++i) held_out.push_back(text_like_tokens(64, config.vocab_size, 200 + i));
  for (RotationMode rotate : {RotationMode::kNone, RotationMode::kHadamard}) {
    const QuantizationResult reference = quantize_model(fp, options_for("W16A16", rotate), {}, calibration_backend());
    const QuantizationResult gptq = quantize_model(fp, options_for("W3A16", rotate, WeightMethod::kGptq), calib, calibration_backend());
    QuantizeOptions o = options_for("W3A16", rotate, WeightMethod::kClaq);
    const QuantizationResult claq = quantize_model(fp, o, calib, calibration_backend());
    EXPECT_EQ(claq.report.weight_method, "claq");
    EXPECT_TRUE(claq.layers.empty());
    ASSERT_EQ(static_cast<int64_t>(claq.codebooks.size()), 7 * config.n_layers);
    // The weights the model runs are the codebooks' values.
    EXPECT_EQ(claq.codebooks.at("layers.1.w_down").dequantize().data, claq.weights.layers[1].w_down.data);
    const nlohmann::json bits = claq.report.to_json().at("claq");
    EXPECT_DOUBLE_EQ(bits.at("index_bits_per_weight").get<double>(), 3.0);
    EXPECT_GT(bits.at("effective_bits_per_weight").get<double>(), 3.0);  // codebooks cost something
    EXPECT_EQ(bits.at("outliers").get<int64_t>(), 0);
    const auto inputs = linear_inputs(reference.weights, reference.recipe, held_out);
    const std::vector<float>& x = inputs.at({0, LinearSlot::kGateUp});
    const Tensor& w = reference.weights.layers[0].w_up;
    EXPECT_LT(output_error(x, w, claq.weights.layers[0].w_up), output_error(x, w, gptq.weights.layers[0].w_up))
        << to_string(rotate);
  }
  // A fractional budget with outliers: both reported, the outliers counted.
  QuantizeOptions o = options_for("W2A16", RotationMode::kHadamard, WeightMethod::kClaq);
  o.w_bits_budget = 2.12;
  o.outlier_fraction = 0.01;
  const QuantizationResult r = quantize_model(fp, o, calib, calibration_backend());
  const nlohmann::json bits = r.report.to_json().at("claq");
  EXPECT_NEAR(bits.at("index_bits_per_weight").get<double>(), 2.12, 0.02);
  EXPECT_NEAR(bits.at("outliers").get<double>() / bits.at("weights").get<double>(), 0.01, 1e-3);
  EXPECT_THROW(quantize_model(fp, o, {}, calibration_backend()), Error);  // CLAQ needs calibration data
  EXPECT_NE(r.report.to_text().find("effective"), std::string::npos);
  // The file stores the codebooks; loaded, they give the weights the pipeline ran,
  // and the model (through the codebook kernels) the same logits up to FP32 summation order.
  const std::string path = test::temp_dir() + "/claq.quarot.safetensors";
  save_quantization_result(path, r, o, "{}", "synthetic");
  const LoadedQuantizedModel loaded = load_quantized_model(path);
  ASSERT_TRUE(loaded.encoded.count("layers.1.w_down"));
  EXPECT_EQ(loaded.encoded.at("layers.1.w_down").kind, WeightKind::kCodebook);
  EXPECT_EQ(loaded.dequantized_weights().layers[1].w_down.data, r.weights.layers[1].w_down.data);
  EXPECT_EQ(loaded.info["options"]["claq"]["w_bits_budget"].get<double>(), 2.12);
  LlamaModel model(loaded.weights, loaded.recipe, make_cpu_backend(), loaded.encoded);
  KvCache cache = model.make_cache(static_cast<int64_t>(tokens.size()));
  std::vector<float> logits;
  model.forward(tokens.data(), static_cast<int64_t>(tokens.size()), cache, logits, true);
  EXPECT_LT(max_rel_err(logits, all_logits(r.weights, r.recipe, tokens)), 1e-4);
  // Re-targeted to a 4-bit KV cache: the codebooks are written as stored (not
  // dequantized to FP32), the cache is 4-bit, and the file is as small as the source
  // (a few bytes of metadata apart).
  QuantizeOptions kv4 = o;
  kv4.scheme = parse_quant_scheme("W2A16KV4");
  const std::string kv4_path = test::temp_dir() + "/claq_kv4.quarot.safetensors";
  const RetargetReport rk = retarget_runtime_scheme(path, kv4_path, kv4);
  EXPECT_EQ(rk.scheme, "W2A16KV4");
  const LoadedQuantizedModel lk = load_quantized_model(kv4_path);
  ASSERT_TRUE(lk.encoded.count("layers.1.w_down"));
  EXPECT_EQ(lk.encoded.at("layers.1.w_down").kind, WeightKind::kCodebook);
  EXPECT_EQ(lk.dequantized_weights().layers[1].w_down.data, r.weights.layers[1].w_down.data);
  EXPECT_EQ(lk.recipe.k_cache.bits, 4);
  EXPECT_EQ(lk.recipe.v_cache.bits, 4);
  EXPECT_TRUE(loaded.recipe.k_cache.bits == 0 || loaded.recipe.k_cache.bits >= 16);  // the source: FP cache
  EXPECT_LT(std::filesystem::file_size(kv4_path), std::filesystem::file_size(path) + 4096);
  EXPECT_GT(std::filesystem::file_size(kv4_path) + 4096, std::filesystem::file_size(path));
  // With 8-bit activations: the same codebooks (calibration runs without activation
  // quantization), and the runtime quantizes the activations.
  QuantizeOptions a8 = o;
  a8.scheme = parse_quant_scheme("W2A8");
  const QuantizationResult r8 = quantize_model(fp, a8, calib, calibration_backend());
  EXPECT_EQ(r8.recipe.act.bits, 8);
  EXPECT_EQ(r8.codebooks.at("layers.0.wq").indices, r.codebooks.at("layers.0.wq").indices);
}

TEST_F(QuarotPipeline, CalibratingThroughTheQuantizedModel) {
  std::vector<std::vector<int32_t>> calib;
  for (int i = 0; i < 4; ++i) calib.push_back(text_like_tokens(64, config.vocab_size, 300 + i));
  auto gptq = [&](const std::string& scheme, bool quantized) {
    QuantizeOptions o = options_for(scheme, RotationMode::kHadamard, WeightMethod::kGptq);
    o.calib_quantized = quantized;
    return quantize_model(fp, o, calib, calibration_backend());
  };
  // Nothing to quantize at run time besides the weights: the same calibration.
  EXPECT_EQ(gptq("W4A16", true).weights.layers[1].w_down.data, gptq("W4A16", false).weights.layers[1].w_down.data);
  // With 4-bit activations and KV, layer 0's Hessians (its inputs are the embeddings,
  // identical in both) come from quantized inputs, and layer 1 sees layer 0 as deployed.
  const QuantizationResult plain = gptq("W4A4KV4", false), through = gptq("W4A4KV4", true);
  EXPECT_NE(through.weights.layers[0].wq.data, plain.weights.layers[0].wq.data);
  EXPECT_NE(through.weights.layers[1].w_down.data, plain.weights.layers[1].w_down.data);
  EXPECT_EQ(through.recipe.act.bits, 4);
  // The option travels with the file's options.
  QuantizeOptions o;
  o.calib_quantized = true;
  EXPECT_TRUE(quantize_options_from_json(to_json(o), "test").calib_quantized);
}

TEST_F(QuarotPipeline, GptqWithoutCalibrationDataIsAnError) {
  EXPECT_THROW(quantize_model(fp, options_for("W4A16", RotationMode::kHadamard, WeightMethod::kGptq), {}, calibration_backend()), Error);
  // Token ids outside the vocabulary.
  std::vector<std::vector<int32_t>> bad = {std::vector<int32_t>(16, static_cast<int32_t>(config.vocab_size))};
  EXPECT_THROW(quantize_model(fp, options_for("W4A16", RotationMode::kHadamard, WeightMethod::kGptq), bad, calibration_backend()), Error);
}

TEST_F(QuarotPipeline, ReportDescribesTheRun) {
  const QuantizationResult r = quantize_model(fp, options_for("W4A4KV4", RotationMode::kHadamard), {}, calibration_backend());
  EXPECT_EQ(r.report.scheme, "W4A4KV4");
  EXPECT_EQ(r.report.weight_method, "rtn");
  EXPECT_EQ(r.report.rotation.mode, "hadamard");
  const std::string text = r.report.to_text();
  EXPECT_NE(text.find("W4A4KV4"), std::string::npos);
  EXPECT_NE(text.find("4-bit sym per token (clip 0.9)"), std::string::npos) << text;
  EXPECT_NE(text.find("4-bit asym group 16 (clip 0.95)"), std::string::npos) << text;
  const nlohmann::json j = r.report.to_json();
  EXPECT_EQ(j["scheme"], "W4A4KV4");
  EXPECT_GE(j["total_seconds"].get<double>(), 0.0);
}

TEST_F(QuarotPipeline, SaveLoadRoundTripGivesIdenticalLogits) {
  QuantizeOptions o = options_for("W4A4KV4", RotationMode::kHadamard);
  o.intact_kv = true;
  const QuantizationResult r = quantize_model(fp, o, {}, calibration_backend());
  const std::string path = test::temp_dir() + "/tiny.quarot.safetensors";
  save_quantization_result(path, r, o, "{}", "synthetic");
  ASSERT_TRUE(is_quantized_model_file(path));
  const LoadedQuantizedModel loaded = load_quantized_model(path, true);
  EXPECT_EQ(loaded.info["scheme"], "W4A4KV4");
  EXPECT_EQ(loaded.qweights.size(), static_cast<size_t>(7 * config.n_layers));
  EXPECT_EQ(loaded.qweights.at("layers.1.w_up").codes, r.layers[1].w_up.codes);
  EXPECT_TRUE(loaded.recipe.intact_kv);
  EXPECT_EQ(all_logits(loaded.weights, loaded.recipe, tokens), all_logits(r.weights, r.recipe, tokens));
}

// Weights do not depend on the activation scheme, so re-targeting a W4A16 file to
// W4A4KV4 must give exactly the model a direct W4A4KV4 quantization gives.
TEST_F(QuarotPipeline, RetargetedSchemeEqualsDirectQuantization) {
  const QuantizeOptions w4 = options_for("W4A16", RotationMode::kHadamard);
  const std::string src = test::temp_dir() + "/w4a16.quarot.safetensors";
  save_quantization_result(src, quantize_model(fp, w4, {}, calibration_backend()), w4, "{}", "synthetic");

  QuantizeOptions target = options_for("W4A4KV4", RotationMode::kHadamard);
  target.intact_kv = true;
  target.a_group = 8;
  const std::string out = test::temp_dir() + "/w4a4kv4.retargeted.safetensors";
  const RetargetReport rep = retarget_runtime_scheme(src, out, target);
  EXPECT_EQ(rep.source_scheme, "W4A16");
  EXPECT_EQ(rep.scheme, "W4A4KV4");

  const QuantizationResult direct = quantize_model(fp, target, {}, calibration_backend());
  const LoadedQuantizedModel got = load_quantized_model(out, true);
  EXPECT_EQ(got.info["scheme"], "W4A4KV4");
  EXPECT_EQ(got.info["weights_from"]["scheme"], "W4A16");
  EXPECT_EQ(got.recipe.act.bits, 4);
  EXPECT_EQ(got.recipe.act.group, 8);
  EXPECT_TRUE(got.recipe.intact_kv);
  EXPECT_EQ(got.qweights.at("layers.0.wq").codes, direct.layers[0].wq.codes);
  EXPECT_EQ(all_logits(got.weights, got.recipe, tokens), all_logits(direct.weights, direct.recipe, tokens));

  // Another weight width needs a new quantization; nothing is written.
  const std::string bad = test::temp_dir() + "/w8a8.retargeted.safetensors";
  try {
    retarget_runtime_scheme(src, bad, options_for("W8A8", RotationMode::kHadamard));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("4-bit"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(bad));
}

// Per-slot widths: every slot back at 16 bits is the rotated FP model exactly; one
// slot at 16 is neither that nor the uniform A4 model; the file keeps the overrides.
TEST_F(QuarotPipeline, PerSlotActivationWidthsReachTheLinears) {
  const QuantizeOptions plain = options_for("W16A4", RotationMode::kHadamard);
  QuantizeOptions all_fp = plain;
  all_fp.a_bits_at = {{LinearSlot::kQkv, 16}, {LinearSlot::kO, 16}, {LinearSlot::kGateUp, 16}, {LinearSlot::kDown, 16}};
  QuantizeOptions down8 = plain;
  down8.a_bits_at = {{LinearSlot::kDown, 8}};
  const QuantizationResult r_plain = quantize_model(fp, plain, {}, calibration_backend());
  const QuantizationResult r_all = quantize_model(fp, all_fp, {}, calibration_backend());
  const QuantizationResult r_down = quantize_model(fp, down8, {}, calibration_backend());
  EXPECT_EQ(r_down.recipe.act_for(LinearSlot::kDown).bits, 8);
  EXPECT_FLOAT_EQ(r_down.recipe.act_for(LinearSlot::kDown).clip_ratio, 1.0f);  // the default for 8 bits
  EXPECT_EQ(r_down.recipe.act_for(LinearSlot::kQkv).bits, 4);

  RuntimeRecipe rotation_only = r_plain.recipe;
  rotation_only.act = ActQuantSpec{};
  const auto want_fp = all_logits(r_plain.weights, rotation_only, tokens);
  EXPECT_EQ(all_logits(r_all.weights, r_all.recipe, tokens), want_fp);
  const auto a4 = all_logits(r_plain.weights, r_plain.recipe, tokens);
  const auto mixed = all_logits(r_down.weights, r_down.recipe, tokens);
  EXPECT_NE(mixed, a4);
  EXPECT_NE(mixed, want_fp);
  EXPECT_LT(rms_rel_err(mixed, want_fp), rms_rel_err(a4, want_fp));

  const std::string path = test::temp_dir() + "/down8.quarot.safetensors";
  save_quantization_result(path, r_down, down8, "{}", "synthetic");
  const LoadedQuantizedModel loaded = load_quantized_model(path);
  EXPECT_EQ(loaded.recipe.act_for(LinearSlot::kDown).bits, 8);
  EXPECT_EQ(all_logits(loaded.dequantized_weights(), loaded.recipe, tokens), mixed);

  QuantizeOptions bad = plain;
  bad.a_bits_at = {{LinearSlot::kLmHead, 8}};
  EXPECT_THROW(bad.validate(), Error);
  bad.a_bits_at = {{LinearSlot::kDown, 3}};
  EXPECT_NO_THROW(bad.validate());
  bad.a_bits_at = {{LinearSlot::kDown, 9}};
  EXPECT_THROW(bad.validate(), Error);
  QuantizeOptions weights_only = options_for("W4A16", RotationMode::kHadamard);
  weights_only.a_bits_at = {{LinearSlot::kDown, 8}};
  EXPECT_THROW(weights_only.validate(), Error);
}

}  // namespace
}  // namespace quarot
