#include "common/chunk_queue.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <vector>

namespace quarot {
namespace {

TEST(ChunkQueue, AloneAThreadTakesItsRangeInOrderThenStealsFromTheBack) {
  ChunkQueue q(10, 2);  // thread 0 owns 0..4, thread 1 owns 5..9
  std::vector<int64_t> got;
  for (int64_t i; (i = q.next(0)) >= 0;) got.push_back(i);
  EXPECT_EQ(got, (std::vector<int64_t>{0, 1, 2, 3, 4, 9, 8, 7, 6, 5}));
  EXPECT_EQ(q.next(1), -1);
}

TEST(ChunkQueue, OwnersKeepTheirFrontsWhileAThiefTakesTheBack) {
  ChunkQueue q(9, 3);  // 0..2, 3..5, 6..8
  EXPECT_EQ(q.next(1), 3);
  EXPECT_EQ(q.next(0), 0);
  EXPECT_EQ(q.next(0), 1);
  EXPECT_EQ(q.next(0), 2);
  EXPECT_EQ(q.next(0), 5);  // thread 0 is done: the back of thread 1's range
  EXPECT_EQ(q.next(1), 4);
  EXPECT_EQ(q.next(1), 8);  // thread 1 done: thread 2's back
  EXPECT_EQ(q.next(2), 6);
  EXPECT_EQ(q.next(2), 7);
  EXPECT_EQ(q.next(2), -1);
}

TEST(ChunkQueue, EmptyAndOverSubscribedQueues) {
  ChunkQueue empty(0, 4);
  for (int t = 0; t < 4; ++t) EXPECT_EQ(empty.next(t), -1);
  ChunkQueue few(2, 8);  // most threads own nothing and steal
  std::vector<int> seen(2, 0);
  for (int t = 7; t >= 0; --t)
    for (int64_t i; (i = few.next(t)) >= 0;) ++seen[static_cast<size_t>(i)];
  EXPECT_EQ(seen, (std::vector<int>{1, 1}));
}

TEST(ChunkQueue, ThreadsPastTheRangeCountOnlySteal) {
  ChunkQueue q(4, 1000);  // clamped to kMaxThreads ranges
  std::vector<int> seen(4, 0);
  for (int t : {999, 64, 5000, 0, 3})
    for (int64_t i; (i = q.next(t)) >= 0;) ++seen[static_cast<size_t>(i)];
  EXPECT_EQ(seen, (std::vector<int>{1, 1, 1, 1}));
}

TEST(ChunkQueue, EveryItemRunsExactlyOnceUnderContention) {
  for (const int64_t n : {1, 7, 64, 1000}) {
    const int threads = 4;
    ChunkQueue q(n, threads);
    std::vector<std::atomic<int>> count(static_cast<size_t>(n));
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num();
      for (int64_t i; (i = q.next(t)) >= 0;) count[static_cast<size_t>(i)].fetch_add(1);
    }
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(count[static_cast<size_t>(i)].load(), 1) << "n=" << n << " item " << i;
  }
}

}  // namespace
}  // namespace quarot
