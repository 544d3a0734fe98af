#pragma once
// Thread count used by all OpenMP regions: --threads, else QUAROT_THREADS, else
// OMP_NUM_THREADS, else all cores.
#include "common/value_range.h"

namespace quarot {
inline constexpr ValueRange<int> kThreadsRange{0, 4096};  // 0 = the default above
int num_threads();
void set_num_threads(int n);  // n == 0 means the default above
}  // namespace quarot
