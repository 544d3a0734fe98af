// Self-contained checks of the CUDA kernels against the CPU reference math, run on
// the GPU machine (no GoogleTest there): exit status 0 only when every check holds.
//   hadamard_quant_rows == per-block fwht_normalized + quantize_sym (bit for bit),
//                          every implementation (HadamardQuantVariant) but TensorCore,
//                          whose codes may differ by one at near ties and scales by ~1e-6;
//                          with an RmsFold the same codes and the scale times a
//                          double-precision 1 / rms
//   int_gemm acc        == exact int64 host sums (bit for bit, every kind and path)
//   int_gemm y          == the documented FP32 epilogue rounded to FP16 (bit for bit)
//   int_gemm y_f32      == the FP32 epilogue with bias, unrounded (bit for bit)
// Inputs are seeded random; outputs are poisoned before each launch so an element
// the kernel never writes cannot pass.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuda_check_harness.cuh"
#include "kernels/cpu/fwht.h"
#include "kernels/cpu/int_quant.h"
#include "kernels/cuda/hadamard_quant.cuh"
#include "kernels/cuda/int_gemm.cuh"

namespace {

using namespace quarot;
using namespace quarot::cuda;
using namespace quarot::cuda::check_harness;

constexpr uint8_t kPoison = 0xA5;  // outputs' bytes before each launch

int unpack_q(const std::vector<uint8_t>& q, int64_t row, int64_t col, int64_t cols, int bits) {
  if (bits == 8) return static_cast<int8_t>(q[row * cols + col]);
  const uint8_t byte = q[row * (cols / 2) + col / 2];
  const int nib = (col % 2 == 0) ? (byte & 0xF) : (byte >> 4);
  return nib >= 8 ? nib - 16 : nib;
}

// ---------------------------------------------------------------------------
// Hadamard + quantize.

constexpr auto& kVariants = kHadamardQuantVariants;

// Code (row, col) of the even/odd layout: one int8 each, 32 columns as 16 even then 16 odd.
int unpack_even_odd(const std::vector<uint8_t>& q, int64_t row, int64_t col, int64_t cols) {
  const int64_t pos = (col & ~int64_t{31}) + ((col & 31) >> 1) + (col & 1) * 16;
  return static_cast<int8_t>(q[row * cols + pos]);
}

template <typename T>
void test_hadamard_quant(std::mt19937& rng, int64_t rows, int64_t cols, int64_t p, int bits, float clip,
                         HadamardQuantVariant variant, bool even_odd = false) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<T> x(rows * cols);
  std::vector<float> xf(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) {
    float v = normal(rng);
    // Outlier channels (what the rotation is for), where the rotation is wide enough
    // to spread them; otherwise most 4-bit codes would round to zero (at p = 64 half
    // of them did, on the H200 run of every variant, the legacy kernel's included).
    if (p >= 256 && rng() % 97 == 0) v *= 40.0f;
    if constexpr (std::is_same_v<T, __half>) {
      x[i] = __float2half_rn(v);
      xf[i] = __half2float(x[i]);
    } else {
      x[i] = v;
      xf[i] = v;
    }
  }
  // Special rows: all zero, one NaN, one infinity.
  if (rows >= 4) {
    for (int64_t c = 0; c < cols; ++c) xf[c] = 0.0f;
    xf[cols + 5] = NAN;
    xf[2 * cols + cols - 1] = INFINITY;
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        if constexpr (std::is_same_v<T, __half>) {
          x[r * cols + c] = __float2half_rn(xf[r * cols + c]);
        } else {
          x[r * cols + c] = xf[r * cols + c];
        }
      }
  }
  const int64_t qbytes = bits == 4 && !even_odd ? rows * cols / 2 : rows * cols;
  DevBuf<T> dx(rows * cols);
  DevBuf<uint8_t> dq(qbytes);
  DevBuf<float> ds(rows);
  DevBuf<__half> dsh(rows);
  dx.upload(x);
  dq.poison(kPoison);
  ds.poison(kPoison);
  dsh.poison(kPoison);
  CUDA_OK(hadamard_quant_rows(dx.p, rows, cols, p, bits, clip, dq.p, ds.p, dsh.p, nullptr, variant,
                              even_odd ? IntGemmActLayout::Int8EvenOdd : IntGemmActLayout::Standard));
  CUDA_OK(cudaDeviceSynchronize());
  const auto q = dq.download();
  auto code = [&](int64_t r, int64_t c) {
    return even_odd ? unpack_even_odd(q, r, c, cols) : unpack_q(q, r, c, cols, bits);
  };
  const auto s = ds.download();
  const auto sh = dsh.download();

  // TensorCore's own kernel sums in another order: its codes may differ by one where the
  // reference's y / s lies within kTieBand of a half-integer (its error is ~1e-6 there),
  // and its scale within kScaleRel; anything else is a mismatch. Every other variant,
  // and TensorCore where it hands the shape on, must match bit for bit.
  const bool exact = hadamard_quant_is_exact(variant, cols, p, bits, !std::is_same_v<T, __half>,
                                             even_odd ? IntGemmActLayout::Int8EvenOdd : IntGemmActLayout::Standard,
                                             false);
  constexpr double kTieBand = 1e-4, kScaleRel = 1e-6;
  int64_t near_tie_diffs = 0;
  double worst_scale_rel = 0.0;
  int64_t q_mismatch = 0, s_mismatch = 0, nonzero = 0, extreme = 0;
  std::vector<float> row(cols);
  std::vector<int8_t> ref(cols);
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(row.data(), xf.data() + r * cols, cols * sizeof(float));
    bool finite = true;
    for (float v : row) finite &= std::isfinite(v);
    if (!finite) {  // the CPU reference throws here; the GPU marks the row NaN
      s_mismatch += !std::isnan(s[r]);
      for (int64_t c = 0; c < cols; ++c) q_mismatch += code(r, c) != 0;
      continue;
    }
    if (p > 1)
      for (int64_t b = 0; b < cols; b += p) fwht_normalized(row.data() + b, p);
    const float sref = quantize_sym(row.data(), cols, bits, clip, ref.data());
    if (exact) {
      s_mismatch += bits_of(sref) != bits_of(s[r]);
      s_mismatch += bits_of(__half2float(__float2half_rn(sref))) != bits_of(__half2float(sh[r]));
    } else {
      const double rel = sref == 0.0f ? std::fabs(s[r]) : std::fabs(static_cast<double>(s[r]) / sref - 1.0);
      worst_scale_rel = std::max(worst_scale_rel, rel);
      s_mismatch += !(rel <= kScaleRel);
      s_mismatch += bits_of(__half2float(__float2half_rn(s[r]))) != bits_of(__half2float(sh[r]));
    }
    for (int64_t c = 0; c < cols; ++c) {
      const int got = code(r, c);
      if (got != ref[c] && !exact && std::abs(got - ref[c]) == 1 && sref > 0.0f) {
        const double tq = static_cast<double>(row[c]) / sref;
        if (std::fabs(std::fabs(tq - std::floor(tq)) - 0.5) < kTieBand) {
          ++near_tie_diffs;
          continue;
        }
      }
      q_mismatch += got != ref[c];
      nonzero += got != 0;
      extreme += std::fabs(static_cast<float>(got)) >= qmax;
    }
  }
  char what[200];
  std::snprintf(what, sizeof what, "hadamard_quant<%s, %s%s> rows=%lld cols=%lld p=%lld bits=%d clip=%.2f",
                std::is_same_v<T, __half> ? "fp16" : "fp32", hadamard_quant_variant_name(variant),
                even_odd ? ", even/odd int8" : "", (long long)rows, (long long)cols, (long long)p, bits, clip);
  check(q_mismatch == 0, std::string(what) + ": " + std::to_string(q_mismatch) + " codes differ");
  check(s_mismatch == 0, std::string(what) + ": " + std::to_string(s_mismatch) + " scales differ");
  if (!exact) {
    // Codes at near ties are rare (a 2e-4 band holds ~0.02% of uniformly spread quotients).
    check(near_tie_diffs * 1000 <= rows * cols, std::string(what) + ": too many codes differ at near ties");
    std::printf("  %s: %lld of %lld codes differ from the CPU's (all within %.0e of a tie), worst scale %.2e "
                "relative\n",
                what, (long long)near_tie_diffs, (long long)(rows * cols), kTieBand, worst_scale_rel);
  }
  // Not a no-op: most codes are nonzero and each non-special row reaches qmax (with
  // clip <= 1; a wider clip leaves the codes short of it).
  const int64_t plain_rows = rows >= 4 ? rows - 3 : rows;
  check(nonzero > plain_rows * cols / 2, std::string(what) + ": too few nonzero codes");
  if (clip <= 1.0f) check(extreme >= plain_rows, std::string(what) + ": rows do not reach qmax");
}

// Exact and near rounding ties (y / s = k + 1/2, and one ulp either side), where a
// reciprocal-multiply shortcut would round differently from the IEEE division.
void test_quant_ties(int bits, HadamardQuantVariant variant) {
  const int64_t cols = 256;
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  std::vector<float> x;
  for (float unit : {1.0f, 3.0f, 0.1f}) {  // the row's scale comes out as `unit` (up to rounding)
    std::vector<float> row(cols);
    row[0] = qmax * unit;
    for (int64_t c = 1; c < cols; ++c) {
      const float half = (static_cast<float>(c % (2 * static_cast<int>(qmax))) - qmax + 0.5f) * unit;
      const int which = static_cast<int>(c % 3);
      row[c] = which == 0 ? half : which == 1 ? std::nextafter(half, 1e30f) : std::nextafter(half, -1e30f);
    }
    x.insert(x.end(), row.begin(), row.end());
  }
  const int64_t rows = static_cast<int64_t>(x.size()) / cols;
  DevBuf<float> dx(x.size());
  DevBuf<uint8_t> dq(bits == 4 ? x.size() / 2 : x.size());
  DevBuf<float> ds(rows);
  dx.upload(x);
  dq.poison(kPoison);
  CUDA_OK(hadamard_quant_rows(dx.p, rows, cols, 1, bits, 1.0f, dq.p, ds.p, nullptr, nullptr, variant));
  CUDA_OK(cudaDeviceSynchronize());
  const auto q = dq.download();
  const auto s = ds.download();
  int64_t bad = 0;
  std::vector<int8_t> ref(cols);
  for (int64_t r = 0; r < rows; ++r) {
    const float sref = quantize_sym(x.data() + r * cols, cols, bits, 1.0f, ref.data());
    bad += bits_of(sref) != bits_of(s[r]);
    for (int64_t c = 0; c < cols; ++c) bad += unpack_q(q, r, c, cols, bits) != ref[c];
  }
  check(bad == 0, "quantize ties, " + std::to_string(bits) + " bits, " + hadamard_quant_variant_name(variant) + ": " +
                      std::to_string(bad) + " mismatches");
}

// RmsFold: the codes of the plain call byte for byte, the scale times 1 / rms(x) (from
// a double-precision sum) within the FP32 rounding of the kernel's sums (each thread's 64
// fma, a shuffle tree, at most 16 warps' partial sums, the division, rsqrtf's 2 ulp and
// the product; Legacy's second pass sums cols / 256 per thread), the FP16 scale the rounding of the FP32 one. A zero row keeps scale 0.
void test_hadamard_quant_rms_fold(std::mt19937& rng, int64_t rows, int64_t cols, int64_t p, int bits,
                                  HadamardQuantVariant variant, bool even_odd) {
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<__half> x(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) x[i] = __float2half_rn(normal(rng) * (1.0f + (i / cols) % 5));
  for (int64_t c = 0; c < cols; ++c) x[c] = __float2half_rn(0.0f);  // row 0: all zero
  const int64_t qbytes = bits == 4 && !even_odd ? rows * cols / 2 : rows * cols;
  const IntGemmActLayout layout = even_odd ? IntGemmActLayout::Int8EvenOdd : IntGemmActLayout::Standard;
  const float eps = 1e-5f;
  DevBuf<__half> dx(rows * cols), dsh(rows);
  DevBuf<uint8_t> dq0(qbytes), dq1(qbytes);
  DevBuf<float> ds0(rows), ds1(rows);
  dx.upload(x);
  dq0.poison(kPoison), dq1.poison(kPoison), ds0.poison(kPoison), ds1.poison(kPoison), dsh.poison(kPoison);
  CUDA_OK(hadamard_quant_rows(dx.p, rows, cols, p, bits, 1.0f, dq0.p, ds0.p, nullptr, nullptr, variant, layout));
  CUDA_OK(hadamard_quant_rows(dx.p, rows, cols, p, bits, 1.0f, dq1.p, ds1.p, dsh.p, nullptr, variant, layout,
                              RmsFold{eps}));
  CUDA_OK(cudaDeviceSynchronize());
  const auto q0 = dq0.download(), q1 = dq1.download();
  const auto s0 = ds0.download(), s1 = ds1.download();
  const auto sh = dsh.download();
  int64_t q_bad = 0, s_bad = 0, folded = 0;
  for (int64_t i = 0; i < qbytes; ++i) q_bad += q0[i] != q1[i];
  // (Legacy's second pass, rows_scale_inv_rms, adds cols / 256 values per thread.)
  const double per_thread = std::max<double>(64.0, static_cast<double>(cols) / 256.0);
  const double rel = (per_thread + 5 + 16 + 1 + 2 + 1 + 4) * std::ldexp(1.0, -24);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0.0;
    for (int64_t c = 0; c < cols; ++c) {
      const double v = __half2float(x[r * cols + c]);
      ss += v * v;
    }
    const double want = s0[r] / std::sqrt(ss / static_cast<double>(cols) + eps);
    s_bad += !(std::fabs(s1[r] - want) <= rel * want);
    s_bad += bits_of(__half2float(__float2half_rn(s1[r]))) != bits_of(__half2float(sh[r]));
    folded += r > 0 && std::fabs(want - s0[r]) > 0.1 * s0[r];
  }
  char what[200];
  std::snprintf(what, sizeof what, "hadamard_quant<%s%s> rms fold rows=%lld cols=%lld p=%lld bits=%d",
                hadamard_quant_variant_name(variant), even_odd ? ", even/odd int8" : "", (long long)rows,
                (long long)cols, (long long)p, bits);
  check(q_bad == 0, std::string(what) + ": " + std::to_string(q_bad) + " code bytes differ from the plain call");
  check(s_bad == 0, std::string(what) + ": " + std::to_string(s_bad) + " scales outside the bound");
  check(s1[0] == 0.0f, std::string(what) + ": the zero row's scale is not 0");
  check(folded == rows - 1, std::string(what) + ": the scales were not folded");
}

void test_hadamard_quant_rejects() {
  DevBuf<__half> dx(1024);
  DevBuf<uint8_t> dq(1024);
  DevBuf<float> ds(4);
  check(hadamard_quant_rows(dx.p, 2, 48, 16, 4, 1.0f, dq.p, ds.p, nullptr, nullptr) == cudaErrorInvalidValue,
        "hadamard_quant accepts cols % 32 != 0");
  check(hadamard_quant_rows(dx.p, 2, 96, 3, 4, 1.0f, dq.p, ds.p, nullptr, nullptr) == cudaErrorInvalidValue,
        "hadamard_quant accepts p = 3");
  check(hadamard_quant_rows(dx.p, 2, 96, 64, 4, 1.0f, dq.p, ds.p, nullptr, nullptr) == cudaErrorInvalidValue,
        "hadamard_quant accepts p not dividing cols");
  check(hadamard_quant_rows(dx.p, 2, 64, 64, 5, 1.0f, dq.p, ds.p, nullptr, nullptr) == cudaErrorInvalidValue,
        "hadamard_quant accepts 5 bits");
  check(hadamard_quant_rows(dx.p, 2, 64, 64, 4, 0.0f, dq.p, ds.p, nullptr, nullptr) == cudaErrorInvalidValue,
        "hadamard_quant accepts clip 0");
  check(hadamard_quant_rows(dx.p + 1, 2, 64, 64, 4, 1.0f, dq.p, ds.p, nullptr, nullptr) == cudaErrorInvalidValue,
        "hadamard_quant accepts a misaligned input");
  for (float eps : {-1.0f, 0.0f, NAN, INFINITY})
    check(hadamard_quant_rows(dx.p, 2, 64, 64, 4, 1.0f, dq.p, ds.p, nullptr, nullptr, HadamardQuantVariant::Auto,
                              IntGemmActLayout::Standard, RmsFold{eps}) == cudaErrorInvalidValue,
          "hadamard_quant accepts an RMS fold with eps " + std::to_string(eps));
}

// ---------------------------------------------------------------------------
// Integer GEMM.

const char* kind_name(IntGemmKind k) {
  return k == IntGemmKind::W4A4 ? "W4A4" : k == IntGemmKind::W4A8 ? "W4A8" : "W8A8";
}
// Random codes over the full range (extremes included, so an overflow or a wrong
// sign extension shows), stored as the kernels expect.
std::vector<uint8_t> random_codes(std::mt19937& rng, int64_t rows, int64_t k, bool int4, std::vector<int>& values) {
  values.resize(rows * k);
  std::vector<uint8_t> packed(int4 ? rows * k / 2 : rows * k);
  for (int64_t i = 0; i < rows * k; ++i) {
    const int v = int4 ? static_cast<int>(rng() % 16) - 8 : static_cast<int>(rng() % 256) - 128;
    values[i] = v;
    if (int4) {
      packed[i / 2] |= static_cast<uint8_t>((v & 0xF) << (4 * (i % 2)));
    } else {
      packed[i] = static_cast<uint8_t>(v);
    }
  }
  return packed;
}

// Codes [rows, k] as IntGemmActLayout::Int8EvenOdd stores them: one byte each, every
// 32 k as their 16 even k then their 16 odd k.
std::vector<uint8_t> even_odd_layout(const std::vector<int>& values, int64_t rows, int64_t k) {
  std::vector<uint8_t> out(rows * k);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < k; c += 32)
      for (int f = 0; f < 32; ++f) {
        const int64_t src = c + (f < 16 ? 2 * f : 2 * (f - 16) + 1);
        out[r * k + c + f] = static_cast<uint8_t>(values[r * k + src]);
      }
  return out;
}

void test_int_gemm(std::mt19937& rng, IntGemmKind kind, IntGemmPath path, int64_t m, int64_t n, int64_t k,
                   bool residual, int rs_tile = 0) {
  const bool a4 = kind == IntGemmKind::W4A4, b4 = kind != IntGemmKind::W8A8;
  const bool even_odd = int_gemm_path_layout(path) == IntGemmActLayout::Int8EvenOdd;
  std::vector<int> av, bv;
  auto ha = random_codes(rng, m, k, a4, av);
  if (even_odd) ha = even_odd_layout(av, m, k);
  const auto hb = random_codes(rng, n, k, b4, bv);
  std::uniform_real_distribution<float> uni(0.001f, 0.05f);
  std::vector<float> hsa(m), hsb(n);
  for (auto& v : hsa) v = uni(rng);
  for (auto& v : hsb) v = uni(rng);
  std::vector<__half> hres(m * n);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (auto& v : hres) v = __float2half_rn(normal(rng));

  DevBuf<uint8_t> da(ha.size()), db(hb.size());
  DevBuf<float> dsa(m), dsb(n);
  DevBuf<__half> dres(m * n), dy(m * n);
  DevBuf<int32_t> dacc(m * n);
  da.upload(ha);
  db.upload(hb);
  dsa.upload(hsa);
  dsb.upload(hsb);
  dres.upload(hres);
  dy.poison(kPoison);
  dacc.poison(kPoison);

  IntGemmArgs args;
  args.kind = kind;
  args.m = m, args.n = n, args.k = k;
  args.qa = da.p, args.qb = db.p, args.sa = dsa.p, args.sb = dsb.p;
  args.residual = residual ? dres.p : nullptr;
  args.y = dy.p;
  args.act_layout = int_gemm_path_layout(path);
  args.rs_token_tile = rs_tile;
  args.weights_constant = residual;  // half the cases as programmatic dependents (decode path)
  char what[200];
  std::snprintf(what, sizeof what, "int_gemm %s %s%s M=%lld N=%lld K=%lld%s", kind_name(kind), int_gemm_path_name(path),
                rs_tile ? (" tile " + std::to_string(rs_tile)).c_str() : "", (long long)m, (long long)n, (long long)k,
                residual ? " +residual" : "");
  // The FP32 epilogue (y_f32 + bias), as the CUDA backend's linear layers use it.
  std::vector<float> hbias(n);
  for (auto& v : hbias) v = normal(rng);
  DevBuf<float> dbias(n), dyf(m * n);
  dbias.upload(hbias);
  dyf.poison(kPoison);
  IntGemmArgs fargs = args;
  fargs.y = nullptr;
  fargs.residual = nullptr;
  fargs.y_f32 = dyf.p;
  fargs.bias = residual ? dbias.p : nullptr;
  const cudaError_t e0 = int_gemm(fargs, nullptr, path);
  const cudaError_t e1 = int_gemm(args, nullptr, path);
  args.acc_out = dacc.p;
  const cudaError_t e2 = int_gemm(args, nullptr, path);
  const cudaError_t e3 = cudaDeviceSynchronize();
  if (e0 != cudaSuccess || e1 != cudaSuccess || e2 != cudaSuccess || e3 != cudaSuccess) {
    check(false, std::string(what) + ": launch failed: " + cudaGetErrorString(e1 != cudaSuccess ? e1 : e2 != cudaSuccess ? e2 : e3));
    return;
  }
  const auto acc = dacc.download();
  const auto y = dy.download();
  const auto yf = dyf.download();

  int64_t acc_bad = 0, y_bad = 0, yf_bad = 0;
  int64_t big = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      int64_t ref = 0;
      const int* ar = av.data() + i * k;
      const int* br = bv.data() + j * k;
      for (int64_t t = 0; t < k; ++t) ref += static_cast<int64_t>(ar[t]) * br[t];
      acc_bad += acc[i * n + j] != ref;
      big += std::llabs(ref) > 64;
      float yr = static_cast<float>(ref) * (hsa[i] * hsb[j]);
      const float yf_ref = residual ? yr + hbias[j] : yr;
      yf_bad += bits_of(yf_ref) != bits_of(yf[i * n + j]);
      if (residual) yr = yr + __half2float(hres[i * n + j]);
      const __half yh = __float2half_rn(yr);
      uint16_t u1, u2;
      std::memcpy(&u1, &yh, 2);
      std::memcpy(&u2, &y[i * n + j], 2);
      y_bad += u1 != u2;
    }
  check(acc_bad == 0, std::string(what) + ": " + std::to_string(acc_bad) + " int32 sums differ");
  check(y_bad == 0, std::string(what) + ": " + std::to_string(y_bad) + " fp16 outputs differ");
  check(yf_bad == 0, std::string(what) + ": " + std::to_string(yf_bad) + " fp32 outputs (+bias) differ");
  check(big > m * n / 2, std::string(what) + ": degenerate data");
}

void test_int_gemm_rejects() {
  DevBuf<uint8_t> d(1 << 16);
  DevBuf<float> s(256);
  DevBuf<__half> y(1 << 16);
  IntGemmArgs a;
  a.m = 4, a.n = 64, a.k = 256, a.qa = d.p, a.qb = d.p, a.sa = s.p, a.sb = s.p, a.y = y.p;
  check(int_gemm(a, nullptr) == cudaSuccess, "int_gemm rejects a valid shape");
  CUDA_OK(cudaDeviceSynchronize());
  IntGemmArgs b = a;
  b.k = 200;
  check(int_gemm(b, nullptr) == cudaErrorInvalidValue, "int_gemm accepts K % 128 != 0");
  b = a;
  b.m = 0;
  check(int_gemm(b, nullptr) == cudaErrorInvalidValue, "int_gemm accepts M = 0");
  b = a;
  b.k = kIntGemmMaxK + 128;  // int32 sums could wrap past this
  check(int_gemm(b, nullptr) == cudaErrorInvalidValue, "int_gemm accepts K > kIntGemmMaxK");
  b = a;
  b.n = 63;
  check(int_gemm(b, nullptr) == cudaErrorInvalidValue, "int_gemm accepts odd N");
  b = a;
  b.n = kIntGemmMaxRows + 2;  // tile counts in int would wrap (rejected before any pointer is read)
  check(int_gemm(b, nullptr) == cudaErrorInvalidValue, "int_gemm accepts N > kIntGemmMaxRows");
  b = a;
  b.m = kIntGemmMaxRows + 1;
  check(int_gemm(b, nullptr) == cudaErrorInvalidValue, "int_gemm accepts M > kIntGemmMaxRows");
  b = a;
  b.sa = nullptr;
  check(int_gemm(b, nullptr) == cudaErrorInvalidValue, "int_gemm accepts missing scales");
  b = a;
  b.qa = d.p + 4;
  check(int_gemm(b, nullptr) == cudaErrorInvalidValue, "int_gemm accepts a misaligned operand");
  b = a;
  b.m = 100;
  check(int_gemm(b, nullptr, IntGemmPath::Skinny) == cudaErrorInvalidValue, "skinny path accepts M > 64");
  b = a;
  b.kind = IntGemmKind::W8A8;
  check(int_gemm(b, nullptr, IntGemmPath::Wgmma) == cudaErrorInvalidValue, "wgmma path accepts int8 weights");
  b = a;
  check(int_gemm(b, nullptr, IntGemmPath::WgmmaRs) == cudaErrorInvalidValue, "wgmma_rs accepts standard activations");
  b.act_layout = IntGemmActLayout::Int8EvenOdd;
  check(int_gemm(b, nullptr, IntGemmPath::WgmmaWs) == cudaErrorInvalidValue, "wgmma_ws accepts even/odd activations");
  b.kind = IntGemmKind::W8A8;
  check(int_gemm(b, nullptr) == cudaErrorInvalidValue, "even/odd activations accepted with int8 weights");
  b = a;
  b.act_layout = IntGemmActLayout::Int8EvenOdd;
  b.rs_token_tile = 32;
  check(int_gemm(b, nullptr, IntGemmPath::WgmmaRs) == cudaErrorInvalidValue, "wgmma_rs accepts a token tile of 32");
}

// Activations through the fused quantizer straight into the W4A4 GEMM: the
// product equals the host's exact sums over the host-quantized activations.
// The product is launched as a programmatic dependent of the quantizer
// (weights_constant): the skinny path must still read the codes only once they are written.
void test_pipeline(std::mt19937& rng, IntGemmActLayout layout, int64_t m) {
  const int64_t n = 96, k = 4096;
  const bool even_odd = layout == IntGemmActLayout::Int8EvenOdd;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<__half> x(m * k);
  std::vector<float> xf(m * k);
  for (int64_t i = 0; i < m * k; ++i) {
    x[i] = __float2half_rn(normal(rng));
    xf[i] = __half2float(x[i]);
  }
  std::vector<int> wv;
  const auto hw = random_codes(rng, n, k, true, wv);
  std::vector<float> hsb(n, 0.02f);
  DevBuf<__half> dx(m * k);
  DevBuf<uint8_t> dq(even_odd ? m * k : m * k / 2), dw(hw.size());
  DevBuf<float> dsa(m), dsb(n);
  DevBuf<__half> dy(m * n);
  dx.upload(x);
  dw.upload(hw);
  dsb.upload(hsb);
  dy.poison(kPoison);
  CUDA_OK(hadamard_quant_rows(dx.p, m, k, k, 4, 1.0f, dq.p, dsa.p, nullptr, nullptr, HadamardQuantVariant::Auto,
                              layout));
  IntGemmArgs a;
  a.m = m, a.n = n, a.k = k, a.qa = dq.p, a.qb = dw.p, a.sa = dsa.p, a.sb = dsb.p, a.y = dy.p;
  a.act_layout = layout;
  a.weights_constant = true;
  CUDA_OK(int_gemm(a, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto y = dy.download();
  int64_t bad = 0;
  std::vector<int8_t> q(k);
  for (int64_t i = 0; i < m; ++i) {
    fwht_normalized(xf.data() + i * k, k);
    const float sa = quantize_sym(xf.data() + i * k, k, 4, 1.0f, q.data());
    for (int64_t j = 0; j < n; ++j) {
      int64_t acc = 0;
      for (int64_t t = 0; t < k; ++t) acc += static_cast<int64_t>(q[t]) * wv[j * k + t];
      const __half yh = __float2half_rn(static_cast<float>(acc) * (sa * hsb[j]));
      bad += std::memcmp(&yh, &y[i * n + j], 2) != 0;
    }
  }
  check(bad == 0, std::string("pipeline hadamard_quant -> W4A4 GEMM") + (even_odd ? " (even/odd, wgmma_rs)" : "") +
                     ": " + std::to_string(bad) + " outputs differ");
}

}  // namespace

// --quick: a few small shapes, for the slow compute-sanitizer runs.
int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  if (!open_device()) return 2;
  std::mt19937 rng(20261201);

  test_hadamard_quant_rejects();
  for (HadamardQuantVariant v : kVariants) {
    test_quant_ties(4, v);
    test_quant_ties(8, v);
  }
  // Every index-bit plan of the register kernels (log2 p = 0..15, p = cols), rows
  // held by a part of a warp, a warp, several warps (11008: a padded last warp), and
  // enough rows that blocks walk several of them; cols % 64 != 0 falls back to Legacy.
  const struct { int64_t rows, cols, p; } hq_shapes[] = {
      {6, 64, 64},       {5, 4096, 4096},  {7, 8192, 8192},  {5, 11008, 256},    {4, 28672, 4096},
      {4, 4096, 1},      {9, 1024, 128},   {4, 14336, 2048}, {1, 32768, 32768},  {300, 512, 512},
      {5, 96, 2},        {5, 160, 32},     {4, 24576, 8},    {5, 2048, 16},      {4, 32768, 1024},
      {4, 16384, 16384}, {5, 2048, 2048},  {5, 256, 4},      {6, 128, 32},       {5, 4096, 32},
      {9000, 512, 512},  {3000, 4096, 4096}, {600, 14336, 2048}, {5, 32768, 1},  {5, 11008, 1},
      {5, 192, 64},      {7, 1344, 64},    {5, 2880, 64},    {2000, 2880, 64},  {300, 8192, 1},
  };
  int hq_count = 0;
  for (const auto& s : hq_shapes) {
    if (quick && ++hq_count > 3) break;
    for (HadamardQuantVariant v : kVariants) {
      test_hadamard_quant<__half>(rng, s.rows, s.cols, s.p, 4, 1.0f, v);
      test_hadamard_quant<float>(rng, s.rows, s.cols, s.p, 4, 0.9f, v);
    }
  }
  const struct { int64_t rows, cols, p; float clip; } hq8_shapes[] = {
      {5, 4096, 4096, 1.0f}, {5, 11008, 256, 0.95f}, {3, 32768, 32768, 1.0f}, {7, 128, 1, 1.25f},
      {5, 8192, 8192, 0.9f}, {300, 512, 512, 1.0f},  {5, 2048, 16, 1.0f},
  };
  for (const auto& s : hq8_shapes)
    for (HadamardQuantVariant v : kVariants) {
      if (quick) break;
      test_hadamard_quant<__half>(rng, s.rows, s.cols, s.p, 8, s.clip, v);
      test_hadamard_quant<float>(rng, s.rows, s.cols, s.p, 8, s.clip, v);
    }
  test_hadamard_quant<__half>(rng, 5, 4096, 4096, 4, 1.5f, HadamardQuantVariant::Direct);
  // TensorCore's own shapes: every p it takes, one and two units per warp, blocks that walk
  // several rows (the next row's copy in flight), clip below 1 (clamped codes), 8 bits.
  const struct { int64_t rows, cols, p; int bits; float clip; } tc_shapes[] = {
      {700, 4096, 4096, 4, 1.0f},  {9, 1024, 1024, 4, 1.0f},   {300, 14336, 2048, 4, 0.9f},
      {40, 28672, 4096, 4, 1.0f},  {33, 8192, 8192, 8, 1.0f},  {17, 16384, 8192, 4, 0.95f},
      {2000, 2048, 1024, 8, 0.9f}, {6, 28672, 4096, 8, 1.25f}, {300, 12288, 4096, 4, 1.0f},
      // p = 256, 512: blocks side by side in a unit; 11008 = 43 x 256 ends in a short unit.
      {300, 11008, 256, 4, 1.0f},  {5, 11008, 256, 8, 0.9f},   {40, 1536, 512, 4, 1.0f},
      {9, 256, 256, 4, 1.0f},      {70, 14336, 512, 8, 1.0f},  {3, 27648, 256, 4, 0.95f},
      // clip far below 1: |y / s| up to ~10^6, nearly every code clamped.
      {5, 4096, 4096, 4, 1e-5f},   {5, 2048, 1024, 8, 3e-5f},
  };
  for (const auto& s : tc_shapes) {
    if (quick && s.rows * s.cols > 64 * 4096) continue;
    test_hadamard_quant<__half>(rng, s.rows, s.cols, s.p, s.bits, s.clip, HadamardQuantVariant::TensorCore);
  }
  // Its even/odd int8 stores with blocks side by side (C = 16, 32) and a short last unit.
  for (int bits : {4, 8}) {
    test_hadamard_quant<__half>(rng, 300, 11008, 256, bits, 1.0f, HadamardQuantVariant::TensorCore, true);
    test_hadamard_quant<__half>(rng, 40, 1536, 512, bits, 0.9f, HadamardQuantVariant::TensorCore, true);
  }
  // The even/odd int8 layout (WgmmaRs's activations) from every implementation: index
  // plans with G = 0 and G > 0, rows per warp, per block and over several blocks.
  const struct { int64_t rows, cols, p; } eo_shapes[] = {
      {6, 64, 64}, {5, 4096, 4096}, {4, 28672, 4096}, {300, 512, 512}, {600, 14336, 2048}, {5, 2880, 64}, {4, 4096, 1},
      {200, 8192, 1},
  };
  for (const auto& s : eo_shapes)
    for (HadamardQuantVariant v : kVariants)
      for (int bits : {4, 8}) {
        if (quick && s.rows * s.cols > 64 * 4096) continue;
        test_hadamard_quant<__half>(rng, s.rows, s.cols, s.p, bits, 1.0f, v, true);
        test_hadamard_quant<float>(rng, s.rows, s.cols, s.p, bits, 0.9f, v, true);
      }
  // The RMS fold: one row per warp part, per warp, per block (the shared-memory
  // reduction), Staged's long rows, Coalesced (p >= 128), Legacy's second pass.
  const struct { int64_t rows, cols, p; } fold_shapes[] = {
      {300, 8192, 1}, {5, 8192, 1}, {2000, 512, 512}, {130, 4096, 128}, {40, 28672, 4096}, {9, 1024, 1},
  };
  for (const auto& s : fold_shapes)
    for (HadamardQuantVariant v : kVariants)
      for (bool eo : {false, true}) {
        if (quick && s.rows * s.cols > 64 * 4096) continue;
        // TensorCore folds nothing (the fold call runs Auto), so its plain call's codes
        // are not the reference this check compares against.
        if (v == HadamardQuantVariant::TensorCore) continue;
        test_hadamard_quant_rms_fold(rng, s.rows, s.cols, s.p, 4, v, eo);
      }

  test_int_gemm_rejects();
  const IntGemmKind kinds[] = {IntGemmKind::W4A4, IntGemmKind::W4A8, IntGemmKind::W8A8};
  const struct { int64_t m, n, k; } shapes[] = {
      {1, 256, 4096}, {16, 512, 1024}, {13, 250, 384}, {29, 96, 512}, {64, 384, 1024},
      {200, 300, 512}, {128, 256, 11008}, {257, 520, 640}, {512, 512, 256},
      // more k-blocks than pipeline stages, ragged in M and N: the ring wraps several times
      {130, 264, 1280}, {384, 512, 4096},
      // decode on a wide layer: the streaming skinny kernel's blocks take several tiles
      {1, 11264, 256},
      // ... with a chunk count (13, 33) that leaves some warps of a block idle or one
      // item longer, ragged N, and M between 1 and 16
      {3, 9000, 1664}, {16, 4104, 4224},
      // more tiles than multiprocessors (the persistent kernels loop), ragged M
      {520, 6144, 128},
  };
  for (IntGemmKind kind : kinds)
    for (const auto& s : shapes)
      for (IntGemmPath path : kIntGemmPaths) {
        if (quick && (s.m * s.n * s.k > 64 * 384 * 1024)) continue;
        if (!int_gemm_path_supports(path, kind, s.m)) continue;
        test_int_gemm(rng, kind, path, s.m, s.n, s.k, (s.m + s.n) % 2 == 0);
      }
  // WgmmaRs at each token tile, on shapes that reach each way of splitting K: none,
  // atomics into scratch (128, 256), clusters of 2-4 CTAs meeting in the leader's shared
  // memory (16, 64; 16 x 512 x 1024 takes 4, 5 x 128 x 1152 takes 3 with uneven shares),
  // several tiles per cluster (the slots reused), ragged M and N, several token tiles;
  // whole tiles (the epilogue without bounds checks) beside edge tiles at N % 4 == 2, with
  // and without a residual; whole tiles whose FP16 outputs leave by TMA (no residual, N %
  // 8 == 0: M + N odd) beside edge tiles that do not.
  const struct { int64_t m, n, k; } rs_shapes[] = {
      {1, 256, 4096}, {16, 512, 1024}, {5, 128, 1152}, {13, 250, 384}, {64, 384, 1024}, {29, 96, 512},
      {200, 300, 512}, {1, 11264, 256}, {7, 8192, 2048}, {130, 264, 1280}, {520, 6144, 128},
      {272, 390, 128}, {273, 390, 128}, {257, 264, 128}, {385, 1032, 128},
  };
  for (int tile : {16, 64, 128, 256})
    for (IntGemmKind kind : {IntGemmKind::W4A4, IntGemmKind::W4A8})
      for (const auto& s : rs_shapes) {
        if (quick && (s.m * s.n * s.k > 64 * 384 * 1024)) continue;
        test_int_gemm(rng, kind, IntGemmPath::WgmmaRs, s.m, s.n, s.k, (s.m + s.n + tile) % 2 == 0, tile);
      }
  test_pipeline(rng, IntGemmActLayout::Standard, 40);
  test_pipeline(rng, IntGemmActLayout::Standard, 7);
  test_pipeline(rng, IntGemmActLayout::Int8EvenOdd, 300);

  return finish();
}
