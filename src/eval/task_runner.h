#pragma once
// Runs the independent units of an evaluation (HellaSwag tasks, perplexity windows)
// either serially, each forward spread over the threads by the ops' own OpenMP
// regions, or concurrently: an outer OpenMP loop hands one unit at a time to each
// thread (dynamic schedule), whose forwards run single-threaded. Short forwards
// spend most of their time in the ops' barriers (hundreds per forward, little work
// each), so whole units per thread scale far better; the backend must allow it
// (Backend::concurrent_forwards).
//
// Inside a concurrent worker every op-level region runs on the worker's thread
// alone: nested regions are inactive at OpenMP's default max-active-levels of 1, and
// the worker also sets its own nthreads ICV to 1, so this holds where nesting was
// enabled (OMP_MAX_ACTIVE_LEVELS, a list in OMP_NUM_THREADS) and num_threads() reads 1.
//
// The results do not depend on the mode: the CPU kernels split work by output rows
// and columns (or fixed tiles merged in a fixed order), never by thread count along a
// reduction, so a single-threaded forward gives the bits of a multi-threaded one;
// callers keep per-unit results and combine them in unit order.
#include <cstdint>
#include <functional>
#include <string>

#include "kernels/backend.h"

namespace quarot {

enum class TaskParallelism {
  kAuto,  // concurrent when the backend allows it and there are >= 2 threads and >= 2 units
  kOn,    // concurrent whenever the backend allows it
  kOff,   // serial
};
// "auto", "on" or "off"; throws Error naming the value otherwise.
TaskParallelism parse_task_parallelism(const std::string& name);

class TaskRunner {
 public:
  // Decides the mode for `units` units with the current thread count (num_threads()).
  TaskRunner(TaskParallelism mode, const Backend& backend, int64_t units);

  bool concurrent() const { return concurrent_; }
  // Bound on the `worker` index passed to work(): 1 when serial, else the threads
  // of the outer loop (at most one per unit). Size per-worker state with it.
  int workers() const { return workers_; }

  // Calls work(unit, worker) once for every unit in [0, units), then done(unit)
  // once it returned. done() calls never overlap (serial, or under a lock) and come
  // in completion order (unit order when serial). When work() throws, the units
  // after it are skipped and, once every worker stopped, the exception of the
  // lowest failing unit is rethrown: the error the serial loop would have raised.
  void run(const std::function<void(int64_t unit, int worker)>& work,
           const std::function<void(int64_t unit)>& done) const;

 private:
  int64_t units_ = 0;
  bool concurrent_ = false;
  int workers_ = 1;
};

}  // namespace quarot
