#include "test_support.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace quarot::test {
namespace fs = std::filesystem;

namespace {
std::string cache_dir() {
  if (const char* c = std::getenv("QUAROT_CACHE")) return c;
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "/root") + "/.cache/quarot";
}
struct TempRoot {
  std::string path;
  ~TempRoot() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};
TempRoot g_root;
int g_counter = 0;
}  // namespace

std::string temp_dir() {
  if (g_root.path.empty()) {
    g_root.path = (fs::temp_directory_path() / ("quarot-test-" + std::to_string(::getpid()))).string();
    fs::create_directories(g_root.path);
  }
  const std::string d = g_root.path + "/" + std::to_string(g_counter++);
  fs::create_directories(d);
  return d;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string default_model_path() {
  const std::string p = cache_dir() + "/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf";
  return fs::exists(p) ? p : "";
}

std::string reference_file(const std::string& name) {
  const std::string p = cache_dir() + "/reference/" + name;
  return fs::exists(p) ? p : "";
}

std::string reference_fixture(const std::string& name) { return std::string(QUAROT_SOURCE_DIR) + "/tests/reference/" + name; }

std::string data_file(const std::string& name) {
  const char* env = std::getenv("QUAROT_DATA");
  const std::string dir = env != nullptr ? std::string(env) : std::string(QUAROT_SOURCE_DIR) + "/../shared/data";
  const std::string p = dir + "/" + name;
  return fs::exists(p) ? p : "";
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace quarot::test
