#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>

#include <fmt/format.h>

#include "cli/commands.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/threads.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/loader.h"
#include "model/model_registry.h"
#include "quant/pipeline/calibration_data.h"
#include "quant/pipeline/quarot_pipeline.h"
#include "quant/pipeline/runtime_scheme.h"
#include "quant/quantize_option_table.h"
#include "quant/quantized_model.h"
#include "tokenizer/tokenizer.h"

namespace quarot::cli {

namespace {

// Help text with the range a number must lie in, e.g. "activation clip ratio [0..1]".
template <typename T>
std::string help_with_range(const OptionField& f, const ValueRange<T>& range) {
  return fmt::format("{} [{}{}]", f.help, f.zero_is_unset ? "0 or " : "", range.describe());
}
std::string help_with_range(const OptionField& f) { return std::string(f.help); }

}  // namespace

void add_quantize(CLI::App& app, Action& action) {
  // The quantization options come from the library's table (quant/quantize_option_table.h):
  // one flag per option, given as text and converted (and range-checked) by the library.
  // Only the command's own inputs and outputs are declared here.
  struct Opts {
    std::string model = "smollm2-135m", output, weights_from;
    bool force_calib = false, json = false;
    std::map<std::string, std::vector<std::string>> texts;  // flag word -> values given
    std::map<std::string, bool> switches;                   // flag word -> given (bool options)
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("quantize", "rotate (QuaRot) and quantize a model; writes a .quarot.safetensors file");
  cmd->add_option("-m,--model", o->model, "FP model: name, .gguf or HF dir")->capture_default_str();
  const QuantizeOptions defaults;
  for_each_quantize_option(defaults, [&](const OptionField& f, const auto& member, const auto&... range) {
    const std::string flag = "--" + std::string(f.flag);
    const std::string help = help_with_range(f, range...);
    if constexpr (std::is_same_v<std::decay_t<decltype(member)>, bool>) {
      cmd->add_flag(flag, o->switches[std::string(f.flag)], help);
    } else {
      CLI::Option* opt = cmd->add_option(flag, o->texts[std::string(f.flag)], help);
      if (!f.repeatable) opt->expected(1)->multi_option_policy(CLI::MultiOptionPolicy::Throw);
      using T = std::decay_t<decltype(member)>;
      if constexpr (std::is_integral_v<T>) opt->type_name("INT");
      if constexpr (std::is_floating_point_v<T>) opt->type_name("FLOAT");
      const std::string shown = option_value_text(member);
      if (!shown.empty()) opt->default_str(shown);
    }
  });
  cmd->add_flag("--force-calib", o->force_calib, "allow a calibration file whose name contains 'test'");
  cmd->add_option("--weights-from", o->weights_from,
                  "reuse the weights of this quantized file (no calibration); only the activation/KV options apply")
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", o->output, "output file (.quarot.safetensors)")->required();
  cmd->add_flag("--json", o->json, "print the report as JSON on stdout");
  cmd->callback([o, &action] {
    action = [o]() -> int {
      // A quantization can run for many minutes: find out now that its output can be written.
      check_output_writable(o->output);
      QuantizeOptions opt;
      for_each_quantize_option(opt, [&](const OptionField& f, auto& member, const auto&... range) {
        const std::string word(f.flag);
        try {
          if constexpr (std::is_same_v<std::decay_t<decltype(member)>, bool>) {
            if (o->switches.at(word)) member = !f.flag_clears;
          } else {
            for (const std::string& text : o->texts.at(word)) assign_option_text(f, text, member, &range...);
          }
        } catch (const Error& e) {
          fail("--{}: {}", word, e.what());
        }
      });
      // A CLAQ budget alone names the scheme: 2.12 -> W2A16.
      if (opt.w_bits_budget > 0.0 && o->texts.at("scheme").empty())
        opt.scheme = parse_quant_scheme(fmt::format("W{}A16", static_cast<int>(std::floor(opt.w_bits_budget))));
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
      if (calibrate && opt.calib_path.empty()) opt.calib_path = default_data_path("wikitext-2-v1.valid.tokenized.txt");
      opt.validate();
      // Before any loading: the library refuses such a file too, without naming this flag.
      if (calibrate && !o->force_calib && looks_like_evaluation_split(opt.calib_path))
        fail("{}: refusing to calibrate on what looks like an evaluation (test) split; pass --force-calib to "
             "override",
             opt.calib_path);

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
      const std::shared_ptr<const Backend> calibration =
          make_cpu_backend(CpuBackendOptions{.simulate = true, .isa = global_options().isa});
      const QuantizationResult r = quantize_model(fp, opt, windows, calibration);
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
