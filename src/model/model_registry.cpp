#include "model/model_registry.h"

#include <cstdlib>
#include <filesystem>

#include "common/error.h"

namespace quarot {

namespace {

struct KnownModel {
  const char* name;
  const char* file;
};

// Must agree with scripts/fetch_model.sh, which downloads these files.
constexpr KnownModel kKnownModels[] = {
    {"smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf"},
};

std::string joined_names() {
  std::string s;
  for (const KnownModel& m : kKnownModels) s += (s.empty() ? "" : ", ") + std::string(m.name);
  return s;
}

}  // namespace

std::string quarot_cache_dir() {
  if (const char* c = std::getenv("QUAROT_CACHE"); c != nullptr && *c != '\0') return c;
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "/root") + "/.cache/quarot";
}

std::vector<std::string> known_model_names() {
  std::vector<std::string> names;
  for (const KnownModel& m : kKnownModels) names.emplace_back(m.name);
  return names;
}

std::string resolve_model_path(const std::string& name_or_path) {
  std::error_code ec;
  if (std::filesystem::exists(name_or_path, ec)) return name_or_path;
  for (const KnownModel& m : kKnownModels) {
    if (name_or_path != m.name) continue;
    const std::string path = quarot_cache_dir() + "/models/" + m.name + "/" + m.file;
    if (!std::filesystem::exists(path, ec))
      fail("{}: model not downloaded (expected {}); run scripts/fetch_model.sh {}", name_or_path, path, m.name);
    return path;
  }
  fail("{}: no such file or directory, and not a known model name (known: {})", name_or_path, joined_names());
}

}  // namespace quarot
