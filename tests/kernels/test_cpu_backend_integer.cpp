// The CPU backend's integer path (encoded weights, integer activations, packed KV
// cache) against its own simulated reference (CpuBackendOptions::simulate): the
// activation codes are the same bit for bit, so one linear differs only by the FP32
// summation order of the reference (int32 sums are exact).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/half.h"
#include "kernel_test_util.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/kv_code_tiles.h"
#include "kernels/cpu/kv_prefill_int8.h"

namespace quarot {
namespace {

WeightEncoding random_int_weight(int64_t rows, int64_t cols, int bits, bool symmetric, int64_t group, uint64_t seed) {
  Rng rng(seed);
  const int64_t ng = group > 0 ? cols / group : 1;
  std::vector<uint8_t> codes(rows * cols);
  for (auto& c : codes) c = static_cast<uint8_t>(rng.below(1u << bits));
  std::vector<float> scales(rows * ng), zeros;
  for (auto& s : scales) s = static_cast<float>(0.001 + 0.01 * rng.uniform());
  if (!symmetric) {
    zeros.resize(rows * ng);
    for (auto& z : zeros) z = static_cast<float>(rng.below(1u << bits));
  }
  return make_int_grid_weight(bits, symmetric, group, rows, cols, codes, scales, zeros);
}

double max_rel_err(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    num = std::max(num, std::fabs(static_cast<double>(got[i]) - want[i]));
    den = std::max(den, std::fabs(static_cast<double>(want[i])));
  }
  return num / den;
}

struct Case {
  int w_bits, a_bits;
  bool w_sym, a_sym;
  int64_t w_group, a_group;
};

TEST(CpuBackendInteger, LinearAgreesWithTheSimulatedReference) {
  const int64_t out = 37, in = 256;
  OnlineRotation rot;  // H_64 x 4 blocks, as QuaRot's online down_proj rotation
  rot.k = 4;
  rot.p = 64;
  rot.m = test::random_orthogonal(4, 5);
  const auto bias = test::random_floats(out, 3);
  for (const Case& c : {Case{4, 4, true, true, 0, 0}, Case{4, 8, true, true, 0, 0}, Case{8, 8, true, true, 0, 0},
                        Case{4, 4, false, false, 64, 64}, Case{4, 4, true, true, 128, 0}, Case{8, 8, false, true, 0, 32}}) {
    const WeightEncoding w = random_int_weight(out, in, c.w_bits, c.w_sym, c.w_group, 7);
    for (Isa isa : test::supported_isas()) {
      const auto integer = make_cpu_backend(CpuBackendOptions{.simulate = false, .isa = isa_name(isa)});
      const auto reference = make_cpu_backend(CpuBackendOptions{.simulate = true, .isa = isa_name(isa)});
      const auto pi = integer->pack(w);
      const auto pr = reference->pack(w);
      for (int64_t n : {1, 3, 40}) {
        const auto x = test::random_floats(n * in, 100 + n, -3.0, 3.0);
        LinearOp op;
        op.bias = bias.data();
        op.input_rotation = &rot;
        op.act.bits = c.a_bits;
        op.act.clip_ratio = 0.9f;
        op.act.group = c.a_group;
        op.act.symmetric = c.a_sym;
        std::vector<float> yi(n * out), yr(n * out);
        op.weight = pi.get();
        integer->linear(op, x.data(), n, yi.data());
        op.weight = pr.get();
        reference->linear(op, x.data(), n, yr.data());
        const double err = max_rel_err(yi, yr);
        // Float rounding of a 256-term FP32 sum, not quantization noise (>= 1e-2).
        EXPECT_LT(err, 2e-6) << "W" << c.w_bits << "A" << c.a_bits << " groups " << c.w_group << "/" << c.a_group
                             << " n " << n << " " << isa_name(isa);
      }
    }
  }
}

// LinearOp::accumulate (the residual add fused into the product) gives exactly what
// linear() into a buffer followed by add() gives, on every path that can run a
// product: integer GEMM and GEMV (n <= 8), the simulated FP32 reference, weight-only
// GEMM (no activation quantizer), and linears() sharing one quantization.
TEST(CpuBackendInteger, AccumulateEqualsLinearThenAddBitForBit) {
  const int64_t out = 40, in = 128;
  OnlineRotation rot;
  rot.k = 2;
  rot.p = 64;
  rot.m = test::random_orthogonal(2, 6);
  const auto bias = test::random_floats(out, 4);
  const WeightEncoding w = random_int_weight(out, in, 4, false, 64, 9);
  for (Isa isa : test::supported_isas()) {
    for (bool simulate : {false, true}) {
      const auto be = make_cpu_backend(CpuBackendOptions{.simulate = simulate, .isa = isa_name(isa)});
      const auto pw = be->pack(w);
      for (bool quantize : {true, false}) {
        for (int64_t n : {1, 5, 40}) {
          const auto x = test::random_floats(n * in, 200 + n, -2.0, 2.0);
          const auto residual = test::random_floats(n * out, 300 + n, -5.0, 5.0);
          LinearOp op;
          op.weight = pw.get();
          op.bias = bias.data();
          op.input_rotation = &rot;
          if (quantize) {
            op.act.bits = 4;
            op.act.clip_ratio = 0.9f;
          }
          std::vector<float> product(n * out), want = residual, got = residual;
          be->linear(op, x.data(), n, product.data());
          be->add(want.data(), product.data(), n * out);
          op.accumulate = true;
          be->linear(op, x.data(), n, got.data());
          const std::string where = std::string(isa_name(isa)) + (simulate ? " simulated" : " integer") +
                                    (quantize ? " A4" : " A16") + " n " + std::to_string(n);
          ASSERT_EQ(got, want) << where;
          // The add happened: the result is neither the residual nor the product alone.
          int64_t moved = 0;
          for (int64_t i = 0; i < n * out; ++i) moved += got[i] != residual[i] && got[i] != product[i];
          EXPECT_GT(moved, n * out * 9 / 10) << where;

          // Two products on one input (gate/up), the first accumulating.
          std::vector<float> a = residual, b(n * out, NAN);
          std::array<LinearOp, 2> ops{op, op};
          ops[1].accumulate = false;
          float* const ys[2] = {a.data(), b.data()};
          be->linears(ops.data(), 2, x.data(), n, ys);
          EXPECT_EQ(a, want) << where;
          EXPECT_EQ(b, product) << where;
        }
      }
    }
  }
}

// rmsnorm_linears and swiglu_linear (the integer path normalizes / gates each row inside
// the activation quantizer) give the bits of the separate calls, on every path, integer
// and simulated (the simulated backend runs the defaults), accumulating or not.
TEST(CpuBackendInteger, FusedNormAndGatingEqualTheSeparateCalls) {
  const int64_t in = 128, out = 48;
  OnlineRotation rot;
  rot.k = 2;
  rot.p = 64;
  rot.m = test::random_orthogonal(2, 16);
  const WeightEncoding w1 = random_int_weight(out, in, 4, true, 0, 17);
  const WeightEncoding w2 = random_int_weight(out, in, 4, false, 64, 18);
  const auto norm_w = test::random_floats(in, 19, 0.5, 1.5);
  for (Isa isa : test::supported_isas()) {
    for (bool simulate : {false, true}) {
      const auto be = make_cpu_backend(CpuBackendOptions{.simulate = simulate, .isa = isa_name(isa)});
      const auto p1 = be->pack(w1), p2 = be->pack(w2);
      for (int64_t n : {1, 9, 70}) {
        const std::string where =
            std::string(isa_name(isa)) + (simulate ? " simulated" : " integer") + " n " + std::to_string(n);
        const auto x = test::random_floats(n * in, 500 + n, -3.0, 3.0);
        const auto up = test::random_floats(n * in, 600 + n, -2.0, 2.0);
        const auto residual = test::random_floats(n * out, 700 + n, -1.0, 1.0);
        std::array<LinearOp, 2> ops;
        ops[0].weight = p1.get();
        ops[1].weight = p2.get();
        for (LinearOp& op : ops) {
          op.input_rotation = &rot;
          op.act.bits = 4;
          op.act.clip_ratio = 0.9f;
        }
        ops[1].accumulate = true;
        // RMSNorm, then two products on the normalized rows.
        std::vector<float> h(n * in), want0(n * out), want1 = residual, got0(n * out), got1 = residual;
        be->rmsnorm(x.data(), norm_w.data(), n, in, 1e-5f, h.data());
        float* const want_ys[2] = {want0.data(), want1.data()};
        be->linears(ops.data(), 2, h.data(), n, want_ys);
        std::vector<float> scratch(n * in);
        float* const got_ys[2] = {got0.data(), got1.data()};
        be->rmsnorm_linears(x.data(), norm_w.data(), in, 1e-5f, ops.data(), 2, n, scratch.data(), got_ys);
        ASSERT_EQ(got0, want0) << where << " rmsnorm_linears";
        ASSERT_EQ(got1, want1) << where << " rmsnorm_linears (accumulating)";
        // SwiGLU gating, then the accumulating product.
        std::vector<float> gated(n * in), want = residual, got = residual, gate = x;
        be->swiglu(x.data(), up.data(), n * in, gated.data());
        be->linear(ops[1], gated.data(), n, want.data());
        be->swiglu_linear(ops[1], gate.data(), up.data(), n, got.data());
        ASSERT_EQ(got, want) << where << " swiglu_linear";
        EXPECT_NE(got, residual) << where;
      }
    }
  }
}

// rmsnorm_swiglu: where the backend gates inside the gate/up products (the integer
// prefill on AMX, per-row weights and activations) the result is the separate calls'
// (rmsnorm_linears, then swiglu) bit for bit; elsewhere it declines and writes nothing.
TEST(CpuBackendInteger, GatedProductsEqualTheSeparateCalls) {
  const int64_t in = 576, hidden = 96;
  OnlineRotation identity;
  const auto norm_w = test::random_floats(in, 29, 0.5, 1.5);
  for (Isa isa : test::supported_isas()) {
    for (bool simulate : {false, true}) {
      for (int64_t wgroup : {int64_t{0}, int64_t{64}}) {
        const auto be = make_cpu_backend(CpuBackendOptions{.simulate = simulate, .isa = isa_name(isa)});
        const auto pg = be->pack(random_int_weight(hidden, in, 4, true, wgroup, 27));
        const auto pu = be->pack(random_int_weight(hidden, in, 4, false, wgroup, 28));
        for (int64_t n : {1, 8, 9, 70}) {
          const std::string where = std::string(isa_name(isa)) + (simulate ? " simulated" : " integer") +
                                    " group " + std::to_string(wgroup) + " n " + std::to_string(n);
          const auto x = test::random_floats(n * in, 800 + n, -3.0, 3.0);
          LinearOp gate, up;
          gate.weight = pg.get();
          up.weight = pu.get();
          for (LinearOp* op : {&gate, &up}) {
            op->input_rotation = &identity;
            op->act.bits = 4;
            op->act.clip_ratio = 0.9f;
          }
          std::vector<float> got(n * hidden, -777.0f);
          const bool fused = be->rmsnorm_swiglu(x.data(), norm_w.data(), in, 1e-5f, gate, up, n, got.data());
          EXPECT_EQ(fused, !simulate && isa == Isa::kAmx && n > 8 && wgroup == 0) << where;
          if (!fused) {
            EXPECT_EQ(got, std::vector<float>(n * hidden, -777.0f)) << where << ": declined but wrote";
            continue;
          }
          const std::array<LinearOp, 2> ops{gate, up};
          std::vector<float> g(n * hidden), u(n * hidden), want(n * hidden), scratch(n * in);
          float* const ys[2] = {g.data(), u.data()};
          be->rmsnorm_linears(x.data(), norm_w.data(), in, 1e-5f, ops.data(), 2, n, scratch.data(), ys);
          be->swiglu(g.data(), u.data(), n * hidden, want.data());
          ASSERT_EQ(got, want) << where;
        }
      }
    }
  }
}

// Full-precision activations (W4A16, an FP16 lm_head) read the encoding in place
// (weight-only GEMM) and agree with the reference's FP32 copy to float rounding.
TEST(CpuBackendInteger, FullPrecisionActivationsReadTheEncodingInPlace) {
  std::vector<uint16_t> half(9 * 64);
  const auto hv = test::random_floats(9 * 64, 10);
  for (size_t i = 0; i < half.size(); ++i) half[i] = fp32_to_fp16(hv[i]);
  for (const WeightEncoding& w : {random_int_weight(9, 64, 4, true, 0, 8), random_int_weight(9, 64, 8, false, 32, 8),
                                  f16_weight(half.data(), 9, 64)}) {
    const auto integer = make_cpu_backend(CpuBackendOptions{});
    const auto reference = make_cpu_backend(CpuBackendOptions{.simulate = true, .isa = {}});
    const auto pi = integer->pack(w), pr = reference->pack(w);
    for (int64_t n : {1, 2, 20}) {
      const auto x = test::random_floats(n * 64, 9 + n);
      std::vector<float> yi(n * 9), yr(n * 9);
      LinearOp op;  // no activation quantizer
      op.weight = pi.get();
      integer->linear(op, x.data(), n, yi.data());
      op.weight = pr.get();
      reference->linear(op, x.data(), n, yr.data());
      EXPECT_LT(max_rel_err(yi, yr), 2e-6) << weight_kind_name(w.kind) << " n " << n;
    }
  }
}

TEST(CpuBackendInteger, PackedKvCacheAttentionAgreesWithTheReference) {
  KvCacheSpec spec;
  spec.n_layers = 2;
  spec.n_kv_heads = 3;
  spec.head_dim = 64;
  spec.capacity = 40;
  spec.k.bits = spec.v.bits = 4;
  spec.intact_kv = true;
  const AttentionShape shape{9, 3, 64};
  // The float products (int8_attention off) agree to float rounding; the default's int8
  // products (prefill where this CPU has VNNI, decode where it also has VBMI) to their
  // code roundings.
  const auto integer = make_cpu_backend(CpuBackendOptions{.simulate = false, .isa = {}, .int8_attention = false});
  const auto int8 = make_cpu_backend(CpuBackendOptions{});
  const auto reference = make_cpu_backend(CpuBackendOptions{.simulate = true, .isa = {}});
  const bool vnni = kv_detail::prefill_int8_kernels_for(best_isa(), 64) != nullptr;
  const bool vbmi = kv_detail::code_tile_kernels_int8_for(best_isa(), 64, 64, true) != nullptr;
  auto ki = integer->make_kv_storage(spec), kr = reference->make_kv_storage(spec);
  // The packed cache holds a fraction of the FP32 bytes: 4-bit codes + scale and zero per head.
  EXPECT_EQ(ki->bytes_per_position(), 2 * 2 * 3 * (32 + 8));
  EXPECT_EQ(kr->bytes_per_position(), 2 * 2 * 3 * 64 * 4);
  int64_t pos = 0;
  for (int64_t n : {17, 1, 1, 5}) {
    const auto k = test::random_floats(n * 192, 20 + pos), v = test::random_floats(n * 192, 40 + pos);
    const auto q = test::random_floats(n * 9 * 64, 60 + pos);
    for (int64_t layer = 0; layer < 2; ++layer) {
      ki->append(layer, pos, n, k.data(), v.data());
      kr->append(layer, pos, n, k.data(), v.data());
      std::vector<float> oi(n * 9 * 64), orf(n * 9 * 64);
      integer->attention(q.data(), n, pos, *ki, layer, shape, 0.125f, oi.data());
      reference->attention(q.data(), n, pos, *kr, layer, shape, 0.125f, orf.data());
      EXPECT_LT(max_rel_err(oi, orf), 1e-5) << "n " << n << " pos " << pos;
      std::vector<float> o8(n * 9 * 64);
      int8->attention(q.data(), n, pos, *ki, layer, shape, 0.125f, o8.data());
      if (n >= 16 ? vnni : vbmi) {
        EXPECT_GT(max_rel_err(o8, orf), 1e-5) << "n " << n << " pos " << pos;
        EXPECT_LT(max_rel_err(o8, orf), 5e-2) << "n " << n << " pos " << pos;
      } else {
        EXPECT_EQ(o8, oi) << "n " << n << " pos " << pos;
      }
    }
    pos += n;
  }
}

TEST(CpuBackendInteger, NameSaysWhichArithmeticRuns) {
  EXPECT_EQ(make_cpu_backend(CpuBackendOptions{})->name().rfind("cpu-int ", 0), 0u);
  EXPECT_EQ(make_cpu_backend(CpuBackendOptions{.simulate = true, .isa = {}})->name().rfind("cpu-fp32 ", 0), 0u);
  EXPECT_THROW(make_cpu_backend(CpuBackendOptions{.isa = "sse9"}), Error);
}

}  // namespace
}  // namespace quarot
