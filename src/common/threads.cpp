#include "common/threads.h"

#include <omp.h>

#include <cstdlib>

namespace quarot {

int num_threads() { return omp_get_max_threads(); }

void set_num_threads(int n) {
  kThreadsRange.check(n, "thread count");
  if (n <= 0) {
    const char* env = std::getenv("QUAROT_THREADS");
    n = env != nullptr ? std::atoi(env) : 0;
  }
  if (n <= 0 && std::getenv("OMP_NUM_THREADS") != nullptr) return;  // the user's OpenMP setting stands
  if (n <= 0) n = omp_get_num_procs();
  omp_set_num_threads(n);
}

}  // namespace quarot
