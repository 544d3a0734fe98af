#pragma once
// Thread count used by all OpenMP regions: --threads, else QUAROT_THREADS, else
// OMP_NUM_THREADS, else all cores.
namespace quarot {
int num_threads();
void set_num_threads(int n);  // n <= 0 means all cores
}  // namespace quarot
