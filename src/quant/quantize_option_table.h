#pragma once
// Every knob of QuantizeOptions, declared once in one list: its JSON key, the word a
// command line spells it with, what it is called in messages, its help text and, for
// numbers, its meaningful range. The JSON writer and reader (to_json,
// quantize_options_from_json), validate()'s range checks and the `quantize`
// command's flags all iterate this list, so an option is added in one place.
//
//   for_each_quantize_option(options, visitor)
// calls, in declaration order, for each option
//   visitor(const OptionField& field, T& member)                       or
//   visitor(const OptionField& field, T& member, const ValueRange<T>& range)   (numbers with a range)
// with T one of QuantScheme, WeightMethod, RotationMode, bool, int, int64_t, uint64_t,
// float, double, std::string, std::map<LinearSlot, int> (const T& for const options).
//
// Text (a command line's spelling) becomes a value with assign_option_text, which
// checks ranges and names the option in its one-line error; a value becomes text
// for help screens with option_value_text.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>

#include "common/value_range.h"
#include "quant/scheme.h"

namespace quarot {

struct OptionField {
  std::string_view key{};    // JSON key, inside `group` when that is not empty
  std::string_view group{};  // JSON sub-object ("gptq", "claq") or empty
  std::string_view flag{};   // the word a command line uses, e.g. "a-clip"
  std::string_view what{};   // the name in messages, e.g. "activation clip ratio"
  std::string_view help{};
  // bool options that default to true: the flag turns them off (w_sym <- "w-asym").
  bool flag_clears = false;
  // 0 means "not set" and skips the range check (e.g. a CLAQ budget of 0 = the scheme's width).
  bool zero_is_unset = false;
  // The command line also accepts a percentage, e.g. "0.5%".
  bool percent = false;
  // The option may be given several times; each adds an entry (SLOT=BITS).
  bool repeatable = false;
};

template <typename Options, typename Visitor>
  requires std::is_same_v<std::remove_const_t<Options>, QuantizeOptions>
void for_each_quantize_option(Options& o, Visitor&& v) {
  using Q = QuantizeOptions;
  v(OptionField{.key = "scheme", .flag = "scheme", .what = "scheme",
                .help = "bit widths, e.g. W4A4KV4, W4A16, W8A8, K4V4"},
    o.scheme);
  v(OptionField{.key = "weights", .flag = "weights", .what = "weight quantizer",
                .help = "weight quantizer: rtn, gptq or claq (column codebooks, docs/claq.md)"},
    o.weights);
  v(OptionField{.key = "rotate", .flag = "rotate", .what = "rotation",
                .help = "residual rotation: hadamard, random or none"},
    o.rotate);
  v(OptionField{.key = "seed", .flag = "seed", .what = "seed", .help = "seed of the rotations and calibration sampling"},
    o.seed);
  v(OptionField{.key = "seed_trials", .flag = "seed-trials", .what = "seed trials",
                .help = "try N rotation seeds (seed, seed+1, ...) and keep the one with the lowest NLL on "
                        "calibration windows (best-of-N rotations)"},
    o.seed_trials, Q::kSeedTrials);
  v(OptionField{.key = "seed_trial_windows", .flag = "seed-trial-windows", .what = "seed trial windows",
                .help = "calibration windows that score each seed"},
    o.seed_trial_windows, Q::kSeedTrialWindows);
  v(OptionField{.key = "w_sym", .flag = "w-asym", .what = "symmetric weight grid",
                .help = "asymmetric weight grid (default symmetric)", .flag_clears = true},
    o.w_sym);
  v(OptionField{.key = "w_group", .flag = "w-group", .what = "weight group",
                .help = "weight group size (0 = per output channel)"},
    o.w_group, Q::kGroup);
  v(OptionField{.key = "w_clip_search", .flag = "no-clip-search", .what = "weight clip search",
                .help = "no MSE search of the weight clipping range", .flag_clears = true},
    o.w_clip_search);
  v(OptionField{.key = "a_clip", .flag = "a-clip", .what = "activation clip ratio",
                .help = "activation clip ratio (0 = 0.9 at <= 4 bits, else 1.0)"},
    o.a_clip, Q::kActClip);
  v(OptionField{.key = "a_group", .flag = "a-group", .what = "activation group",
                .help = "activation group size (0 = one scale per token)"},
    o.a_group, Q::kGroup);
  v(OptionField{.key = "a_sym", .flag = "a-asym", .what = "symmetric activation grid",
                .help = "asymmetric activation grid (default symmetric)", .flag_clears = true},
    o.a_sym);
  v(OptionField{.key = "a_bits_at", .flag = "a-bits-at", .what = "per-slot activation width",
                .help = "another width for one linear input, SLOT=BITS with SLOT qkv|o|gate_up|down (repeatable; "
                        "e.g. down=8)",
                .repeatable = true},
    o.a_bits_at);
  v(OptionField{.key = "kv_clip", .flag = "kv-clip", .what = "KV cache clip ratio", .help = "KV cache clip ratio"},
    o.kv_clip, Q::kKvClip);
  v(OptionField{.key = "kv_group", .flag = "kv-group", .what = "KV cache group",
                .help = "KV cache group size (0 = head_dim)"},
    o.kv_group, Q::kGroup);
  v(OptionField{.key = "kv_sym", .flag = "kv-sym", .what = "symmetric KV cache grid",
                .help = "symmetric KV cache grid (default asymmetric)"},
    o.kv_sym);
  v(OptionField{.key = "intact_kv", .flag = "intact-kv", .what = "IntactKV",
                .help = "keep the first token's K/V in full precision (IntactKV)"},
    o.intact_kv);
  v(OptionField{.key = "block", .group = "gptq", .flag = "gptq-block", .what = "GPTQ block size",
                .help = "GPTQ lazy-batch width (columns updated together)"},
    o.gptq.block, Q::kGptqBlock);
  v(OptionField{.key = "percdamp", .group = "gptq", .flag = "percdamp", .what = "GPTQ percdamp",
                .help = "GPTQ damping, fraction of mean(diag H)"},
    o.gptq.percdamp, Q::kPercdamp);
  v(OptionField{.key = "act_order", .group = "gptq", .flag = "act-order", .what = "GPTQ act order",
                .help = "GPTQ: quantize columns by decreasing Hessian diagonal"},
    o.gptq.act_order);
  v(OptionField{.key = "static_groups", .group = "gptq", .flag = "static-groups", .what = "GPTQ static groups",
                .help = "GPTQ with weight groups: group scales from the original weights (needed with act order)"},
    o.gptq.static_groups);
  v(OptionField{.key = "w_bits_budget", .group = "claq", .flag = "w-bits", .what = "weight bit budget",
                .help = "CLAQ: average weight index bits, fractional allowed (2.12 = 2-bit columns, outlier-rich ones "
                        "4-bit); without a scheme the scheme becomes W<integer part>A16",
                .zero_is_unset = true},
    o.w_bits_budget, Q::kWBitsBudget);
  v(OptionField{.key = "outlier_fraction", .group = "claq", .flag = "outliers", .what = "outlier fraction",
                .help = "CLAQ: fraction of the weights kept exact in FP16, e.g. 0.5% or 0.005 (at most 10%)",
                .percent = true},
    o.outlier_fraction, Q::kOutlierFraction);
  v(OptionField{.key = "calib_quantized", .flag = "calib-quantized", .what = "quantized calibration",
                .help = "GPTQ: calibrate through the quantized model (activation/KV quantization on, Hessians from "
                        "quantized inputs); beyond the paper"},
    o.calib_quantized);
  v(OptionField{.key = "calib_path", .flag = "calib", .what = "calibration text",
                .help = "calibration text for GPTQ, CLAQ and seed trials (default: WikiText-2 validation from "
                        "$QUAROT_DATA or ../shared/data)"},
    o.calib_path);
  v(OptionField{.key = "calib_windows", .flag = "calib-windows", .what = "calibration windows",
                .help = "number of calibration windows"},
    o.calib_windows, Q::kCalibWindows);
  v(OptionField{.key = "calib_seqlen", .flag = "calib-seqlen", .what = "calibration sequence length",
                .help = "tokens per calibration window"},
    o.calib_seqlen, Q::kCalibSeqlen);
  v(OptionField{.key = "lm_head_bits", .flag = "lm-head-bits", .what = "lm_head",
                .help = "lm_head weights: 16 or 32 (floats of that width) or 2..8 (RTN)"},
    o.lm_head_bits);
  v(OptionField{.key = "embed_bits", .flag = "embed-bits", .what = "embedding",
                .help = "embedding table: 16 or 32 (floats of that width) or 2..8 (per-row RTN; a tied lm_head "
                        "shares it)"},
    o.embed_bits);
}

// Sets `member` from its text spelling, e.g. "0.9", "W4A4KV4", "down=8" (a repeatable
// option adds one entry per call). Throws Error "<what> ...: <problem>".
void assign_option_text(const OptionField& f, std::string_view text, QuantScheme& member);
void assign_option_text(const OptionField& f, std::string_view text, WeightMethod& member);
void assign_option_text(const OptionField& f, std::string_view text, RotationMode& member);
void assign_option_text(const OptionField& f, std::string_view text, std::string& member);
void assign_option_text(const OptionField& f, std::string_view text, std::map<LinearSlot, int>& member);
void assign_option_text(const OptionField& f, std::string_view text, bool& member);
void assign_option_text(const OptionField& f, std::string_view text, int& member);
void assign_option_text(const OptionField& f, std::string_view text, uint64_t& member);
void assign_option_text(const OptionField& f, std::string_view text, int64_t& member,
                        const ValueRange<int64_t>* range = nullptr);
void assign_option_text(const OptionField& f, std::string_view text, float& member,
                        const ValueRange<float>* range = nullptr);
void assign_option_text(const OptionField& f, std::string_view text, double& member,
                        const ValueRange<double>* range = nullptr);

// The value as the command line would spell it (for help screens' defaults).
std::string option_value_text(const QuantScheme& v);
std::string option_value_text(WeightMethod v);
std::string option_value_text(RotationMode v);
std::string option_value_text(const std::string& v);
std::string option_value_text(const std::map<LinearSlot, int>& v);
std::string option_value_text(bool v);
template <typename T>
  requires std::is_arithmetic_v<T>
std::string option_value_text(T v) {
  return fmt::format("{}", v);
}

}  // namespace quarot
