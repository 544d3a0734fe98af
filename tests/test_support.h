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
// <source>/tests/reference/<name>: the committed transformers fixtures
// (tools/reference/make_fixtures.sh). Always present in a checkout.
std::string reference_fixture(const std::string& name);
// ${QUAROT_DATA:-<source>/../shared/data}/<name>, or "" when absent.
std::string data_file(const std::string& name);
// Whole file as a string; "" when unreadable.
std::string read_text(const std::string& path);

}  // namespace quarot::test
