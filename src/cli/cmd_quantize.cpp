#include <nlohmann/json.hpp>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/numeric_option.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/threads.h"
#include "model/loader.h"
#include "model/model_registry.h"
#include "quant/pipeline/calibration_data.h"
#include "quant/pipeline/quarot_pipeline.h"
#include "quant/pipeline/runtime_scheme.h"
#include "quant/quantized_model.h"
#include "tokenizer/tokenizer.h"

namespace quarot::cli {

namespace {

// "0.5%" -> 0.005, "0.005" -> 0.005.
double parse_fraction(const std::string& text, const char* flag) {
  std::string digits = text;
  double scale = 1.0;
  if (!digits.empty() && digits.back() == '%') {
    digits.pop_back();
    scale = 0.01;
  }
  double v = 0.0;
  const char* end = digits.data() + digits.size();
  const auto [ptr, ec] = std::from_chars(digits.data(), end, v);
  if (digits.empty() || ec != std::errc() || ptr != end) fail("{}: '{}' is not a fraction (e.g. 0.5% or 0.005)", flag, text);
  return v * scale;
}

}  // namespace

void add_quantize(CLI::App& app, Action& action) {
  struct Opts {
    std::string model = "smollm2-135m", scheme = "W4A4KV4", weights = "rtn", rotate = "hadamard";
    std::string calib, output, weights_from;
    uint64_t seed = 0;
    int64_t seed_trials = 1, seed_trial_windows = 4;
    int64_t calib_windows = 128, calib_seqlen = 2048, w_group = 0, a_group = 0, kv_group = 0;
    float a_clip = 0.0f, kv_clip = 0.95f;
    int lm_head_bits = 16, embed_bits = 16;
    double percdamp = 0.01, w_bits = 0.0;
    std::string outliers;
    bool scheme_given = false;
    bool w_asym = false, no_clip_search = false, intact_kv = false, act_order = false, force_calib = false;
    bool calib_quantized = false;
    bool a_asym = false, kv_sym = false, static_groups = false;
    std::vector<std::string> a_bits_at;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("quantize", "rotate (QuaRot) and quantize a model; writes a .quarot.safetensors file");
  cmd->add_option("-m,--model", o->model, "FP model: name, .gguf or HF dir")->capture_default_str();
  cmd->add_option("--scheme", o->scheme, "bit widths, e.g. W4A4KV4, W4A16, W8A8, K4V4")->capture_default_str();
  cmd->add_option("--weights", o->weights, "weight quantizer: rtn, gptq or claq (column codebooks, docs/claq.md)")
      ->capture_default_str();
  add_number(cmd, "--w-bits", o->w_bits,
             "CLAQ: average weight index bits, fractional allowed (2.12 = 2-bit columns, outlier-rich ones 4-bit); "
             "without --scheme the scheme becomes W<integer part>A16",
             QuantizeOptions::kWBitsBudget);
  cmd->add_option("--outliers", o->outliers,
                  "CLAQ: fraction of the weights kept exact in FP16, e.g. 0.5% or 0.005 (at most 10%)");
  cmd->add_option("--rotate", o->rotate, "residual rotation: hadamard, random or none")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of the rotations and calibration sampling")->capture_default_str();
  add_number(cmd, "--seed-trials", o->seed_trials,
             "try N rotation seeds (seed, seed+1, ...) and keep the one with the lowest NLL on calibration "
             "windows (best-of-N rotations)",
             QuantizeOptions::kSeedTrials)
      ->capture_default_str();
  add_number(cmd, "--seed-trial-windows", o->seed_trial_windows, "calibration windows that score each seed",
             QuantizeOptions::kSeedTrialWindows)
      ->capture_default_str();
  cmd->add_option("--calib", o->calib,
                  "calibration text for GPTQ and --seed-trials (default: WikiText-2 validation from $QUAROT_DATA "
                  "or ../shared/data)");
  add_number(cmd, "--calib-windows", o->calib_windows, "number of calibration windows", QuantizeOptions::kCalibWindows)
      ->capture_default_str();
  add_number(cmd, "--calib-seqlen", o->calib_seqlen, "tokens per calibration window", QuantizeOptions::kCalibSeqlen)
      ->capture_default_str();
  cmd->add_flag("--force-calib", o->force_calib, "allow a calibration file whose name contains 'test'");
  add_number(cmd, "--w-group", o->w_group, "weight group size (0 = per output channel)", QuantizeOptions::kGroup)
      ->capture_default_str();
  cmd->add_flag("--w-asym", o->w_asym, "asymmetric weight grid (default symmetric)");
  cmd->add_flag("--no-clip-search", o->no_clip_search, "no MSE search of the weight clipping range");
  add_number(cmd, "--a-clip", o->a_clip, "activation clip ratio (0 = 0.9 at <= 4 bits, else 1.0)",
             QuantizeOptions::kActClip);
  add_number(cmd, "--a-group", o->a_group, "activation group size (0 = one scale per token)", QuantizeOptions::kGroup)
      ->capture_default_str();
  cmd->add_option("--a-bits-at", o->a_bits_at,
                  "another width for one linear input, SLOT=BITS with SLOT qkv|o|gate_up|down (repeatable; e.g. down=8)");
  cmd->add_flag("--a-asym", o->a_asym, "asymmetric activation grid (default symmetric)");
  add_number(cmd, "--kv-clip", o->kv_clip, "KV cache clip ratio", QuantizeOptions::kKvClip)->capture_default_str();
  add_number(cmd, "--kv-group", o->kv_group, "KV cache group size (0 = head_dim)", QuantizeOptions::kGroup)
      ->capture_default_str();
  cmd->add_flag("--kv-sym", o->kv_sym, "symmetric KV cache grid (default asymmetric)");
  cmd->add_flag("--intact-kv", o->intact_kv, "keep the first token's K/V in full precision (IntactKV)");
  cmd->add_flag("--calib-quantized", o->calib_quantized,
                "GPTQ: calibrate through the quantized model (activation/KV quantization on, Hessians from "
                "quantized inputs); beyond the paper");
  cmd->add_flag("--act-order", o->act_order, "GPTQ: quantize columns by decreasing Hessian diagonal");
  cmd->add_flag("--static-groups", o->static_groups,
                "GPTQ with --w-group: group scales from the original weights (needed with --act-order)");
  cmd->add_option("--lm-head-bits", o->lm_head_bits, "lm_head weights: 16 or 32 (floats of that width) or 2..8 (RTN)")
      ->capture_default_str();
  cmd->add_option("--embed-bits", o->embed_bits,
                  "embedding table: 16 or 32 (floats of that width) or 2..8 (per-row RTN; a tied lm_head shares it)")
      ->capture_default_str();
  add_number(cmd, "--percdamp", o->percdamp, "GPTQ damping, fraction of mean(diag H)", QuantizeOptions::kPercdamp)
      ->capture_default_str();
  cmd->add_option("--weights-from", o->weights_from,
                  "reuse the weights of this quantized file (no calibration); only the activation/KV options apply")
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", o->output, "output file (.quarot.safetensors)")->required();
  cmd->add_flag("--json", o->json, "print the report as JSON on stdout");
  cmd->callback([o, cmd, &action] {
    o->scheme_given = cmd->count("--scheme") > 0;
    action = [o]() -> int {
      // A quantization can run for many minutes: find out now that its output can be written.
      check_output_writable(o->output);
      QuantizeOptions opt;
      std::string scheme = o->scheme;
      if (o->w_bits > 0.0 && !o->scheme_given)
        scheme = fmt::format("W{}A16", static_cast<int>(std::floor(o->w_bits)));
      opt.scheme = parse_quant_scheme(scheme);
      opt.w_bits_budget = o->w_bits;
      if (!o->outliers.empty()) opt.outlier_fraction = parse_fraction(o->outliers, "--outliers");
      opt.weights = parse_weight_method(o->weights);
      opt.rotate = parse_rotation_mode(o->rotate);
      opt.seed = o->seed;
      opt.seed_trials = o->seed_trials;
      opt.seed_trial_windows = o->seed_trial_windows;
      opt.w_sym = !o->w_asym;
      opt.w_group = o->w_group;
      opt.w_clip_search = !o->no_clip_search;
      opt.a_clip = o->a_clip;
      opt.a_group = o->a_group;
      opt.a_sym = !o->a_asym;
      for (const std::string& item : o->a_bits_at) {
        const size_t eq = item.find('=');
        int bits = 0;
        const char* end = item.data() + item.size();
        if (eq == std::string::npos || eq == 0 || std::from_chars(item.data() + eq + 1, end, bits).ptr != end ||
            eq + 1 == item.size())
          fail("--a-bits-at '{}': expected SLOT=BITS, e.g. down=8", item);
        const std::optional<LinearSlot> slot = parse_layer_slot(std::string_view(item).substr(0, eq));
        if (!slot) fail("--a-bits-at '{}': unknown slot (valid: {})", item, layer_slot_names());
        opt.a_bits_at[*slot] = bits;
      }
      opt.kv_clip = o->kv_clip;
      opt.kv_group = o->kv_group;
      opt.kv_sym = o->kv_sym;
      opt.intact_kv = o->intact_kv;
      opt.gptq.act_order = o->act_order;
      opt.gptq.percdamp = o->percdamp;
      opt.gptq.static_groups = o->static_groups;
      opt.calib_quantized = o->calib_quantized;
      opt.calib_windows = o->calib_windows;
      opt.lm_head_bits = o->lm_head_bits;
      opt.embed_bits = o->embed_bits;
      opt.calib_seqlen = o->calib_seqlen;
      if (!o->weights_from.empty()) {
        opt.validate();
        const auto t0 = std::chrono::steady_clock::now();
        const RetargetReport r = retarget_runtime_scheme(o->weights_from, o->output, opt);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (o->json) {
          nlohmann::json j = {{"scheme", r.scheme}, {"weights_from", o->weights_from},
                              {"source_scheme", r.source_scheme}, {"options", r.options},
                              {"output", o->output}, {"total_seconds", seconds}};
          std::printf("%s\n", j.dump(2).c_str());
        } else {
          std::printf("weights of   %s (%s)\nscheme       %s\nwrote        %s\n", o->weights_from.c_str(),
                      r.source_scheme.c_str(), r.scheme.c_str(), o->output.c_str());
        }
        return 0;
      }
      const bool calibrate =
          (opt.weights != WeightMethod::kRtn && opt.scheme.quantizes_weights()) || opt.seed_trials > 1;
      if (calibrate)
        opt.calib_path = o->calib.empty() ? default_data_path("wikitext-2-v1.valid.tokenized.txt") : o->calib;
      opt.validate();

      const std::string path = resolve_model_path(o->model);
      if (is_quantized_model_file(path)) fail("{}: already a quantized model; quantize the FP model", path);
      const ModelWeights fp = load_model_weights(path);
      const std::unique_ptr<Tokenizer> tokenizer = Tokenizer::load(path);
      opt.validate_for(fp.config, path);

      std::vector<std::vector<int32_t>> windows;
      if (calibrate) {
        const std::vector<int32_t> ids = load_calibration_tokens(opt.calib_path, *tokenizer, o->force_calib);
        try {
          windows = sample_calibration_windows(ids, opt.calib_windows, opt.calib_seqlen, opt.seed);
        } catch (const Error& e) {
          fail("{}: {}", opt.calib_path, e.what());
        }
      }
      const QuantizationResult r = quantize_model(fp, opt, windows);
      save_quantization_result(o->output, r, opt, tokenizer->to_hf_json(), path, tokenizer->to_hf_config_json());

      if (o->json) {
        nlohmann::json j = r.report.to_json();
        j["output"] = o->output;
        j["source"] = path;
        j["options"] = to_json(opt);
        j["threads"] = num_threads();
        std::printf("%s\n", j.dump(2).c_str());
      } else {
        std::printf("source       %s\n%s", path.c_str(), r.report.to_text().c_str());
        if (calibrate) std::printf("calib text   %s\n", opt.calib_path.c_str());
        std::printf("wrote        %s\n", o->output.c_str());
      }
      return 0;
    };
  });
}

}  // namespace quarot::cli
