#pragma once
// How OpenMP threads wait between parallel regions. A decode step passes hundreds
// of short regions, so the choice moves decode speed by tens of percent:
//   - spinning (libgomp's default) answers a wake-up within a microsecond, but on a
//     machine whose cores are busy with other work a spinning thread keeps a core its
//     descheduled partner needs: decode was measured 5-40x slower that way;
//   - passive waiting (futex sleep) costs a few microseconds per region on an idle
//     machine and degrades gracefully under load.
// quarot spins only when the machine looks idle as the program starts (1-minute load
// average below 0.5, more than one processor) and sleeps otherwise. An explicit
// OMP_WAIT_POLICY or GOMP_SPINCOUNT in the environment always wins.
#include <cstdint>
#include <optional>
#include <string>

namespace quarot {

enum class WaitPolicy { kSpin, kPassive };

// The policy for a machine with `processors` online processors and 1-minute load
// average `load1` (runnable threads, excluding this program). Pure: the rule above.
WaitPolicy choose_wait_policy(double load1, int processors);

// /proc/loadavg's first field; nullopt where it cannot be read (not Linux).
std::optional<double> read_load_average();

// Whether this process's OpenMP threads spin between regions, from the environment
// libgomp read at start: GOMP_SPINCOUNT when set (spinning from 10000 iterations, a
// few microseconds, up), else OMP_WAIT_POLICY (ACTIVE spins, PASSIVE sleeps), else
// libgomp's default (spin). Kernels use it to decide how small a product is still
// worth splitting: a wake-up costs ~2 us when the threads spin and 10-20 us when they
// sleep. Read once.
bool openmp_threads_spin();
// Decode products (weight bytes times activation rows) below this many bytes run on
// the calling thread: waking the other threads costs more than streaming them alone.
// 64 KB when the threads spin (a wake-up ~2 us, what one core streams of an int4
// weight in ~15-20 KB, so SmolLM2's q/k/v (276 KB) and o_proj (166 KB) are worth both
// cores); 320 KB when they sleep (on the shared 2-vCPU EPYC with passive waiting, q/k/v
// decoded faster alone than split: 64.4 vs 59.7 tok/s at context 512, medians of 5
// alternated runs). Used by the integer and weight-only GEMVs.
int64_t decode_serial_bytes();
// The same threshold in weights at two per byte (int4), for the CLAQ lookup GEMVs, whose
// cost follows the weight count: 128K / 640K weights.
int64_t decode_serial_weights();
// The rule above for given values of GOMP_SPINCOUNT and OMP_WAIT_POLICY (null = unset). Pure.
bool openmp_spins_with(const char* gomp_spincount, const char* omp_wait_policy);

// What governs this process's OpenMP waiting, for reports: e.g. "spin (OMP_WAIT_POLICY=ACTIVE)",
// "passive (OMP_WAIT_POLICY=PASSIVE)", "GOMP_SPINCOUNT=3000", "OpenMP default (spin)".
std::string describe_wait_policy();

// The OpenMP (libgomp) environment setting that implements `p`, as NAME and VALUE:
// spinning is bounded (GOMP_SPINCOUNT, about a millisecond, then sleep) rather than
// OMP_WAIT_POLICY=ACTIVE, which spins forever and would keep a core busy through every
// serial phase (loading, sampling, a parent process waiting for its children).
struct EnvSetting {
  const char* name;
  const char* value;
};
EnvSetting wait_policy_env(WaitPolicy p);

}  // namespace quarot
