// The residual add fused into an integer product (LinearOp::accumulate) against the
// product into a buffer followed by Backend::add, interleaved call by call on one
// W4A4 weight (512 rows, in -> 576, SmolLM2's o_proj / down_proj shapes); prints the
// best of 40 of each as one JSON object.
// Build: cmake --build <dir> --target bench_residual_epilogue
// Run:   <dir>/bench/bench_residual_epilogue [in_features=1536]   (threads: QUAROT_THREADS)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "common/rng.h"
#include "common/threads.h"
#include "kernels/cpu/cpu_backend.h"

int main(int argc, char** argv) {
  using namespace quarot;
  const int64_t out = 576, in = argc > 1 ? std::atoi(argv[1]) : 1536, n = 512;
  if (in <= 0) return 1;
  set_num_threads(0, true);  // QUAROT_THREADS / OMP_NUM_THREADS, capped at the processors
  Rng rng(1);
  std::vector<uint8_t> codes(static_cast<size_t>(out * in));
  for (auto& c : codes) c = static_cast<uint8_t>(rng.below(16));
  const std::vector<float> scales(static_cast<size_t>(out), 0.01f), zeros;
  const WeightEncoding w = make_int_grid_weight(4, true, 0, out, in, codes, scales, zeros);
  const auto be = make_cpu_backend(CpuBackendOptions{});
  const auto packed = be->pack(w);
  std::vector<float> x(static_cast<size_t>(n * in)), residual(static_cast<size_t>(n * out)), product(residual.size());
  for (auto& v : x) v = static_cast<float>(rng.normal());
  for (auto& v : residual) v = static_cast<float>(rng.normal());
  LinearOp op;
  op.weight = packed.get();
  op.act.bits = 4;
  op.act.clip_ratio = 0.9f;
  LinearOp fused = op;
  fused.accumulate = true;
  using Clock = std::chrono::steady_clock;
  double separate = 1e9, accumulate = 1e9;
  for (int it = 0; it < 40; ++it) {
    const auto t0 = Clock::now();
    be->linear(op, x.data(), n, product.data());
    be->add(residual.data(), product.data(), n * out);
    const auto t1 = Clock::now();
    be->linear(fused, x.data(), n, residual.data());
    const auto t2 = Clock::now();
    separate = std::min(separate, std::chrono::duration<double>(t1 - t0).count());
    accumulate = std::min(accumulate, std::chrono::duration<double>(t2 - t1).count());
  }
  std::printf("{\"rows\": %lld, \"in\": %lld, \"out\": %lld, \"backend\": \"%s\", \"linear_then_add_ms\": %.3f, "
              "\"accumulate_ms\": %.3f}\n",
              static_cast<long long>(n), static_cast<long long>(in), static_cast<long long>(out), be->name().c_str(),
              separate * 1e3, accumulate * 1e3);
  return 0;
}
