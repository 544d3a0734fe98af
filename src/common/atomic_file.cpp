#include "common/atomic_file.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/error.h"

namespace quarot {

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
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
