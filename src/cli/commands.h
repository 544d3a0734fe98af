#pragma once
// Each subcommand registers its flags on the CLI11 app and returns the action to
// run once parsing succeeded. The CLI is a thin layer: all work happens in the library.
#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>

#include "kernels/backend.h"

namespace quarot::cli {

using Action = std::function<int()>;

struct GlobalOptions {
  int threads = 0;
  bool quiet = false;
  bool simulate = false;  // FP32 reference arithmetic instead of the integer kernels
  std::string isa;        // forced instruction-set path, empty = best
  bool fp32_attention = false;  // CPU: FP32 attention products (prefill and decode) instead of integer ones (VNNI)
  std::string device = "cpu";  // cpu or cuda (builds with QUAROT_CUDA=ON)
};
GlobalOptions& global_options();
// The backend the global options ask for (--device, --simulate, --isa, --fp32-attention).
std::shared_ptr<const Backend> cli_backend();

void add_ppl(CLI::App& app, Action& action);
void add_generate(CLI::App& app, Action& action);
void add_inspect(CLI::App& app, Action& action);
void add_bench(CLI::App& app, Action& action);
void add_quantize(CLI::App& app, Action& action);
void add_eval(CLI::App& app, Action& action);

// --parallel-tasks auto|on|off (eval/task_runner.h parse_task_parallelism), shared by
// the commands that evaluate independent tasks or windows.
CLI::Option* add_parallel_tasks_option(CLI::App* cmd, std::string& mode);

// Reads a whole text file; Error if missing or empty.
std::string read_text_file(const std::string& path);
// Default data locations: $QUAROT_DATA, else ../shared/data beside the repo checkout.
std::string default_data_path(const std::string& file);

}  // namespace quarot::cli
