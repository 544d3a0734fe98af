#include "common/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"

namespace quarot {
namespace {
std::string temporary_name(const std::string& path) { return path + ".tmp." + std::to_string(::getpid()); }
}  // namespace

void check_output_writable(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) fail("the output path is empty");
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail("{}: is a folder; the output must be a file path", path);
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::exists(dir, ec)) fail("{}: cannot write the output: folder {} does not exist", path, dir.string());
  if (!fs::is_directory(dir, ec)) fail("{}: cannot write the output: {} is not a folder", path, dir.string());
  const std::string tmp = temporary_name(path);
  {
    std::ofstream probe(tmp, std::ios::binary | std::ios::trunc);
    if (!probe) fail("{}: cannot write the output in folder {}: {}", path, dir.string(), std::strerror(errno));
  }
  std::remove(tmp.c_str());
}

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write) {
  const std::string tmp = temporary_name(path);
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) fail("{}: cannot create temporary file {}", path, tmp);
      write(out);
      out.flush();
      if (!out) fail("{}: write failed (disk full?)", path);
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) fail("{}: cannot rename temporary file into place: {}", path, ec.message());
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
}

}  // namespace quarot
