#include "common/threads.h"

#include <omp.h>

#include <charconv>
#include <cstdlib>
#include <cstring>

#include "common/error.h"

namespace quarot {

int num_threads() { return omp_get_max_threads(); }

namespace {
int parse_env_threads(const char* name, const char* text) {
  int n = 0;
  const char* end = text + std::strlen(text);
  const auto [ptr, ec] = std::from_chars(text, end, n);
  if (ec != std::errc() || ptr != end || !kThreadsRange.contains(n))
    fail("{}='{}' is not a thread count in {}", name, text, kThreadsRange.describe());
  return n;
}
}  // namespace

ThreadSetting set_num_threads(int n, bool cap_at_processors) {
  kThreadsRange.check(n, "thread count");
  ThreadSetting s;
  s.processors = omp_get_num_procs();
  if (n <= 0) {
    if (const char* env = std::getenv("QUAROT_THREADS"); env != nullptr && *env != '\0')
      n = parse_env_threads("QUAROT_THREADS", env);
  }
  if (n <= 0 && std::getenv("OMP_NUM_THREADS") != nullptr) {
    // The user's OpenMP setting stands (it may name nested levels), uncapped.
    s.requested = s.used = omp_get_max_threads();
    return s;
  }
  if (n <= 0) n = s.processors;
  s.requested = n;
  s.used = cap_at_processors && n > s.processors ? s.processors : n;
  omp_set_num_threads(s.used);
  return s;
}

}  // namespace quarot
