#pragma once
// Helpers shared by the test binaries.
#include <cstdint>
#include <string>
#include <vector>

namespace quarot::test {

// A fresh empty directory under the system temp dir, removed at process exit.
std::string temp_dir();
void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes);
std::vector<uint8_t> read_bytes(const std::string& path);
// The default model in the cache, or "" when it has not been fetched (tests skip).
std::string default_model_path();
// ${QUAROT_CACHE:-~/.cache/quarot}/reference/<name>, or "" when absent.
std::string reference_file(const std::string& name);

}  // namespace quarot::test
