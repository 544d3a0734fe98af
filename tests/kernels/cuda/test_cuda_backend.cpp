// The CUDA backend (kernels/cuda/cuda_backend.h) against the CPU backends on seeded
// random data. Needs an sm_90 GPU: CI builds it, scripts/cuda_test.sh runs it.
// Bounds (u = 2^-24, float rounding; h = 2^-11, FP16 rounding):
//  - rotate, add, embed, integer linear vs the CPU integer path: the same float
//    operations in the same order (or exact integer sums and the same epilogue),
//    so bit-identical;
//  - rmsnorm, rope, swiglu: a different summation order / a libm within 2 ulp:
//    a few u relative to the magnitudes involved (derived per op below);
//  - FP16-path linear vs the CPU's FP32 simulated reference: both operands rounded
//    to FP16 (|dx| <= h|x|, |dw| <= h|w|) plus float accumulation:
//      |dy| <= (2h + h^2 + 2 K u) * sum_k |x_k w_k|,
//    and vs a double reference on the FP16-rounded operands: |dy| <= 2 K u sum|x w|.
// Every comparison also checks the output is not trivially close (a no-op fails).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/half.h"
#include "common/rng.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "model/llama_model.h"
#include "transform/random_orthogonal.h"

namespace quarot {
namespace {

constexpr double kU = 0x1.0p-24;
constexpr double kH = 0x1.0p-11;

// Kept for the whole process and never destroyed: nothing runs on the GPU after
// main() returns, while the CUDA runtime is being torn down.
std::shared_ptr<const Backend> gpu_shared() {
  static const auto* b = new std::shared_ptr<const Backend>(make_cuda_backend());
  return *b;
}
const Backend& gpu() { return *gpu_shared(); }
const Backend& cpu_sim() {
  static const std::shared_ptr<const Backend> b = make_cpu_backend(CpuBackendOptions{true, ""});
  return *b;
}
const Backend& cpu_int() {
  static const std::shared_ptr<const Backend> b = make_cpu_backend(CpuBackendOptions{false, ""});
  return *b;
}

std::vector<float> normals(int64_t n, uint64_t seed, float scale = 1.0f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal()) * scale;
  return v;
}

BackendBuffer dev(const std::vector<float>& h) { return gpu().upload(h.data(), static_cast<int64_t>(h.size())); }
std::vector<float> host(const BackendBuffer& b, int64_t n) {
  std::vector<float> h(n);
  gpu().download(b.data(), n, h.data());
  return h;
}

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Count of elements whose bit patterns differ (+0 and -0 count as equal).
int64_t bit_mismatches(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  int64_t bad = 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (bits_of(a[i]) != bits_of(b[i]) && !(a[i] == 0.0f && b[i] == 0.0f)) ++bad;
  return bad;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

OnlineRotation rotation(int64_t k, int64_t p, int64_t inner, uint64_t seed) {
  OnlineRotation r;
  r.k = k;
  r.p = p;
  r.inner = inner;
  if (k > 1) {
    const std::vector<double> m = random_orthogonal(k, seed);
    r.m.assign(m.begin(), m.end());
  }
  return r;
}

// ---------------------------------------------------------------------------

TEST(CudaBackend, NameAndMemory) {
  const std::string name = gpu().name();
  EXPECT_EQ(name.rfind("cuda ", 0), 0u) << name;
  EXPECT_NE(name.find("sm_90"), std::string::npos) << name;
  EXPECT_FALSE(gpu().host_memory());
  const std::vector<float> v = normals(1000, 1);
  EXPECT_EQ(host(dev(v), 1000), v);
  EXPECT_THROW(gpu().alloc(-1), Error);
  EXPECT_THROW(gpu().alloc(int64_t{1} << 45), Error);  // 128 TiB: out of memory, not a crash
}

TEST(CudaBackend, EmbedMatchesEncodingExactly) {
  const int64_t rows = 37, cols = 75;  // odd: int4 rows end mid-byte
  const std::vector<float> f = normals(rows * cols, 2);
  std::vector<WeightEncoding> tables;
  tables.push_back(f32_weight(f.data(), rows, cols));
  auto half = std::make_shared<std::vector<uint16_t>>();
  for (float v : f) half->push_back(fp32_to_fp16(v));
  tables.push_back(f16_weight(half->data(), rows, cols, half));
  Rng rng(3);
  for (int bits : {4, 8}) {
    std::vector<uint8_t> codes(rows * cols);
    for (auto& c : codes) c = static_cast<uint8_t>(rng.below(1u << bits));
    const int64_t group = bits == 4 ? 0 : 25;
    const int64_t ng = group == 0 ? 1 : cols / group;
    std::vector<float> scales(rows * ng), zeros;
    for (auto& s : scales) s = 0.01f + static_cast<float>(rng.uniform());
    if (bits == 8)
      for (int64_t i = 0; i < rows * ng; ++i) zeros.push_back(static_cast<float>(rng.below(256)));
    tables.push_back(make_int_grid_weight(bits, bits == 4, group, rows, cols, codes, scales, zeros));
  }
  {
    std::vector<uint8_t> col_bits(cols, 3), idx(rows * cols);
    std::vector<float> centroids(cols * 8);
    for (auto& c : centroids) c = static_cast<float>(rng.normal());
    for (auto& i : idx) i = static_cast<uint8_t>(rng.below(8));
    tables.push_back(make_codebook_weight(rows, cols, col_bits, centroids, idx, {{2, 5, 7.5f}}));
  }
  const std::vector<int32_t> tokens = {0, 36, 5, 5, 2, 17};
  const int64_t n = static_cast<int64_t>(tokens.size());
  for (const WeightEncoding& t : tables) {
    SCOPED_TRACE(weight_kind_name(t.kind));
    // The reference is the encoding's own formula (the CPU backend's embed reads the
    // same rows; it takes no codebook tables, whose rows are not contiguous).
    std::vector<float> want(n * cols);
    for (int64_t i = 0; i < n; ++i) t.dequantize_rows(tokens[i], 1, want.data() + i * cols);
    if (t.kind != WeightKind::kCodebook) {
      const auto pc = cpu_sim().pack_embedding(t);
      std::vector<float> cpu(n * cols);
      cpu_sim().embed(*pc, tokens.data(), n, cpu.data());
      EXPECT_EQ(bit_mismatches(cpu, want), 0);
    }
    const auto pg = gpu().pack_embedding(t);
    const BackendBuffer out = gpu().alloc(n * cols);
    gpu().embed(*pg, tokens.data(), n, out.data());
    EXPECT_EQ(bit_mismatches(host(out, n * cols), want), 0);
    const int32_t bad = static_cast<int32_t>(rows);
    EXPECT_THROW(gpu().embed(*pg, &bad, 1, out.data()), Error);
  }
}

TEST(CudaBackend, RmsNormWithinFloatRounding) {
  for (int64_t dim : {64, 576, 1537}) {
    for (int64_t n : {1, 9}) {
      const std::vector<float> x = normals(n * dim, 4 + dim, 3.0f), w = normals(dim, 5);
      std::vector<float> want(n * dim);
      cpu_sim().rmsnorm(x.data(), w.data(), n, dim, 1e-5f, want.data());
      const BackendBuffer xb = dev(x), wb = dev(w);
      gpu().rmsnorm(xb.data(), wb.data(), n, dim, 1e-5f, xb.data());  // in place
      const std::vector<float> got = host(xb, n * dim);
      // Sum of squares: relative error <= dim u in any order (each side); the
      // square root halves it; the divide and two multiplies add 3 u each side.
      const double rel = (dim + 8) * kU;
      for (int64_t i = 0; i < n * dim; ++i)
        ASSERT_LE(std::fabs(got[i] - want[i]), rel * std::fabs(want[i]) + 1e-30) << "dim " << dim << " i " << i;
      EXPECT_GT(max_abs_diff(got, x), 0.1);
    }
  }
}

TEST(CudaBackend, RopeWithinFloatRounding) {
  const int64_t n = 3, heads = 4, hd = 64, pos0 = 1000;
  std::vector<float> inv(hd / 2);
  for (int64_t i = 0; i < hd / 2; ++i) inv[i] = static_cast<float>(std::pow(10000.0, -2.0 * i / hd));
  const std::vector<float> x = normals(n * heads * hd, 6);
  std::vector<float> want = x;
  cpu_sim().rope(want.data(), n, heads, hd, pos0, inv.data());
  const BackendBuffer xb = dev(x), ib = dev(inv);
  gpu().rope(xb.data(), n, heads, hd, pos0, ib.data());
  const std::vector<float> got = host(xb, x.size());
  // Same float angle; cos/sin within 1 ulp (glibc) and 2 ulp (CUDA): |dc|, |ds| <= 3u;
  // a c - b s: 3 roundings each side. |d| <= (3u + 3u + 3u)(|a| + |b|) -> 12 u.
  for (int64_t r = 0; r < n * heads; ++r)
    for (int64_t i = 0; i < hd / 2; ++i) {
      const double a = x[r * hd + i], b = x[r * hd + i + hd / 2];
      const double tol = 12 * kU * (std::fabs(a) + std::fabs(b)) + 1e-30;
      ASSERT_LE(std::fabs(got[r * hd + i] - want[r * hd + i]), tol);
      ASSERT_LE(std::fabs(got[r * hd + i + hd / 2] - want[r * hd + i + hd / 2]), tol);
    }
  EXPECT_GT(max_abs_diff(got, x), 0.1);
}

TEST(CudaBackend, RotateBitIdentical) {
  struct Case {
    OnlineRotation r;
    int64_t rows;
  };
  const std::vector<Case> cases = {
      {rotation(1, 64, 1, 0), 4 * 9},      // Q/K per head
      {rotation(12, 128, 1, 11), 3},       // down_proj input 1536
      {rotation(9, 1, 64, 12), 5},         // o_proj input 576 across heads
      {rotation(3, 4, 8, 13), 2},          // all three factors
      {rotation(1, 2048, 1, 0), 2},        // a long pure Hadamard
      {rotation(5, 32, 1, 14), 1},         // one row
  };
  for (const Case& c : cases) {
    const int64_t len = c.r.size();
    SCOPED_TRACE("k=" + std::to_string(c.r.k) + " p=" + std::to_string(c.r.p) + " inner=" + std::to_string(c.r.inner));
    const std::vector<float> x = normals(c.rows * len, 20 + len);
    std::vector<float> want(x.size());
    cpu_sim().rotate(c.r, x.data(), c.rows, len, want.data());
    const BackendBuffer xb = dev(x), ob = gpu().alloc(c.rows * len);
    gpu().rotate(c.r, xb.data(), c.rows, len, ob.data());
    EXPECT_EQ(bit_mismatches(host(ob, x.size()), want), 0);
    gpu().rotate(c.r, xb.data(), c.rows, len, xb.data());  // in place
    EXPECT_EQ(bit_mismatches(host(xb, x.size()), want), 0);
    EXPECT_GT(max_abs_diff(want, x), 0.1);
  }
  // The default rotation copies rows of any length; a mismatched one is an Error.
  const std::vector<float> x = normals(50, 7);
  const BackendBuffer xb = dev(x), ob = gpu().alloc(50);
  gpu().rotate(OnlineRotation{}, xb.data(), 2, 25, ob.data());
  EXPECT_EQ(host(ob, 50), x);
  EXPECT_THROW(gpu().rotate(rotation(1, 16, 1, 0), xb.data(), 2, 25, ob.data()), Error);
}

TEST(CudaBackend, SwigluAndAdd) {
  const int64_t n = 100003;
  const std::vector<float> g = normals(n, 8, 4.0f), u = normals(n, 9);
  std::vector<float> want(n);
  cpu_sim().swiglu(g.data(), u.data(), n, want.data());
  const BackendBuffer gb = dev(g), ub = dev(u);
  gpu().swiglu(gb.data(), ub.data(), n, gb.data());  // out aliases gate
  const std::vector<float> got = host(gb, n);
  // exp within 1 / 2 ulp, then +1, /, *: |d| <= (3u + 6u) relative to the factors -> 10 u |y|.
  for (int64_t i = 0; i < n; ++i) ASSERT_LE(std::fabs(got[i] - want[i]), 10 * kU * std::fabs(want[i]) + 1e-35);
  // add: one rounding on both sides: identical.
  std::vector<float> sum = u;
  cpu_sim().add(sum.data(), g.data(), n);
  const BackendBuffer gb2 = dev(g);
  gpu().add(ub.data(), gb2.data(), n);
  EXPECT_EQ(bit_mismatches(host(ub, n), sum), 0);
}

// ---------------------------------------------------------------------------
// Linear layers.

WeightEncoding int_weight(int bits, bool symmetric, int64_t group, int64_t rows, int64_t cols, uint64_t seed) {
  Rng rng(seed);
  std::vector<uint8_t> codes(rows * cols);
  for (auto& c : codes) c = static_cast<uint8_t>(rng.below(1u << bits));
  const int64_t ng = group == 0 ? 1 : cols / group;
  std::vector<float> scales(rows * ng), zeros;
  for (auto& s : scales) s = static_cast<float>(0.002 + 0.02 * rng.uniform());
  if (!symmetric)
    for (int64_t i = 0; i < rows * ng; ++i) zeros.push_back(static_cast<float>(rng.below(1u << bits)));
  return make_int_grid_weight(bits, symmetric, group, rows, cols, codes, scales, zeros);
}

struct LinearCase {
  int64_t n, in, out;
  const OnlineRotation* rot = nullptr;
  ActQuantSpec act;
  bool bias = false;
};

// Runs `c` on the GPU and on `ref`; returns {gpu, ref} outputs.
std::pair<std::vector<float>, std::vector<float>> run_linear(const Backend& ref, const WeightEncoding& w,
                                                             const LinearCase& c, const std::vector<float>& x,
                                                             const std::vector<float>& bias) {
  LinearOp op;
  op.input_rotation = c.rot;
  op.act = c.act;
  const auto pr = ref.pack(w);
  op.weight = pr.get();
  op.bias = c.bias ? bias.data() : nullptr;
  std::vector<float> want(c.n * c.out);
  ref.linear(op, x.data(), c.n, want.data());
  const auto pg = gpu().pack(w);
  const BackendBuffer xb = dev(x), bb = dev(bias), yb = gpu().alloc(c.n * c.out);
  op.weight = pg.get();
  op.bias = c.bias ? bb.data() : nullptr;
  gpu().linear(op, xb.data(), c.n, yb.data());
  EXPECT_EQ(host(xb, x.size()), x);  // x is not modified
  return {host(yb, c.n * c.out), want};
}

// The input the product sees: rotated and (simulated) quantized, as the CPU computes it.
std::vector<float> product_input(const LinearCase& c, std::vector<float> x) {
  if (c.rot != nullptr) cpu_sim().rotate(*c.rot, x.data(), c.n, c.in, x.data());
  if (c.act.enabled()) {
    // fake_quant through the CPU reference: a linear with an identity weight.
    std::vector<float> eye(c.in * c.in, 0.0f);
    for (int64_t i = 0; i < c.in; ++i) eye[i * c.in + i] = 1.0f;
    LinearOp op;
    const auto p = cpu_sim().pack(f32_weight(eye.data(), c.in, c.in));
    op.weight = p.get();
    op.act = c.act;
    std::vector<float> y(x.size());
    cpu_sim().linear(op, x.data(), c.n, y.data());
    return y;
  }
  return x;
}

// FP16-path check: against the CPU's FP32 reference and against a double product
// of the FP16-rounded operands, with the bounds in the file comment.
void expect_fp16_path(const WeightEncoding& w, const LinearCase& c, uint64_t seed) {
  const std::vector<float> x = normals(c.n * c.in, seed), bias = normals(c.out, seed + 1);
  const auto [got, want] = run_linear(cpu_sim(), w, c, x, bias);
  const std::vector<float> xin = product_input(c, x), wf = w.dequantize();
  double worst_ref = 0, worst_half = 0, mean_abs = 0;
  for (int64_t m = 0; m < c.n; ++m)
    for (int64_t j = 0; j < c.out; ++j) {
      double s = 0, exact = 0;
      for (int64_t k = 0; k < c.in; ++k) {
        const double xv = xin[m * c.in + k], wv = wf[j * c.in + k];
        s += std::fabs(xv * wv);
        exact += static_cast<double>(fp16_to_fp32(fp32_to_fp16(static_cast<float>(xv)))) *
                 fp16_to_fp32(fp32_to_fp16(static_cast<float>(wv)));
      }
      if (c.bias) exact += bias[j];
      const double g = got[m * c.out + j], r = want[m * c.out + j];
      const double tol_ref = (2 * kH + kH * kH + 2 * c.in * kU) * s + 4 * kU * std::fabs(r);
      const double tol_half = 2 * c.in * kU * s + 4 * kU * std::fabs(exact);
      worst_ref = std::max(worst_ref, std::fabs(g - r) / tol_ref);
      worst_half = std::max(worst_half, std::fabs(g - exact) / tol_half);
      mean_abs += std::fabs(r) / (c.n * c.out);
    }
  EXPECT_LE(worst_ref, 1.0) << "error / bound vs the CPU FP32 reference";
  EXPECT_LE(worst_half, 1.0) << "error / bound vs the FP16-operand product";
  EXPECT_GT(mean_abs, 0.05);  // outputs are not trivially small
  std::printf("  fp16 path n=%lld in=%lld out=%lld: max err/bound %.3f (fp32 ref), %.3f (fp16 operands)\n",
              static_cast<long long>(c.n), static_cast<long long>(c.in), static_cast<long long>(c.out), worst_ref,
              worst_half);
}

TEST(CudaBackend, LinearFp32AndFp16Weights) {
  const OnlineRotation r12 = rotation(12, 128, 1, 31);
  ActQuantSpec a8;
  a8.bits = 8;
  for (const LinearCase& c : {LinearCase{1, 576, 64, nullptr, {}, false}, LinearCase{7, 576, 130, nullptr, {}, true},
                              LinearCase{33, 100, 48, nullptr, {}, false}, LinearCase{5, 1536, 96, &r12, a8, true}}) {
    const std::vector<float> wf = normals(c.out * c.in, 40 + c.in, 0.05f);
    expect_fp16_path(f32_weight(wf.data(), c.out, c.in), c, 50 + c.n);
    auto half = std::make_shared<std::vector<uint16_t>>();
    for (float v : wf) half->push_back(fp32_to_fp16(v));
    expect_fp16_path(f16_weight(half->data(), c.out, c.in, half), c, 60 + c.n);
  }
}

// The integer path: the CPU integer backend computes the same integers and the same
// epilogue (float(acc) * (sa * sb) + bias), so outputs must be bit-identical; against
// the simulated FP32 reference the difference is float accumulation only:
//   |dy| <= (K + 2) u sum_k |x'_k w'_k| + 6 u |y|
// (x', w' and each product rounded once, K - 1 sums; three roundings of the GPU's
// epilogue, and the bias added on each side).
void expect_integer_path(int wbits, int abits, const LinearCase& base, uint64_t seed) {
  LinearCase c = base;
  c.act.bits = abits;
  const WeightEncoding w = int_weight(wbits, true, 0, c.out, c.in, seed);
  const std::vector<float> x = normals(c.n * c.in, seed + 1), bias = normals(c.out, seed + 2);
  const auto [got, want_int] = run_linear(cpu_int(), w, c, x, bias);
  const auto [got2, want_sim] = run_linear(cpu_sim(), w, c, x, bias);
  EXPECT_EQ(got, got2);
  const int64_t mism = bit_mismatches(got, want_int);
  EXPECT_EQ(mism, 0) << "W" << wbits << "A" << abits << ": max |diff| " << max_abs_diff(got, want_int);
  const std::vector<float> xin = product_input(c, x), wf = w.dequantize();
  double worst = 0, mean_abs = 0;
  for (int64_t m = 0; m < c.n; ++m)
    for (int64_t j = 0; j < c.out; ++j) {
      double s = 0;
      for (int64_t k = 0; k < c.in; ++k) s += std::fabs(static_cast<double>(xin[m * c.in + k]) * wf[j * c.in + k]);
      const double r = want_sim[m * c.out + j];
      const double tol = (c.in + 2) * kU * s + 6 * kU * std::fabs(r) + 1e-30;
      worst = std::max(worst, std::fabs(got[m * c.out + j] - r) / tol);
      mean_abs += std::fabs(r) / (c.n * c.out);
    }
  EXPECT_LE(worst, 1.0) << "W" << wbits << "A" << abits << " vs the simulated reference";
  EXPECT_GT(mean_abs, 1e-3);
  std::printf("  W%dA%d n=%lld in=%lld out=%lld: %lld bit mismatches vs cpu-int, err/bound %.3f vs cpu-fp32\n", wbits,
              abits, static_cast<long long>(c.n), static_cast<long long>(c.in), static_cast<long long>(c.out),
              static_cast<long long>(mism), worst);
}

TEST(CudaBackend, LinearIntegerMatchesCpuIntegerPath) {
  const OnlineRotation r12 = rotation(12, 128, 1, 32), r9 = rotation(9, 1, 64, 33), h256 = rotation(1, 256, 1, 0);
  ActQuantSpec act;
  act.clip_ratio = 0.9f;
  const std::vector<LinearCase> shapes = {
      {1, 576, 192, nullptr, act, true},   // decode, K padded 576 -> 640
      {40, 1536, 576, &r12, act, false},   // down_proj with its k = 12 rotation
      {100, 576, 192, &r9, act, true},     // o_proj with k = 9, inner = 64
      {300, 256, 512, &h256, act, true},   // a tile / wgmma shape, pure Hadamard
      {260, 576, 1536, nullptr, act, false},  // prefill: even/odd int8 activations (WgmmaRs), K padded
      {3, 64, 6, nullptr, act, false},     // K < 128
  };
  uint64_t seed = 100;
  for (const LinearCase& c : shapes)
    for (auto [wb, ab] : {std::pair{8, 8}, {4, 4}, {4, 8}, {8, 4}, {3, 6}}) expect_integer_path(wb, ab, c, seed += 7);
}

// Encodings the integer kernels do not take run the simulated arithmetic in FP16.
TEST(CudaBackend, LinearFallbackEncodings) {
  const OnlineRotation r12 = rotation(12, 128, 1, 34);
  ActQuantSpec a4;
  a4.bits = 4;
  ActQuantSpec a4g = a4;
  a4g.group = 128;
  a4g.symmetric = false;
  // asymmetric group-wise weights with per-token activations
  expect_fp16_path(int_weight(4, false, 64, 96, 1536, 70), {9, 1536, 96, &r12, a4, true}, 71);
  // weight-only (W4A16): full-precision activations
  expect_fp16_path(int_weight(4, true, 0, 96, 576, 72), {4, 576, 96, nullptr, {}, false}, 73);
  // grouped asymmetric activations on an integer-eligible weight
  expect_fp16_path(int_weight(8, true, 0, 64, 1536, 74), {6, 1536, 64, &r12, a4g, true}, 75);
  // an odd number of outputs
  expect_fp16_path(int_weight(4, true, 0, 63, 576, 76), {2, 576, 63, nullptr, a4, true}, 77);
  // codebook weights
  Rng rng(78);
  const int64_t rows = 32, cols = 256;
  std::vector<uint8_t> col_bits(cols), idx(rows * cols);
  std::vector<float> cents;
  for (int64_t c = 0; c < cols; ++c) {
    col_bits[c] = static_cast<uint8_t>(2 + c % 3);
    for (int i = 0; i < (1 << col_bits[c]); ++i) cents.push_back(static_cast<float>(rng.normal() * 0.05));
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) idx[r * cols + c] = static_cast<uint8_t>(rng.below(1u << col_bits[c]));
  expect_fp16_path(make_codebook_weight(rows, cols, col_bits, cents, idx, {{1, 3, 0.5f}}), {5, cols, rows, nullptr, a4},
                   79);
}

TEST(CudaBackend, NonFiniteActivationIsAnError) {
  const WeightEncoding w = int_weight(4, true, 0, 64, 128, 80);
  std::vector<float> x = normals(2 * 128, 81);
  x[130] = std::numeric_limits<float>::infinity();
  const auto pw = gpu().pack(w);
  LinearOp op;
  op.weight = pw.get();
  op.act.bits = 4;
  const BackendBuffer xb = dev(x), yb = gpu().alloc(2 * 64);
  gpu().linear(op, xb.data(), 2, yb.data());
  std::vector<float> y(2 * 64);
  EXPECT_THROW(gpu().download(yb.data(), 2 * 64, y.data()), Error);
  // The flag is cleared: a finite input runs normally afterwards.
  x[130] = 1.0f;
  gpu().upload(x.data(), 2 * 128, xb.data());
  gpu().linear(op, xb.data(), 2, yb.data());
  EXPECT_NO_THROW(gpu().download(yb.data(), 2 * 64, y.data()));
}

// ---------------------------------------------------------------------------
// A tiny synthetic model: CUDA vs CPU logits, prefill then one decode step.

std::vector<float> model_logits(const LlamaModel& m) {
  const std::vector<int32_t> prompt = {1, 17, 42, 200, 3, 99, 7};
  KvCache cache = m.make_cache(16);
  std::vector<float> all, step;
  m.forward(prompt.data(), static_cast<int64_t>(prompt.size()), cache, all, true);
  const int32_t next = 55;
  m.forward(&next, 1, cache, step, false);
  all.insert(all.end(), step.begin(), step.end());
  return all;
}

WeightEncoding rtn(const Tensor& t, int bits) {
  const int64_t rows = t.shape[0], cols = t.shape[1];
  const int qmax = (1 << (bits - 1)) - 1;
  std::vector<uint8_t> codes(rows * cols);
  std::vector<float> scales(rows);
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0;
    for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(t.data[r * cols + c]));
    scales[r] = amax > 0 ? amax / qmax : 1.0f;
    for (int64_t c = 0; c < cols; ++c)
      codes[r * cols + c] = static_cast<uint8_t>(
          std::clamp(static_cast<int>(std::nearbyint(t.data[r * cols + c] / scales[r])), -qmax - 1, qmax) + qmax + 1);
  }
  return make_int_grid_weight(bits, true, 0, rows, cols, codes, scales, {});
}

TEST(CudaBackend, TinyModelForward) {
  const LlamaConfig c = tiny_test_config();
  const ModelWeights w = make_synthetic_model(c, 11);
  const auto cpu_fp = make_cpu_backend(CpuBackendOptions{true, ""});
  const auto cpu_i = make_cpu_backend(CpuBackendOptions{false, ""});

  // FP model: FP16 operands on the GPU vs FP32 on the CPU.
  const std::vector<float> ref = model_logits(LlamaModel(w, RuntimeRecipe{}, cpu_fp));
  const std::vector<float> got = model_logits(LlamaModel(w, RuntimeRecipe{}, gpu_shared()));
  double spread = 0;
  for (float v : ref) spread = std::max(spread, std::fabs(static_cast<double>(v)));
  const double fp_err = max_abs_diff(got, ref);
  std::printf("  tiny FP model: max |logit| %.4f, max |cuda - cpu| %.3g\n", spread, fp_err);
  EXPECT_GT(spread, 0.1);
  // Per product the FP16 operands change a logit by ~h * sum|x w| / sqrt(K) on
  // average; through 2 layers of such products a few h of the logit scale bounds it.
  EXPECT_LE(fp_err, 8 * kH * spread);

  // W4A4 with QuaRot-style online rotations: integer kernels on both sides.
  RuntimeRecipe q;
  q.act.bits = 4;
  q.qk_rotation = rotation(1, c.head_dim, 1, 0);
  q.o_proj_input = rotation(c.n_heads, 1, c.head_dim, 91);   // 4 x 16
  q.down_proj_input = rotation(5, 32, 1, 92);                // 160 = 5 x 32
  WeightEncodings enc;
  for (int64_t li = 0; li < c.n_layers; ++li)
    for (const LayerLinear& l : kLayerLinears) enc[layer_linear_name(li, l)] = rtn(w.layers[li].*l.weight, 4);
  ModelWeights wq = w;
  const std::vector<float> q_cpu = model_logits(LlamaModel(wq, q, cpu_i, enc));
  const std::vector<float> q_gpu = model_logits(LlamaModel(wq, q, gpu_shared(), enc));
  const std::vector<float> q_sim = model_logits(LlamaModel(wq, q, cpu_fp, enc));
  const double q_err = max_abs_diff(q_gpu, q_cpu), quant_effect = max_abs_diff(q_cpu, ref),
               sim_gap = max_abs_diff(q_cpu, q_sim);
  std::printf("  tiny W4A4 model: max |cuda - cpu-int| %.3g, |cpu-int - cpu-fp32sim| %.3g, quantization effect %.3g\n",
              q_err, sim_gap, quant_effect);
  // The backends differ only where glue rounding (norm / attention sums, libm)
  // flips an activation code; that must stay far below what quantization itself does.
  EXPECT_LE(q_err, 0.1 * quant_effect);

  // simulate = true: every product on the FP16 path. Weight-only (W4A16): the FP16
  // operands are the only difference, the FP model's bound applies.
  const std::shared_ptr<const Backend> gpu_sim = make_cuda_backend(CudaBackendOptions{0, true});
  EXPECT_NE(gpu_sim->name().find("fp16-sim"), std::string::npos) << gpu_sim->name();
  const std::vector<float> wo_ref = model_logits(LlamaModel(wq, RuntimeRecipe{}, cpu_fp, enc));
  const std::vector<float> wo_gpu = model_logits(LlamaModel(wq, RuntimeRecipe{}, gpu_sim, enc));
  const double wo_err = max_abs_diff(wo_gpu, wo_ref);
  // W4A4 simulated: the FP16 rounding of the operands (2^-11 relative) moves values
  // across 4-bit rounding boundaries, each such flip a full quantization step, so
  // only "well below the quantization effect" is expected (a broken path is of the
  // order of the logits themselves).
  const std::vector<float> q_gsim = model_logits(LlamaModel(wq, q, gpu_sim, enc));
  const double sim_err = max_abs_diff(q_gsim, q_sim);
  std::printf("  tiny models, simulated: W4A16 max |cuda-fp16sim - cpu-fp32| %.3g; W4A4 %.3g\n", wo_err, sim_err);
  EXPECT_LE(wo_err, 8 * kH * spread);
  EXPECT_LE(sim_err, 0.5 * quant_effect);
}

// ---------------------------------------------------------------------------
// Recorded steps (run_step, CUDA graphs): the same model on a backend that records
// and replays decode steps and on one that queues every op, fed the same tokens.
// Inside a recorded step the kernels read the position from the device and the
// attention is sized by the capacity but splits the positions as the direct call
// does, so every logit must be bit-identical; a recording that baked in the first
// position (RoPE angle, cache slot, attention length) or a stale token id would
// differ from the second replay on. The step counters show the replays happened.

struct StepRun {
  std::vector<std::vector<float>> logits;  // one entry per forward
};

// Prefill, 40 greedy decode steps (positions 7..46, crossing the attention's 64-position
// chunk boundary only with a larger cache, so two capacities are used), a 3-token
// forward with all logits and one with the last, clear() and 6 steps from position 0,
// then 5 steps on a copy of the cache. `tokens` are chosen by the first run and
// replayed by the second, so both see identical inputs.
StepRun run_steps(const LlamaModel& m, int64_t capacity, std::vector<int32_t>& tokens, bool choose) {
  StepRun r;
  KvCache cache = m.make_cache(capacity);
  std::vector<float> lg;
  size_t next = 0;
  auto token = [&](const std::vector<float>& from) {
    if (choose) {
      const auto best = std::max_element(from.end() - 256, from.end()) - (from.end() - 256);
      tokens.push_back(static_cast<int32_t>((best * 7 + tokens.size()) % 256));  // greedy, stirred
    }
    return tokens.at(next++);
  };
  const std::vector<int32_t> prompt = {1, 17, 42, 200, 3, 99, 7};
  m.forward(prompt.data(), static_cast<int64_t>(prompt.size()), cache, lg, true);
  r.logits.push_back(lg);
  for (int i = 0; i < 40; ++i) {
    const int32_t t = token(lg);
    m.forward(&t, 1, cache, lg, false);
    r.logits.push_back(lg);
  }
  int32_t three[3];
  for (int32_t& t : three) t = token(lg);
  m.forward(three, 3, cache, lg, true);
  r.logits.push_back(lg);
  for (int32_t& t : three) t = token(lg);
  m.forward(three, 3, cache, lg, false);
  r.logits.push_back(lg);
  cache.clear();
  for (int i = 0; i < 6; ++i) {
    const int32_t t = token(lg);
    m.forward(&t, 1, cache, lg, false);
    r.logits.push_back(lg);
  }
  KvCache copy = cache;
  for (int i = 0; i < 5; ++i) {
    const int32_t t = token(lg);
    m.forward(&t, 1, copy, lg, false);
    r.logits.push_back(lg);
  }
  return r;
}

TEST(CudaBackend, RecordedStepsMatchDirectOps) {
  unsetenv("QUAROT_CUDA_GRAPHS");
  const LlamaConfig c = tiny_test_config();
  const ModelWeights w = make_synthetic_model(c, 23);
  const std::shared_ptr<const Backend> recorded = make_cuda_backend(CudaBackendOptions{0, false, true});
  const std::shared_ptr<const Backend> direct = make_cuda_backend(CudaBackendOptions{0, false, false});
  ASSERT_NE(recorded->make_step_graph(), nullptr);
  ASSERT_EQ(direct->make_step_graph(), nullptr);

  RuntimeRecipe q;
  q.act.bits = 4;
  q.qk_rotation = rotation(1, c.head_dim, 1, 0);
  q.o_proj_input = rotation(c.n_heads, 1, c.head_dim, 91);
  q.down_proj_input = rotation(5, 32, 1, 92);
  q.k_cache.bits = q.v_cache.bits = 4;
  q.intact_kv = true;
  WeightEncodings enc;
  for (int64_t li = 0; li < c.n_layers; ++li)
    for (const LayerLinear& l : kLayerLinears) enc[layer_linear_name(li, l)] = rtn(w.layers[li].*l.weight, 4);
  RuntimeRecipe q_fpkv = q;
  q_fpkv.k_cache = q_fpkv.v_cache = KvQuantSpec{};
  q_fpkv.intact_kv = false;

  struct Case {
    const char* name;
    RuntimeRecipe recipe;
    bool encoded;
    int64_t capacity;
  };
  const Case cases[] = {{"fp16", RuntimeRecipe{}, false, 64},
                        {"w4a4 kv4 intact", q, true, 200},
                        {"w4a4 fp kv", q_fpkv, true, 200}};
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    const CudaStepStats before = cuda_step_stats(*recorded);
    const WeightEncodings none;
    const LlamaModel mr(w, k.recipe, recorded, k.encoded ? enc : none);
    const LlamaModel md(w, k.recipe, direct, k.encoded ? enc : none);
    std::vector<int32_t> tokens;
    const StepRun a = run_steps(mr, k.capacity, tokens, true);
    const StepRun b = run_steps(md, k.capacity, tokens, false);
    ASSERT_EQ(a.logits.size(), b.logits.size());
    int64_t bad = 0;
    double spread = 0;
    for (size_t i = 0; i < a.logits.size(); ++i) {
      bad += bit_mismatches(a.logits[i], b.logits[i]);
      for (float v : a.logits[i]) spread = std::max(spread, std::fabs(static_cast<double>(v)));
    }
    EXPECT_EQ(bad, 0);
    EXPECT_GT(spread, 0.1);  // real logits, not zeros on both sides
    // Consecutive decode logits differ (the position and token reach the replays).
    EXPECT_GT(max_abs_diff(a.logits[20], a.logits[21]), 1e-3);
    const CudaStepStats after = cuda_step_stats(*recorded);
    const int64_t replays = after.replays - before.replays, captures = after.captures - before.captures;
    std::printf("  %s: %zu forwards, steps direct %lld warm-up %lld recorded %lld replayed %lld failed %lld %s\n",
                k.name, a.logits.size(), static_cast<long long>(after.direct - before.direct),
                static_cast<long long>(after.warmups - before.warmups), static_cast<long long>(captures),
                static_cast<long long>(replays), static_cast<long long>(after.failures - before.failures),
                after.last_failure.c_str());
    EXPECT_EQ(after.failures, before.failures) << after.last_failure;
    // One-token steps: on the first cache 40 after the prompt (1 warm-up, 1 recording,
    // 38 replays) and 5 after clear() (position 0 direct, then replays of the same
    // recording: the 7-token prompt already sized the scratch); on the copy (a cache
    // of its own) 1 warm-up, 1 recording, 3 replays. The two 3-token forwards are one
    // warm-up each.
    EXPECT_GE(captures, 2);
    EXPECT_GE(replays, 44);
    // Every forward (all of at most 16 tokens) went through run_step exactly once.
    EXPECT_EQ((after.direct - before.direct) + (after.warmups - before.warmups) + captures + replays +
                  (after.failures - before.failures),
              static_cast<int64_t>(a.logits.size()));
    EXPECT_EQ(cuda_step_stats(*direct).replays, 0);
  }
}

}  // namespace
}  // namespace quarot
