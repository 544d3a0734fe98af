#pragma once
// Thread count used by all OpenMP regions: --threads, else QUAROT_THREADS, else
// OMP_NUM_THREADS, else all cores.
#include <omp.h>

#include "common/value_range.h"

namespace quarot {
inline constexpr ValueRange<int> kThreadsRange{0, 4096};  // 0 = the default above

int num_threads();

// What set_num_threads settled on. More threads than the machine has processors only
// make OpenMP's barriers wait for descheduled threads (every decode step passes
// hundreds of them), so programs cap a larger request at the processor count; tests
// may oversubscribe on purpose (uneven splits on a 2-core machine).
struct ThreadSetting {
  int requested = 0;  // after resolving 0 through QUAROT_THREADS / OMP_NUM_THREADS / cores
  int used = 0;
  int processors = 0;
  bool capped() const { return used < requested; }
};
// n == 0 means the default above. Throws Error on n outside kThreadsRange or a
// QUAROT_THREADS that is not a count in that range.
ThreadSetting set_num_threads(int n, bool cap_at_processors = false);

// Runs region() in an OpenMP parallel region of num_threads() threads when `parallel`,
// else once on the calling thread without entering a region. An `if (false)` region
// is not free: libgomp still sets up a team of one (~0.4 us on the 2-vCPU EPYC), and
// a decode step passes hundreds of ops too small to split. region() may hold orphaned
// worksharing loops (`#pragma omp for`): outside any region they run every iteration
// on the calling thread. Inside an active outer region (tasks scored concurrently, one
// per thread) an orphaned loop would bind to the OUTER team and wait for threads that
// never reach it, so there a team of one is made instead.
//
// Under ThreadSanitizer the serial case also gets a team of one: Archer (the OpenMP
// tool that tells TSan about barriers) keeps no state for a forked child's implicit
// top-level region, and the first orphaned loop's barrier there crashed inside it
// (the bench's model workers are forked children).
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define QUAROT_THREAD_SANITIZER 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define QUAROT_THREAD_SANITIZER 1
#endif
template <class Region>
void parallel_region_if(bool parallel, Region&& region) {
#if !defined(QUAROT_THREAD_SANITIZER)
  if (!parallel && !omp_in_parallel()) {
    region();
    return;
  }
#endif
#pragma omp parallel num_threads(parallel ? num_threads() : 1)
  region();
}
}  // namespace quarot
