#pragma once
// The parts of one backend op, for profilers. A fused op (an RMSNorm feeding q/k/v, a
// product with its activation quantization) is one backend call, so a clock around the
// call cannot say how its time splits. While an OpPhaseTimes is installed on the
// calling thread (ProfilingBackend installs one around every op), a backend adds the
// wall time of each named phase it runs to it; with none installed a phase costs one
// thread-local load. Phases nest inside an op, never across ops.
//
//   OpPhaseTimes times;
//   { ScopedOpPhaseTimes install(&times); backend.linear(op, x, n, y); }
//   times.seconds[op_phase_index(OpPhase::kActivationQuantize)]
#include <array>
#include <chrono>
#include <cstddef>

namespace quarot {

// One list; names and counts derive from it.
#define QUAROT_OP_PHASES(X)                                                                 \
  /* a product's input made ready for the integer kernel, or fake-quantized for the */      \
  /* simulated one: the online Hadamard and the quantization to codes */                    \
  X(kActivationQuantize, "activation quantize")                                             \
  /* the RMSNorm or SwiGLU computed inside that pass (ActPrologue): its share of the */     \
  /* pass's threads' time, applied to the pass's wall time */                               \
  X(kFusedPrologue, "fused norm/gating")                                                   \
  /* a CLAQ integer product's serial step: the codes put in the weight's slot order, */    \
  /* the groups' sums and scales */                                                         \
  X(kCodebookGather, "codebook gather")                                                     \
  /* the integer decode products' kernels: their parallel region (or the calling */         \
  /* thread's loop for small ones), fork and join included */                               \
  X(kProductKernels, "product kernels")

enum class OpPhase {
#define QUAROT_OP_PHASE_ENUM(id, name) id,
  QUAROT_OP_PHASES(QUAROT_OP_PHASE_ENUM)
#undef QUAROT_OP_PHASE_ENUM
};
inline constexpr std::size_t kOpPhaseCount = 0
#define QUAROT_OP_PHASE_COUNT(id, name) +1
    QUAROT_OP_PHASES(QUAROT_OP_PHASE_COUNT)
#undef QUAROT_OP_PHASE_COUNT
    ;
constexpr std::size_t op_phase_index(OpPhase p) { return static_cast<std::size_t>(p); }
const char* op_phase_name(OpPhase p);

struct OpPhaseTimes {
  std::array<double, kOpPhaseCount> seconds{};
};

// The times installed on this thread, or null.
OpPhaseTimes* installed_op_phase_times();

class ScopedOpPhaseTimes {
 public:
  explicit ScopedOpPhaseTimes(OpPhaseTimes* times);
  ~ScopedOpPhaseTimes();
  ScopedOpPhaseTimes(const ScopedOpPhaseTimes&) = delete;
  ScopedOpPhaseTimes& operator=(const ScopedOpPhaseTimes&) = delete;

 private:
  OpPhaseTimes* previous_;
};

// Adds its lifetime to `phase` of the installed times, if any (a backend wraps the
// phase's code in one).
class OpPhaseTimer {
 public:
  explicit OpPhaseTimer(OpPhase phase) : times_(installed_op_phase_times()), phase_(phase) {
    if (times_ != nullptr) t0_ = std::chrono::steady_clock::now();
  }
  ~OpPhaseTimer() {
    if (times_ != nullptr)
      times_->seconds[op_phase_index(phase_)] +=
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }
  OpPhaseTimer(const OpPhaseTimer&) = delete;
  OpPhaseTimer& operator=(const OpPhaseTimer&) = delete;

 private:
  OpPhaseTimes* times_;
  OpPhase phase_;
  std::chrono::steady_clock::time_point t0_{};
};

}  // namespace quarot
