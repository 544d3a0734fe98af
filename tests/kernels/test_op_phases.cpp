// Phase times inside one backend op (kernels/op_phases.h): recorded only where a
// profiler installed them, nested installs restore the outer one, and the activation
// quantizer splits a fused RMSNorm / SwiGLU pass into its two phases, the decode
// products time their kernels (and CLAQ's its serial gather).
#include "kernels/op_phases.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "codebook_test_util.h"
#include "kernel_test_util.h"
#include "kernels/cpu/act_quant.h"
#include "kernels/cpu/codebook_int8.h"
#include "kernels/cpu/int_gemm.h"

namespace quarot {
namespace {

constexpr std::size_t kQuantize = op_phase_index(OpPhase::kActivationQuantize);
constexpr std::size_t kPrologue = op_phase_index(OpPhase::kFusedPrologue);
constexpr std::size_t kGather = op_phase_index(OpPhase::kCodebookGather);
constexpr std::size_t kKernels = op_phase_index(OpPhase::kProductKernels);

TEST(OpPhases, NamesComeFromTheOneList) {
  EXPECT_EQ(kOpPhaseCount, 4u);
  EXPECT_EQ(std::string(op_phase_name(OpPhase::kActivationQuantize)), "activation quantize");
  EXPECT_EQ(std::string(op_phase_name(OpPhase::kFusedPrologue)), "fused norm/gating");
  EXPECT_EQ(std::string(op_phase_name(OpPhase::kCodebookGather)), "codebook gather");
  EXPECT_EQ(std::string(op_phase_name(OpPhase::kProductKernels)), "product kernels");
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

// The decode products say how long their kernels ran and, for CLAQ, how long the serial
// gather before them took; each phase inside the call's wall time, nothing recorded
// where no times are installed.
TEST(OpPhases, DecodeProductsTimeTheirKernelsAndTheCodebookGather) {
  const int64_t rows = 256, cols = 512;
  const auto x = test::random_floats(cols, 5);
  QuantizedActivations a8;
  quantize_activations(x.data(), 1, cols, nullptr, ActQuantSpec{8, 1.0f, 0, true}, a8, Isa::kScalar);

  const auto cc = test::random_codebook(rows, cols, {2, 4}, 6, 0);
  const WeightEncoding e = cc.encode();
  const CodebookInt8Weight cw = pack_codebook_int8(e);
  std::vector<float> y(rows);
  const CodebookInt8Product cp{&cw, nullptr, nullptr, y.data()};

  std::vector<uint8_t> codes(rows * cols / 2);
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>(i * 37 + 11);
  std::vector<float> scales(rows, 0.01f);
  const IntGemmWeight iw = pack_int_gemm_weight(IntWeightSource{rows, cols, 4, 0, codes.data(), scales.data(), nullptr},
                                                best_isa());
  const IntGemmProduct ip{&iw, nullptr, nullptr, y.data()};

  for (const bool codebook : {true, false}) {
    OpPhaseTimes times;
    const auto t0 = std::chrono::steady_clock::now();
    {
      const ScopedOpPhaseTimes install(&times);
      if (codebook)
        codebook_int8_gemv(&cp, 1, a8, !codebook_int8_fast_available());
      else
        int_gemm_many(&ip, 1, a8);
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string what = codebook ? "CLAQ" : "int4";
    EXPECT_GT(times.seconds[kKernels], 0.0) << what;
    if (codebook) {
      EXPECT_GT(times.seconds[kGather], 0.0) << what;
    } else {
      EXPECT_EQ(times.seconds[kGather], 0.0) << what;
    }
    EXPECT_EQ(times.seconds[kQuantize], 0.0) << what;  // the input came quantized
    EXPECT_LE(times.seconds[kKernels] + times.seconds[kGather], wall) << what;
  }
  codebook_int8_gemv(&cp, 1, a8, !codebook_int8_fast_available());
  EXPECT_EQ(installed_op_phase_times(), nullptr);
}

}  // namespace
}  // namespace quarot
