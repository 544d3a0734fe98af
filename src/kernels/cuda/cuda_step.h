#pragma once
// What a recorded forward step (Backend::run_step, CUDA graphs) needs from the
// kernels' callers, shared by the backend, the KV storage and the attention:
//  - StepPositions: while a step is being queued in step mode, ops that depend on
//    the position read it from device memory (`pos`, an int the backend writes
//    before each launch) instead of baking the host value into their launch
//    arguments, so one recording serves every position. The host value is still
//    passed to every op and must equal `pos0` (a check, not an input).
//  - device_memory_epoch(): bumped whenever a reused scratch buffer is reallocated
//    (its address changes); a recording made under an older epoch holds stale
//    addresses and is recorded again.
#include <atomic>
#include <cstdint>

namespace quarot::cuda {

struct StepPositions {
  bool active = false;     // a step is being queued in step mode
  int64_t pos0 = 0;        // its first position (host copy, for the checks)
  int64_t n = 0;           // its token count
  const int* pos = nullptr;  // device: the first position, read by the kernels
};

inline std::atomic<uint64_t>& device_memory_epoch() {
  static std::atomic<uint64_t> epoch{0};
  return epoch;
}
inline void bump_device_memory_epoch() { device_memory_epoch().fetch_add(1, std::memory_order_relaxed); }

}  // namespace quarot::cuda
