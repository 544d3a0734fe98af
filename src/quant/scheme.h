#pragma once
// What to quantize and how: a QuantScheme names the bit widths (W4A4KV4 = int4
// weights, int4 activations, int4 K and V cache), QuantizeOptions holds every knob
// of the quantization pass (weight quantizer, rotation, clipping, groups, GPTQ,
// calibration). Defaults follow the QuaRot paper's main results.
#include "transform/residual_rotation.h"
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/value_range.h"
#include "model/config.h"
#include "model/linear_slots.h"
#include "model/runtime_recipe.h"

namespace quarot {

struct QuantScheme {
  std::string name;  // canonical spelling, e.g. "W4A4KV4"
  int w_bits = 16;
  int a_bits = 16;
  int k_bits = 16;
  int v_bits = 16;

  bool quantizes_weights() const { return w_bits < 16; }
  bool quantizes_activations() const { return a_bits < 16; }
  bool quantizes_kv() const { return k_bits < 16 || v_bits < 16; }
};

// Parses a scheme name, case-insensitively: the named presets (W16A16, W8A8, W6A6,
// W4A16, W4A8KV4, W4A4KV4, K4V4) or any combination "W<b>A<b>", "W<b>A<b>KV<b>",
// "W<b>A<b>K<b>V<b>", "K<b>V<b>", "KV<b>", "W<b>" with b in 2..8 or 16 (missing parts
// stay 16 = full precision). Throws Error naming the problem and the valid names.
QuantScheme parse_quant_scheme(std::string_view name);
// The named presets, for help texts.
const std::vector<std::string>& preset_scheme_names();
// Throws Error unless bits is 2..8 or 16. `what` names the field in the message.
void check_bits(int bits, std::string_view what);

enum class WeightMethod { kRtn, kGptq, kClaq };
std::string to_string(WeightMethod m);
std::string to_string(RotationMode m);
WeightMethod parse_weight_method(std::string_view s);  // "rtn" | "gptq" | "claq"
// RotationMode and parse_rotation_mode come from transform/residual_rotation.h.

struct GptqOptions {
  int64_t block = 128;        // lazy-batch width (columns updated together)
  double percdamp = 0.01;     // damping = percdamp * mean(diag H)
  bool act_order = false;     // quantize columns by descending Hessian diagonal
  bool static_groups = false; // group scales from the original weights, before any update
};

struct QuantizeOptions {
  // Meaningful ranges, declared once; quant/quantize_option_table.h lists every option
  // with its range, and validate(), the JSON reader and the command line derive from it.
  static constexpr ValueRange<int64_t> kSeedTrials{1, 1000};
  static constexpr ValueRange<int64_t> kSeedTrialWindows{1, 4096};
  static constexpr ValueRange<int64_t> kGroup{0, 65536};             // 0 = no groups
  static constexpr ValueRange<float> kActClip{0.0f, 1.0f};           // 0 = default for the width
  static constexpr ValueRange<float> kKvClip{0.0f, 1.0f, true};      // (0, 1]
  static constexpr ValueRange<double> kPercdamp{0.0, 10.0, true, true};
  static constexpr ValueRange<int64_t> kGptqBlock{1, 65536};
  static constexpr ValueRange<int64_t> kCalibWindows{1, 100000};
  static constexpr ValueRange<int64_t> kCalibSeqlen{1, 1 << 20};
  static constexpr ValueRange<double> kWBitsBudget{2.0, 8.0};        // CLAQ average index bits
  static constexpr ValueRange<double> kOutlierFraction{0.0, 0.1};    // CLAQ weights kept in FP16

  QuantScheme scheme = parse_quant_scheme("W4A4KV4");
  WeightMethod weights = WeightMethod::kRtn;
  RotationMode rotate = RotationMode::kHadamard;
  uint64_t seed = 0;
  // Best-of-N rotation seeds (quant/pipeline/seed_search.h): try seed, seed+1, ...,
  // seed+seed_trials-1 and keep the lowest NLL on seed_trial_windows calibration windows.
  int64_t seed_trials = 1;
  int64_t seed_trial_windows = 4;

  // Weights: per output channel (w_group 0) or per group of w_group input columns.
  bool w_sym = true;
  int64_t w_group = 0;
  bool w_clip_search = true;  // per-row MSE search of the clipping range (L2.4 norm)

  // Activations: dynamic per token. a_clip 0 = default for the width (0.9 at <= 4 bits, else 1.0).
  float a_clip = 0.0f;
  int64_t a_group = 0;
  bool a_sym = true;
  // Other widths for some decoder-layer inputs, e.g. {kDown: 8} (JSON and the
  // command line spell the slots "qkv", "o", "gate_up", "down"). 16 keeps that input
  // FP. Clip: a_clip if set, else the default for that width.
  std::map<LinearSlot, int> a_bits_at;

  // KV cache: per head vector (kv_group 0 = head_dim), asymmetric by default.
  float kv_clip = 0.95f;
  int64_t kv_group = 0;
  bool kv_sym = false;
  bool intact_kv = false;

  GptqOptions gptq;

  // CLAQ (quant/claq.h; weights kClaq): the average index bits per weight, which may
  // be fractional (2.12 = most columns at 2 bits, the outlier-rich ones at 4); 0 =
  // the scheme's weight width. When set, the scheme's weight width is its integer part.
  double w_bits_budget = 0.0;
  // CLAQ outlier reservation: this fraction of each matrix's weights stays FP16.
  double outlier_fraction = 0.0;
  double resolved_w_bits() const { return w_bits_budget > 0.0 ? w_bits_budget : scheme.w_bits; }

  // GPTQ calibration through the quantized model: activation and KV quantization on
  // while calibrating, Hessians from quantized inputs (beyond the paper, which
  // calibrates with them off). The weights then depend on the activation scheme.
  bool calib_quantized = false;

  std::string calib_path;
  int64_t calib_windows = 128;
  int64_t calib_seqlen = 2048;

  // lm_head weights by RTN (2..8 bits), or stored as 16- or 32-bit floats.
  int lm_head_bits = 16;
  // The embedding table by per-row RTN (2..8 bits), or stored as 16- or 32-bit
  // floats. With tied embeddings and lm_head_bits 16 or 32, lm_head shares the table.
  int embed_bits = 16;

  // Copies what is applied at run time (scheme, activation and KV options) from `o`,
  // keeping this object's weight, rotation and calibration options.
  void take_runtime_options(const QuantizeOptions& o) {
    scheme = o.scheme;
    a_clip = o.a_clip;
    a_group = o.a_group;
    a_sym = o.a_sym;
    a_bits_at = o.a_bits_at;
    kv_clip = o.kv_clip;
    kv_group = o.kv_group;
    kv_sym = o.kv_sym;
    intact_kv = o.intact_kv;
  }
  float resolved_a_clip() const { return resolved_a_clip(scheme.a_bits); }
  float resolved_a_clip(int bits) const { return a_clip > 0.0f ? a_clip : (bits <= 4 ? 0.9f : 1.0f); }
  // Checks values that do not depend on the model (bits, ratios, counts).
  void validate() const;
  // Also checks that groups divide the dimensions they split. `source` names the model.
  void validate_for(const LlamaConfig& config, const std::string& source) const;
};

// Fills the activation and KV quantizer specs of a runtime recipe from the options
// (rotations are transform/'s business and are left as they are).
void apply_quant_specs(const QuantizeOptions& options, RuntimeRecipe& recipe);

// Throws Error("<what> group <group> does not divide <size>") unless group is 0 or divides size.
void check_group_divides(int64_t group, int64_t size, std::string_view what);

nlohmann::json to_json(const QuantScheme& s);
nlohmann::json to_json(const QuantizeOptions& o);
// Reads options written by to_json; missing keys keep their defaults. `source` names the file.
QuantizeOptions quantize_options_from_json(const nlohmann::json& j, const std::string& source);

}  // namespace quarot
