// Self-check for scripts/tsan.sh: proves that the ThreadSanitizer + libomp + Archer
// setup both sees races and understands OpenMP's synchronization, so that "no reports"
// from the test binaries means something.
//   tsan_canary clean  -> threads read each other's writes only across the implicit
//                         barrier of an omp for: must exit 0 with no report (without
//                         Archer, TSan cannot see libomp's barrier and reports this).
//   tsan_canary race   -> additionally every thread increments one shared counter
//                         unsynchronized: must be reported (TSan exits 66).
#include <cstdio>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  const bool race = argc > 1 && std::strcmp(argv[1], "race") == 0;
  constexpr int kN = 4096;
  std::vector<int> v(kN, 0);
  long counter = 0;
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int i = 0; i < kN; ++i) v[i] = i;
    // Static schedule, reversed index: each thread now touches what another wrote.
#pragma omp for schedule(static)
    for (int i = 0; i < kN; ++i) v[kN - 1 - i] += 1;
    if (race) counter += 1;
  }
  long sum = 0;
  for (int x : v) sum += x;
  std::printf("sum %ld counter %ld\n", sum, counter);
  return sum == static_cast<long>(kN) * (kN - 1) / 2 + kN ? 0 : 1;
}
