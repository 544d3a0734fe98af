#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "common/error.h"

namespace quarot::cli {

CLI::Option* add_parallel_tasks_option(CLI::App* cmd, std::string& mode) {
  return cmd
      ->add_option("--parallel-tasks", mode,
                   "evaluate independent tasks/windows one per thread, each forward single-threaded (auto: with "
                   "2+ threads on a backend that allows it; off: one at a time, each op using all threads); the "
                   "results are identical")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
}

std::string read_text_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail("{}: no such text file", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.empty()) fail("{}: text file is empty", path);
  return text;
}

std::string default_data_path(const std::string& file) {
  if (const char* env = std::getenv("QUAROT_DATA")) return std::string(env) + "/" + file;
  for (const char* dir : {"../shared/data", "../../shared/data", "/work/shared/data"}) {
    const std::string p = std::string(dir) + "/" + file;
    if (std::filesystem::exists(p)) return p;
  }
  return "../shared/data/" + file;
}

}  // namespace quarot::cli
