#pragma once
// Where a forward pass spends its time, op by op: a Backend that forwards every call
// to another one and times it (wall clock, the inner backend synchronized after each
// op, so a GPU's asynchronous launches are charged to the op that issued them). Ops
// are grouped by kind, linear products by the name the model gives them (q_proj,
// down_proj, lm_head, ...), with the weight bytes each product read. Timing costs a
// clock read per op (and, on a GPU, a stream synchronization, which makes the
// profiled run slower than an unprofiled one: compare shares, not totals).
//
//   auto profile = std::make_shared<OpProfile>();
//   auto backend = make_profiling_backend(make_cpu_backend(), profile);
//   ... run the model on `backend` ...; profile->entries() / profile->reset()
//
// Inside an op, the phases a backend reports (kernels/op_phases.h: the activation
// quantization inside a product) are recorded as the part of the op's time they took.
//
// Not thread-safe: one caller issues the ops (as LlamaModel does); so it reports no
// concurrent forwards, and it records no step graphs (a recording cannot hold the
// synchronizations that time each op): a profiled GPU runs op by op.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/op_phases.h"

namespace quarot {

class OpProfile {
 public:
  struct Entry {
    std::string op;        // "linear q_proj", "attention", "rmsnorm", "kv append", ...
    int64_t calls = 0;
    double seconds = 0;
    double weight_bytes = 0;  // linear products: bytes of weight read (PackedWeight::bytes per call)
    double rows = 0;          // rows (tokens) processed, summed over calls
    OpPhaseTimes phases;      // of `seconds`, what the backend reported per phase
  };
  void add(const std::string& op, double seconds, int64_t rows, double weight_bytes = 0,
           const OpPhaseTimes& phases = {});
  // Sorted by time, largest first.
  std::vector<Entry> entries() const;
  double total_seconds() const;
  void reset() { entries_.clear(); }

 private:
  std::map<std::string, Entry> entries_;
};

std::shared_ptr<Backend> make_profiling_backend(std::shared_ptr<const Backend> inner,
                                                std::shared_ptr<OpProfile> profile);

}  // namespace quarot
