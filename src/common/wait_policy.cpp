#include "common/wait_policy.h"

#include <cstdlib>
#include <fstream>

namespace quarot {

WaitPolicy choose_wait_policy(double load1, int processors) {
  // Half a processor of slack: a load average of 0.3 on an idle box is background noise,
  // while 1.0 on two processors means one of our threads would share its core.
  if (processors <= 1) return WaitPolicy::kPassive;
  return load1 < 0.5 ? WaitPolicy::kSpin : WaitPolicy::kPassive;
}

std::optional<double> read_load_average() {
  std::ifstream in("/proc/loadavg");
  double load1 = 0;
  if (!(in >> load1) || load1 < 0) return std::nullopt;
  return load1;
}

EnvSetting wait_policy_env(WaitPolicy p) {
  if (p == WaitPolicy::kSpin) return {"GOMP_SPINCOUNT", "300000"};
  return {"OMP_WAIT_POLICY", "PASSIVE"};
}

bool openmp_spins_with(const char* gomp_spincount, const char* omp_wait_policy) {
  if (gomp_spincount != nullptr) {
    const std::string c = gomp_spincount;
    if (c == "infinite" || c == "infinity" || c == "INFINITE" || c == "INFINITY") return true;
    char* end = nullptr;
    const double v = std::strtod(gomp_spincount, &end);  // libgomp also takes k / M / G suffixes
    if (end == gomp_spincount) return true;              // unparsable: libgomp keeps its default
    const double unit = *end == 'k' || *end == 'K' ? 1e3 : *end == 'M' ? 1e6 : *end == 'G' ? 1e9 : 1.0;
    return v * unit >= 10000.0;
  }
  if (omp_wait_policy != nullptr) {
    const std::string p = omp_wait_policy;
    return p == "ACTIVE" || p == "active";
  }
  return true;
}

int64_t decode_serial_bytes() { return openmp_threads_spin() ? 64 * 1024 : 320 * 1024; }
int64_t decode_serial_weights() { return 2 * decode_serial_bytes(); }

bool openmp_threads_spin() {
  static const bool spin = openmp_spins_with(std::getenv("GOMP_SPINCOUNT"), std::getenv("OMP_WAIT_POLICY"));
  return spin;
}

std::string describe_wait_policy() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spincount = std::getenv("GOMP_SPINCOUNT");
  std::string out;
  if (policy != nullptr) {
    const std::string p = policy;
    const bool active = p == "ACTIVE" || p == "active";
    out = std::string(active ? "spin" : "passive") + " (OMP_WAIT_POLICY=" + p + ")";
  }
  if (spincount != nullptr) out += (out.empty() ? "" : ", ") + std::string("GOMP_SPINCOUNT=") + spincount;
  return out.empty() ? "OpenMP default (spin, then sleep)" : out;
}

}  // namespace quarot
