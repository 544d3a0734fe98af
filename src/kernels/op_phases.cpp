#include "kernels/op_phases.h"

namespace quarot {
namespace {
thread_local OpPhaseTimes* installed = nullptr;
}  // namespace

const char* op_phase_name(OpPhase p) {
  switch (p) {
#define QUAROT_OP_PHASE_NAME(id, name) \
  case OpPhase::id:                    \
    return name;
    QUAROT_OP_PHASES(QUAROT_OP_PHASE_NAME)
#undef QUAROT_OP_PHASE_NAME
  }
  return "unknown phase";
}

OpPhaseTimes* installed_op_phase_times() { return installed; }

ScopedOpPhaseTimes::ScopedOpPhaseTimes(OpPhaseTimes* times) : previous_(installed) { installed = times; }
ScopedOpPhaseTimes::~ScopedOpPhaseTimes() { installed = previous_; }

}  // namespace quarot
