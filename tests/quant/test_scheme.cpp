#include <gtest/gtest.h>

#include "common/error.h"
#include "model/weights.h"
#include "quant/scheme.h"

namespace quarot {
namespace {

struct Expected {
  const char* name;
  int w, a, k, v;
};

TEST(QuantScheme, PresetsHaveThePaperBitWidths) {
  const Expected table[] = {
      {"W16A16", 16, 16, 16, 16}, {"W8A8", 8, 8, 16, 16},   {"W6A6", 6, 6, 16, 16},  {"W4A16", 4, 16, 16, 16},
      {"W4A8KV4", 4, 8, 4, 4},    {"W4A4KV4", 4, 4, 4, 4}, {"K4V4", 16, 16, 4, 4},
  };
  for (const Expected& e : table) {
    const QuantScheme s = parse_quant_scheme(e.name);
    EXPECT_EQ(s.name, e.name);
    EXPECT_EQ(s.w_bits, e.w) << e.name;
    EXPECT_EQ(s.a_bits, e.a) << e.name;
    EXPECT_EQ(s.k_bits, e.k) << e.name;
    EXPECT_EQ(s.v_bits, e.v) << e.name;
  }
  EXPECT_EQ(preset_scheme_names().size(), std::size(table));
}

TEST(QuantScheme, GenericNamesAndCanonicalSpelling) {
  QuantScheme s = parse_quant_scheme("w4a4kv8");
  EXPECT_EQ(s.name, "W4A4KV8");
  EXPECT_EQ(s.w_bits, 4);
  EXPECT_EQ(s.a_bits, 4);
  EXPECT_EQ(s.k_bits, 8);
  EXPECT_EQ(s.v_bits, 8);

  s = parse_quant_scheme("W4A8");
  EXPECT_EQ(s.name, "W4A8");
  EXPECT_EQ(s.k_bits, 16);
  EXPECT_EQ(s.v_bits, 16);

  s = parse_quant_scheme("W3A16K8V4");
  EXPECT_EQ(s.name, "W3A16K8V4");
  EXPECT_EQ(s.k_bits, 8);
  EXPECT_EQ(s.v_bits, 4);

  s = parse_quant_scheme("W4");
  EXPECT_EQ(s.name, "W4A16");
  EXPECT_TRUE(s.quantizes_weights());
  EXPECT_FALSE(s.quantizes_activations());
  EXPECT_FALSE(s.quantizes_kv());

  s = parse_quant_scheme("KV8");
  EXPECT_EQ(s.name, "K8V8");
  EXPECT_EQ(s.w_bits, 16);
  EXPECT_TRUE(s.quantizes_kv());
}

void expect_error_containing(const std::string& name, const std::string& part) {
  try {
    parse_quant_scheme(name);
    ADD_FAILURE() << "no error for '" << name << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(QuantScheme, ErrorsNameTheProblem) {
  expect_error_containing("W4X4", "unknown quantization scheme 'W4X4'");
  expect_error_containing("W4X4", "W4A4KV4");  // lists the valid names
  expect_error_containing("", "empty");
  expect_error_containing("W4A4KV", "bit width");
  expect_error_containing("A4W4", "unexpected");
  expect_error_containing("K4", "followed by V");
  expect_error_containing("W9A9", "9 bits is out of range");
  expect_error_containing("W1A4", "1 bits is out of range");
  expect_error_containing("W4A32", "32 bits is out of range");
  expect_error_containing("W4A4KV12", "12 bits is out of range");
}

TEST(QuantizeOptions, DefaultsAndActivationClip) {
  QuantizeOptions o;
  EXPECT_EQ(o.scheme.name, "W4A4KV4");
  EXPECT_TRUE(o.w_sym);
  EXPECT_TRUE(o.w_clip_search);
  EXPECT_FLOAT_EQ(o.resolved_a_clip(), 0.9f);
  o.scheme = parse_quant_scheme("W8A8");
  EXPECT_FLOAT_EQ(o.resolved_a_clip(), 1.0f);
  o.a_clip = 0.8f;
  EXPECT_FLOAT_EQ(o.resolved_a_clip(), 0.8f);
  EXPECT_EQ(o.gptq.block, 128);
  EXPECT_DOUBLE_EQ(o.gptq.percdamp, 0.01);
  EXPECT_FLOAT_EQ(o.kv_clip, 0.95f);
  EXPECT_FALSE(o.kv_sym);
  EXPECT_EQ(o.lm_head_bits, 16);
  EXPECT_NO_THROW(o.validate());
}

TEST(QuantizeOptions, RejectsBadValues) {
  QuantizeOptions o;
  o.kv_clip = 1.5f;
  EXPECT_THROW(o.validate(), Error);
  o = QuantizeOptions{};
  o.lm_head_bits = 12;
  EXPECT_THROW(o.validate(), Error);
  o = QuantizeOptions{};
  o.weights = WeightMethod::kGptq;
  o.gptq.act_order = true;
  o.w_group = 32;
  EXPECT_THROW(o.validate(), Error);
  o.gptq.static_groups = true;
  EXPECT_NO_THROW(o.validate());
}

TEST(QuantizeOptions, ClaqBudgetAndOutliers) {
  EXPECT_EQ(parse_weight_method("claq"), WeightMethod::kClaq);
  EXPECT_EQ(to_string(WeightMethod::kClaq), "claq");
  QuantizeOptions o;
  o.scheme = parse_quant_scheme("W2A16");
  o.weights = WeightMethod::kClaq;
  o.w_bits_budget = 2.12;
  o.outlier_fraction = 0.005;
  EXPECT_NO_THROW(o.validate());
  EXPECT_DOUBLE_EQ(o.resolved_w_bits(), 2.12);
  auto message = [](const QuantizeOptions& q) -> std::string {
    try {
      q.validate();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  QuantizeOptions b = o;
  b.w_bits_budget = 8.5;
  EXPECT_EQ(message(b), "weight bit budget 8.5 is out of range 2..8");
  b = o;
  b.w_bits_budget = 1.5;
  EXPECT_EQ(message(b), "weight bit budget 1.5 is out of range 2..8");
  b = o;
  b.outlier_fraction = 0.2;
  EXPECT_EQ(message(b), "outlier fraction 0.2 is out of range 0..0.1");
  b = o;
  b.outlier_fraction = -0.001;
  EXPECT_NE(message(b), "");
  b = o;
  b.weights = WeightMethod::kGptq;
  b.outlier_fraction = 0.0;
  EXPECT_EQ(message(b), "a fractional weight bit budget (2.12) needs the CLAQ weight quantizer");
  b.w_bits_budget = 2.0;
  EXPECT_EQ(message(b), "");  // an integral budget is the scheme's width for any quantizer
  b = o;
  b.weights = WeightMethod::kRtn;
  b.w_bits_budget = 0.0;
  EXPECT_EQ(message(b), "keeping a fraction of the weights as outliers (0.005) needs the CLAQ weight quantizer");
  b = o;
  b.scheme = parse_quant_scheme("W3A16");
  EXPECT_EQ(message(b), "weight bit budget 2.12 does not match the scheme's weight width 3 (W3A16)");
  b = o;
  b.w_group = 64;
  EXPECT_EQ(message(b), "CLAQ quantizes with per-column codebooks; weight groups (64) do not apply");
  // Without a budget CLAQ uses the scheme's width.
  b = o;
  b.w_bits_budget = 0.0;
  EXPECT_DOUBLE_EQ(b.resolved_w_bits(), 2.0);
  // The options travel through JSON.
  const QuantizeOptions back = quantize_options_from_json(to_json(o), "test");
  EXPECT_EQ(back.weights, WeightMethod::kClaq);
  EXPECT_DOUBLE_EQ(back.w_bits_budget, 2.12);
  EXPECT_DOUBLE_EQ(back.outlier_fraction, 0.005);
  EXPECT_EQ(to_json(back), to_json(o));
}

TEST(QuantizeOptions, GroupsMustDivideTheModelDimensions) {
  const LlamaConfig c = tiny_test_config();  // hidden 64, ffn 160, head_dim 16
  QuantizeOptions o;
  o.w_group = 32;
  EXPECT_NO_THROW(o.validate_for(c, "tiny"));
  o.w_group = 64;  // does not divide ffn 160
  try {
    o.validate_for(c, "tiny");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "tiny: weight group 64 does not divide 160");
  }
  o.w_group = 0;
  o.kv_group = 5;
  EXPECT_THROW(o.validate_for(c, "tiny"), Error);
  o.kv_group = 8;
  o.a_group = 3;
  EXPECT_THROW(o.validate_for(c, "tiny"), Error);
}

TEST(QuantizeOptions, FillsRuntimeRecipeSpecs) {
  QuantizeOptions o;
  o.scheme = parse_quant_scheme("W4A4K8V4");
  o.kv_group = 8;
  o.intact_kv = true;
  RuntimeRecipe r;
  r.norms_folded = true;
  apply_quant_specs(o, r);
  EXPECT_EQ(r.act.bits, 4);
  EXPECT_FLOAT_EQ(r.act.clip_ratio, 0.9f);
  EXPECT_TRUE(r.act.symmetric);
  EXPECT_FALSE(r.lm_head_act.enabled());
  EXPECT_EQ(r.k_cache.bits, 8);
  EXPECT_EQ(r.v_cache.bits, 4);
  EXPECT_EQ(r.v_cache.group, 8);
  EXPECT_FALSE(r.v_cache.symmetric);
  EXPECT_FLOAT_EQ(r.k_cache.clip_ratio, 0.95f);
  EXPECT_TRUE(r.intact_kv);
  EXPECT_TRUE(r.norms_folded);  // untouched

  o.scheme = parse_quant_scheme("W4A16");
  apply_quant_specs(o, r);
  EXPECT_FALSE(r.act.enabled());
  EXPECT_FALSE(r.k_cache.enabled());
}

TEST(QuantizeOptions, JsonRoundTrip) {
  QuantizeOptions o;
  o.scheme = parse_quant_scheme("W4A8KV4");
  o.weights = WeightMethod::kGptq;
  o.rotate = RotationMode::kRandom;
  o.seed = 1234567890123ull;
  o.w_sym = false;
  o.w_group = 64;
  o.gptq.act_order = true;
  o.gptq.static_groups = true;
  o.gptq.percdamp = 0.05;
  o.calib_windows = 7;
  const QuantizeOptions back = quantize_options_from_json(to_json(o), "test");
  EXPECT_EQ(to_json(back), to_json(o));
  EXPECT_EQ(back.seed, o.seed);
  EXPECT_EQ(back.weights, WeightMethod::kGptq);
  EXPECT_THROW(quantize_options_from_json(nlohmann::json{{"w_group", "x"}}, "f"), Error);
  EXPECT_THROW(quantize_options_from_json(nlohmann::json{{"scheme", "W4Q"}}, "f"), Error);
}

// Per-slot widths are keyed by LinearSlot in the library and by slot name in JSON.
TEST(QuantizeOptions, SlotWidthsAreNamedInJson) {
  QuantizeOptions o;
  o.a_bits_at = {{LinearSlot::kDown, 8}, {LinearSlot::kQkv, 16}};
  const nlohmann::json j = to_json(o);
  EXPECT_EQ(j.at("a_bits_at"), (nlohmann::json{{"down", 8}, {"qkv", 16}}));
  const QuantizeOptions back = quantize_options_from_json(j, "test");
  EXPECT_EQ(back.a_bits_at, o.a_bits_at);
  for (const char* bad : {"lm_head", "mlp", ""})
    EXPECT_THROW(quantize_options_from_json(nlohmann::json{{"a_bits_at", {{bad, 8}}}}, "f"), Error) << bad;
}

}  // namespace
}  // namespace quarot
