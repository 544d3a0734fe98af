#pragma once
// The FP32 CPU backend (backend.h) for an explicit instruction set, for tests and
// benchmarks that compare paths; make_cpu_backend() picks best_isa().
#include <memory>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_features.h"

namespace quarot {

// Throws quarot::Error if `isa` is not supported by this CPU.
std::unique_ptr<Backend> make_cpu_backend(Isa isa);

}  // namespace quarot
