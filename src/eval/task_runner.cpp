#include "eval/task_runner.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <limits>
#include <mutex>

#include "common/error.h"
#include "common/threads.h"

namespace quarot {

TaskParallelism parse_task_parallelism(const std::string& name) {
  if (name == "auto") return TaskParallelism::kAuto;
  if (name == "on") return TaskParallelism::kOn;
  if (name == "off") return TaskParallelism::kOff;
  fail("unknown task parallelism '{}' (expected auto, on or off)", name);
}

TaskRunner::TaskRunner(TaskParallelism mode, const Backend& backend, int64_t units) : units_(units) {
  QUAROT_CHECK(units >= 0, "task runner: negative unit count {}", units);
  const int threads = num_threads();
  concurrent_ = mode != TaskParallelism::kOff && backend.concurrent_forwards() &&
                (mode == TaskParallelism::kOn || (threads >= 2 && units >= 2));
  if (concurrent_) workers_ = static_cast<int>(std::clamp<int64_t>(units, 1, std::max(threads, 1)));
}

void TaskRunner::run(const std::function<void(int64_t unit, int worker)>& work,
                     const std::function<void(int64_t unit)>& done) const {
  if (!concurrent_) {
    for (int64_t u = 0; u < units_; ++u) {
      work(u, 0);
      done(u);
    }
    return;
  }
  // An exception must not leave the parallel region: each is caught, the lowest
  // failing unit's kept, and later units are skipped.
  constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
  std::atomic<int64_t> failed{kNone};
  std::exception_ptr error;
  std::mutex mutex;  // guards error and serializes done()
#pragma omp parallel num_threads(workers_)
  {
    // This worker's nested regions (the ops') get one thread even where nesting is
    // enabled; the setting belongs to this implicit task and ends with the region.
    omp_set_num_threads(1);
    const int worker = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
    for (int64_t u = 0; u < units_; ++u) {
      if (u > failed.load()) continue;
      try {
        work(u, worker);
        const std::lock_guard<std::mutex> lock(mutex);
        done(u);
      } catch (...) {
        const std::lock_guard<std::mutex> lock(mutex);
        if (u < failed.load()) {
          failed.store(u);
          error = std::current_exception();
        }
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace quarot
