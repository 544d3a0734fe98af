#include "quant/pipeline/calibration_data.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/rng.h"
#include "tokenizer/tokenizer.h"

namespace quarot {

std::vector<std::vector<int32_t>> sample_calibration_windows(const std::vector<int32_t>& ids, int64_t n_windows,
                                                             int64_t seqlen, uint64_t seed) {
  if (n_windows <= 0) fail("calibration: number of windows must be positive, got {}", n_windows);
  if (seqlen <= 0) fail("calibration: window length must be positive, got {}", seqlen);
  const int64_t n_tokens = static_cast<int64_t>(ids.size());
  if (n_tokens < seqlen)
    fail("calibration text has {} tokens, fewer than one window of {} tokens", n_tokens, seqlen);
  const int64_t available = n_tokens / seqlen;
  if (n_windows > available) {
    std::fprintf(stderr,
                 "note: calibration text has %lld tokens, enough for %lld windows of %lld; using %lld instead of "
                 "%lld\n",
                 static_cast<long long>(n_tokens), static_cast<long long>(available),
                 static_cast<long long>(seqlen), static_cast<long long>(available),
                 static_cast<long long>(n_windows));
    n_windows = available;
  }
  Rng rng(seed);
  const uint64_t n_starts = static_cast<uint64_t>(n_tokens - seqlen + 1);
  std::vector<std::vector<int32_t>> windows;
  windows.reserve(n_windows);
  for (int64_t w = 0; w < n_windows; ++w) {
    const int64_t start = static_cast<int64_t>(rng.below(n_starts));
    windows.emplace_back(ids.begin() + start, ids.begin() + start + seqlen);
  }
  return windows;
}

bool looks_like_evaluation_split(const std::string& path) {
  std::string name = std::filesystem::path(path).filename().string();
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return name.find("test") != std::string::npos;
}

void check_calibration_file(const std::string& path, bool force) {
  if (!force && looks_like_evaluation_split(path))
    fail("{}: refusing to calibrate on what looks like an evaluation (test) split (its name contains 'test')",
         path);
}

std::vector<int32_t> load_calibration_tokens(const std::string& path, const Tokenizer& tokenizer, bool force) {
  check_calibration_file(path, force);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail("{}: no such calibration file", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open calibration file", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  if (text.empty()) fail("{}: calibration file is empty", path);
  return tokenizer.encode(text, tokenizer.add_bos_default() && tokenizer.bos_id() >= 0);
}

}  // namespace quarot
