#pragma once
// Read-only memory map of a whole file (RAII). Model files are mapped, not read,
// so a 10 GB checkpoint costs no copy until a tensor is touched.
#include <cstddef>
#include <cstdint>
#include <string>

namespace quarot {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws Error naming the path
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Drops this process's resident copies of the whole pages inside [p, p + bytes)
  // (madvise MADV_DONTNEED on the read-only private mapping): RSS falls and the data
  // stays valid, since the next read faults the pages back in from the file (usually
  // from the page cache). For data already copied elsewhere (weights repacked at
  // load) or read sparsely (an embedding table) after a full pass (validation). The
  // part of the range outside this mapping is ignored; a hint, so failures are too.
  void release(const void* p, size_t bytes) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace quarot
