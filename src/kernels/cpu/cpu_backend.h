#pragma once
// The FP32 CPU backend (backend.h) for an explicit instruction set, for tests and
// benchmarks that compare paths; make_cpu_backend() picks best_isa().
#include <memory>
#include <string>

#include "kernels/backend.h"
#include "kernels/cpu/cpu_features.h"

namespace quarot {

// Throws quarot::Error if `isa` is not supported by this CPU.
std::unique_ptr<Backend> make_cpu_backend(Isa isa);

struct CpuBackendOptions {
  // Compute the simulated arithmetic in FP32 (the reference), even where integer
  // kernels could run the encoded weights.
  bool simulate = false;
  // Instruction-set path by name ("scalar", "avx2", ...); empty = best_isa()
  // (which honours QUAROT_ISA).
  std::string isa;
  // Integer backend: attention over a quantized KV cache (prefill and decode) multiplies
  // in int8 where the CPU has AVX-512 VNNI (kv_attention.h, KvProducts::kInt8);
  // false, or QUAROT_INT8_ATTENTION=0 in the environment, keeps FP32 products.
  bool int8_attention = true;
};
std::shared_ptr<const Backend> make_cpu_backend(const CpuBackendOptions& options);

}  // namespace quarot
