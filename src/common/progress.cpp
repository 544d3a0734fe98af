#include "common/progress.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

namespace quarot {
namespace {
std::atomic<int> g_enabled{-1};

std::string hms(double s) {
  if (!(s >= 0) || s > 1e7) return "--:--";
  const int t = static_cast<int>(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
                   : fmt::format("{:02}:{:02}", t / 60, t % 60);
}
}  // namespace

void ProgressBar::set_enabled(bool on) { g_enabled = on ? 1 : 0; }

bool ProgressBar::enabled() {
  if (g_enabled < 0) {
    const char* env = std::getenv("QUAROT_NO_PROGRESS");
    g_enabled = (env != nullptr && env[0] == '1') ? 0 : 1;
  }
  return g_enabled == 1;
}

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
  if (enabled()) draw(false);
}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(int64_t done, const std::string& suffix) {
  done_ = done;
  suffix_ = suffix;
  if (!enabled()) return;
  const auto now = std::chrono::steady_clock::now();
  if (done_ < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw(false);
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled()) draw(true);
}

void ProgressBar::draw(bool final_line) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double frac = total_ > 0 ? static_cast<double>(done_) / total_ : 0.0;
  const int width = 24;
  const int filled = static_cast<int>(frac * width);
  std::string bar(filled, '#');
  bar.resize(width, '.');
  const double rate = elapsed > 0 ? done_ / elapsed : 0.0;
  const double eta = (rate > 0 && total_ > done_) ? (total_ - done_) / rate : 0.0;
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  std::string line = fmt::format("{} [{}] {}/{} {:.1f}%  {:.2f} {}/s  elapsed {}  eta {}{}{}", label_, bar,
                                 done_, total_, 100.0 * frac, rate, unit_, hms(elapsed), hms(eta),
                                 suffix_.empty() ? "" : "  ", suffix_);
  if (tty) {
    std::fprintf(stderr, "\r%s\x1b[K%s", line.c_str(), final_line ? "\n" : "");
  } else if (final_line) {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace quarot
