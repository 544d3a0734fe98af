#pragma once
// Shared by the pipeline tests: the backend calibration runs on (the simulated FP32
// reference, as the command line uses).
#include <memory>

#include "kernels/cpu/cpu_backend.h"

namespace quarot {

inline std::shared_ptr<const Backend> calibration_backend() {
  static const std::shared_ptr<const Backend> backend = make_cpu_backend(CpuBackendOptions{.simulate = true, .isa = {}});
  return backend;
}

}  // namespace quarot
