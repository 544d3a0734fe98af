#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "cli/numeric_option.h"
#include "common/threads.h"
#include "eval/bench.h"
#include "eval/model_session.h"
#include "kernels/cpu/cpu_features.h"

namespace quarot::cli {

void add_bench(CLI::App& app, Action& action) {
  struct Opts {
    std::string model = "smollm2-135m";
    BenchOptions bench;
    bool json = true;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("bench", "prefill and decode throughput of a model (JSON on stdout)");
  cmd->add_option("-m,--model", o->model, "model: name, .gguf, HF dir or quantized file")->capture_default_str();
  add_number(cmd, "--prefill", o->bench.prefill_tokens, "prompt tokens", BenchOptions::kTokens)->capture_default_str();
  add_number(cmd, "--decode", o->bench.decode_tokens, "new tokens", BenchOptions::kTokens)->capture_default_str();
  add_number(cmd, "--repeats", o->bench.repeats, "prefill repetitions (best is kept)", BenchOptions::kRepeats)
      ->capture_default_str();
  // bench always prints JSON; the flag is accepted so `--json` works on every subcommand.
  cmd->add_flag("--json", o->json, "print JSON (the default and only output of bench)");
  cmd->callback([o, &action] {
    action = [o]() -> int {
      ModelSession s = open_model(o->model, cli_backend());
      const BenchResult r = run_bench(*s.model, o->bench);
      nlohmann::json j = {
          {"model", s.path},
          {"model_kind", s.description},
          {"backend", s.backend->name()},
          {"cpu", cpu_description()},
          {"threads", num_threads()},
          {"prefill", {{"tokens", o->bench.prefill_tokens},
                       {"tokens_per_s", r.prefill_tokens_per_s},
                       {"gflops", r.prefill_gflops}}},
          {"decode", {{"tokens", o->bench.decode_tokens},
                      {"tokens_per_s", r.decode_tokens_per_s},
                      {"bytes_per_token", r.decode_bytes_per_token},
                      {"measured_read_bandwidth_gbs", r.memory_bandwidth_gbs},
                      {"bandwidth_bound_tokens_per_s", r.decode_bandwidth_bound_tokens_per_s},
                      {"fraction_of_bandwidth_bound",
                       r.decode_tokens_per_s / r.decode_bandwidth_bound_tokens_per_s}}}};
      std::printf("%s\n", j.dump(2).c_str());
      return 0;
    };
  });
}

}  // namespace quarot::cli
