// Phase times inside one backend op (kernels/op_phases.h): recorded only where a
// profiler installed them, nested installs restore the outer one, and the activation
// quantizer splits a fused RMSNorm / SwiGLU pass into its two phases.
#include "kernels/op_phases.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "kernel_test_util.h"
#include "kernels/cpu/act_quant.h"

namespace quarot {
namespace {

constexpr std::size_t kQuantize = op_phase_index(OpPhase::kActivationQuantize);
constexpr std::size_t kPrologue = op_phase_index(OpPhase::kFusedPrologue);

TEST(OpPhases, NamesComeFromTheOneList) {
  EXPECT_EQ(kOpPhaseCount, 2u);
  EXPECT_EQ(std::string(op_phase_name(OpPhase::kActivationQuantize)), "activation quantize");
  EXPECT_EQ(std::string(op_phase_name(OpPhase::kFusedPrologue)), "fused norm/gating");
}

TEST(OpPhases, TimersAddToTheInnermostInstalledTimesOnly) {
  ASSERT_EQ(installed_op_phase_times(), nullptr);
  { const OpPhaseTimer nobody_listens(OpPhase::kActivationQuantize); }  // no times installed: nothing to add to
  OpPhaseTimes outer, inner;
  {
    const ScopedOpPhaseTimes install_outer(&outer);
    {
      const ScopedOpPhaseTimes install_inner(&inner);
      EXPECT_EQ(installed_op_phase_times(), &inner);
      const OpPhaseTimer t(OpPhase::kFusedPrologue);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    EXPECT_EQ(installed_op_phase_times(), &outer);
    const OpPhaseTimer t(OpPhase::kActivationQuantize);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(installed_op_phase_times(), nullptr);
  EXPECT_GE(inner.seconds[kPrologue], 0.002);
  EXPECT_EQ(inner.seconds[kQuantize], 0.0);
  EXPECT_GE(outer.seconds[kQuantize], 0.001);
  EXPECT_EQ(outer.seconds[kPrologue], 0.0);
}

TEST(OpPhases, QuantizerSplitsAFusedPrologueOffItsPass) {
  const int64_t rows = 64, cols = 1024;
  const auto gate = test::random_floats(rows * cols, 3), up = test::random_floats(rows * cols, 4);
  const OnlineRotation hadamard{1, cols, 1, {}};
  const ActQuantSpec spec{4, 1.0f, 0, true};
  ActPrologue swiglu;
  swiglu.up = up.data();
  QuantizedActivations q;
  for (const bool with_prologue : {true, false}) {
    OpPhaseTimes times;
    const auto t0 = std::chrono::steady_clock::now();
    {
      const ScopedOpPhaseTimes install(&times);
      if (with_prologue)
        quantize_activations(gate.data(), swiglu, rows, cols, &hadamard, spec, q, best_isa());
      else
        quantize_activations(gate.data(), rows, cols, &hadamard, spec, q, best_isa());
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string what = with_prologue ? "with SwiGLU" : "without a prologue";
    EXPECT_GT(times.seconds[kQuantize], 0.0) << what;
    if (with_prologue) {
      EXPECT_GT(times.seconds[kPrologue], 0.0) << what;
    } else {
      EXPECT_EQ(times.seconds[kPrologue], 0.0) << what;
    }
    // The two parts split the pass's wall time: together no more than the call took.
    EXPECT_LE(times.seconds[kQuantize] + times.seconds[kPrologue], wall) << what;
  }
  // Not installed: the quantizer records nothing and still works.
  quantize_activations(gate.data(), swiglu, rows, cols, &hadamard, spec, q, best_isa());
  EXPECT_EQ(installed_op_phase_times(), nullptr);
}

}  // namespace
}  // namespace quarot
