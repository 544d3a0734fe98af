#pragma once
// Each subcommand registers its flags on the CLI11 app and returns the action to
// run once parsing succeeded. The CLI is a thin layer: all work happens in the library.
#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace quarot::cli {

using Action = std::function<int()>;

struct GlobalOptions {
  int threads = 0;
  bool quiet = false;
};
GlobalOptions& global_options();

void add_ppl(CLI::App& app, Action& action);
void add_generate(CLI::App& app, Action& action);
void add_inspect(CLI::App& app, Action& action);
void add_bench(CLI::App& app, Action& action);
void add_quantize(CLI::App& app, Action& action);
void add_eval(CLI::App& app, Action& action);

// Reads a whole text file; Error if missing or empty.
std::string read_text_file(const std::string& path);
// Default data locations: $QUAROT_DATA, else ../shared/data beside the repo checkout.
std::string default_data_path(const std::string& file);

}  // namespace quarot::cli
