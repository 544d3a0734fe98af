#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "cli/numeric_option.h"
#include "eval/bench.h"
#include "eval/model_session.h"

namespace quarot::cli {

void add_bench(CLI::App& app, Action& action) {
  struct Opts {
    std::vector<std::string> models{"smollm2-135m"};
    std::string baseline;
    BenchOptions bench;
    bool json = true;
    bool profile = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "bench", "prefill and decode throughput of one or several models side by side (JSON on stdout)");
  cmd->add_option("-m,--model", o->models,
                  "model(s): name, .gguf, HF dir or quantized file; repeat the flag or separate by commas")
      ->capture_default_str();
  cmd->add_option("--baseline", o->baseline, "model the ratios refer to (default: the first)");
  add_number(cmd, "--prefill", o->bench.prefill_tokens, "prompt tokens", BenchOptions::kTokens)->capture_default_str();
  add_number(cmd, "--decode", o->bench.decode_tokens, "new tokens", BenchOptions::kTokens)->capture_default_str();
  add_number(cmd, "--repeats", o->bench.repeats, "interleaved repetitions (the median is reported)",
             BenchOptions::kRepeats)->capture_default_str();
  // bench always prints JSON; the flag is accepted so `--json` works on every subcommand.
  cmd->add_flag("--json", o->json, "print JSON (the default and only output of bench)");
  cmd->add_flag("--profile", o->profile,
                "also time every op (products by name, attention, norms, ...) of the last repetition's prefill and "
                "decode; profiled runs are slower, so compare shares");
  cmd->callback([o, &action] {
    action = [o]() -> int {
      const std::vector<std::string> models = split_model_list(o->models);
      const size_t baseline = baseline_index(models, o->baseline);
      if (o->profile) o->bench.profile = std::make_shared<OpProfile>();
      const std::shared_ptr<OpProfile> profile = o->bench.profile;
      BenchReport r = run_bench(
          models,
          [profile](const std::string& name) {
            return open_model(name, profile ? make_profiling_backend(cli_backend(), profile) : cli_backend());
          },
          o->bench);
      r.baseline = baseline;
      std::printf("%s\n", bench_report_json(r).dump(2).c_str());
      return 0;
    };
  });
}

}  // namespace quarot::cli
