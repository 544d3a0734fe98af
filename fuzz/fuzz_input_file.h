#pragma once
// The readers map files, so each fuzz input is written to a per-process scratch
// directory (in /dev/shm when available: no disk I/O per execution) and opened by path.
// Inputs that stand for several files (a tokenizer.json and its tokenizer_config.json,
// a config.json and its shard index) are split at kSplit, which mutations can insert
// or remove like any other bytes.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace quarot::fuzz {

inline constexpr std::string_view kSplit = "\n#####\n";

// A directory of this process, created once and removed at exit. The path lives on
// the heap, never destroyed: the exit handler runs after static destructors would have
// freed a static string (a use-after-free the first version of this had).
inline const std::string& scratch_dir() {
  static const std::string* dir = [] {
    const std::string root = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    auto* d = new std::string(root + "/quarot_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(*d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return d;
  }();
  return *dir;
}

inline std::string write_file(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_dir() + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) std::abort();
  std::fclose(f);
  return path;
}

inline std::string write_input(const uint8_t* data, size_t size, const char* suffix) {
  return write_file(std::string("input") + suffix, std::string_view(reinterpret_cast<const char*>(data), size));
}

// The input cut at each kSplit into at most `parts` pieces (missing ones are empty).
inline std::vector<std::string> split_input(const uint8_t* data, size_t size, size_t parts) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> out;
  while (out.size() + 1 < parts) {
    const size_t at = rest.find(kSplit);
    if (at == std::string_view::npos) break;
    out.emplace_back(rest.substr(0, at));
    rest.remove_prefix(at + kSplit.size());
  }
  out.emplace_back(rest);
  out.resize(parts);
  return out;
}

// Strings every tokenizer target encodes: ASCII, digits, spaces, multi-byte UTF-8,
// an emoji, invalid UTF-8 and special-token text.
inline const std::vector<std::string>& probe_texts() {
  static const std::vector<std::string> texts = {
      "", "Hello world", "  a  b\n\n\tc 12345 3.14", "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80",
      "\xff\xfe bad \xc3 utf8", "<s>x</s><|im_start|>user<|im_end|>", "I'm 'S 'll"};
  return texts;
}

}  // namespace quarot::fuzz
