#pragma once
// Work items 0 .. n-1 shared by the threads of one parallel region: each thread owns
// the contiguous range a static split gives it (thread t: [n*t/T, n*(t+1)/T)) and
// takes its items front to back, so its reads stay one sequential stream; a thread
// that runs out takes items from the back of the others' ranges.
//
// Why: a decode product is split into a handful of chunks (SmolLM2's o_proj: 9), so a
// static split leaves one thread a whole chunk behind (5 vs 4: 11% of the call), and on
// a shared machine a descheduled thread holds its whole share back. Stealing from the
// back keeps the owner's stream intact and costs one compare-and-swap per item.
//
// Results must not depend on which thread runs an item (each item computed alone);
// the queue only changes who computes it. Ranges go to the first min(T, kMaxThreads)
// threads; more threads than items leave the extra threads empty ranges, and thread ids
// past the ranges only steal.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "common/error.h"
#include "common/threads.h"

namespace quarot {

class ChunkQueue {
 public:
  static constexpr int kMaxThreads = 64;

  // Not thread-safe: construct before the parallel region, then share it.
  // 0 <= n < 2^31 (items are indexed in 32 bits).
  ChunkQueue(int64_t n, int threads) : threads_(std::clamp(threads, 1, kMaxThreads)) {
    QUAROT_CHECK(n >= 0 && n <= 0x7fffffff, "chunk queue: {} items is outside 0 .. 2^31 - 1", n);
    for (int t = 0; t < threads_; ++t)
      ranges_[t].v.store(pack(n * t / threads_, n * (t + 1) / threads_), std::memory_order_relaxed);
  }

  // The next item for thread t (its own range first, then the others' backs), or -1
  // when none is left.
  int64_t next(int t) {
    // A thread beyond the queue's count (more than kMaxThreads) owns no range: it only steals.
    const bool owner = t >= 0 && t < threads_;
    if (owner)
      if (const int64_t i = take(t, true); i >= 0) return i;
    const int first = owner ? t : 0;
    for (int d = owner ? 1 : 0; d < threads_; ++d)
      if (const int64_t i = take((first + d) % threads_, false); i >= 0) return i;
    return -1;
  }

 private:
  // One range as (lo, hi) in one 64-bit word, so owner and thief agree on the last item.
  static uint64_t pack(int64_t lo, int64_t hi) {
    return static_cast<uint64_t>(lo) << 32 | static_cast<uint64_t>(hi);
  }

  int64_t take(int r, bool front) {
    std::atomic<uint64_t>& a = ranges_[r].v;
    uint64_t cur = a.load(std::memory_order_relaxed);
    for (;;) {
      const int64_t lo = static_cast<int64_t>(cur >> 32), hi = static_cast<int64_t>(cur & 0xffffffffu);
      if (lo >= hi) return -1;
      const uint64_t next = front ? pack(lo + 1, hi) : pack(lo, hi - 1);
      if (a.compare_exchange_weak(cur, next, std::memory_order_relaxed)) return front ? lo : hi - 1;
    }
  }

  struct alignas(64) Range {
    std::atomic<uint64_t> v{0};
  };
  int threads_;
  Range ranges_[kMaxThreads];
};

// run(i) for every item 0 .. n-1 on the configured threads (num_threads()), shared
// through a ChunkQueue: each thread's contiguous run first, then the others' tails.
template <typename Run>
void run_chunks(int64_t n, Run&& run) {
  ChunkQueue queue(n, num_threads());
#pragma omp parallel num_threads(num_threads())
  {
    const int t = omp_get_thread_num();
    for (int64_t i; (i = queue.next(t)) >= 0;) run(i);
  }
}

}  // namespace quarot
