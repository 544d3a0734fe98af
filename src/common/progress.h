#pragma once
// A progress bar with rate and ETA on stderr, for long jobs (perplexity,
// calibration, GPTQ). Redraws at most ~10 times a second; prints nothing when
// disabled (QUAROT_NO_PROGRESS=1, or --quiet in the CLI).
#include <chrono>
#include <cstdint>
#include <string>

namespace quarot {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::string unit = "it");
  ~ProgressBar();
  void update(int64_t done, const std::string& suffix = "");
  void add(int64_t n = 1, const std::string& suffix = "") { update(done_ + n, suffix); }
  void finish();
  static void set_enabled(bool on);
  static bool enabled();

 private:
  void draw(bool final_line);
  std::string label_, unit_, suffix_;
  int64_t total_, done_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool finished_ = false;
};

}  // namespace quarot
