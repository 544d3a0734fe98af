// GPU checks of the decoder layer's small kernels against host references:
//   rmsnorm_rows / rows_scale_inv_rms (rmsnorm.cuh)    double reference, FP32-sum bound
//   rope_qk with and without the per-head Hadamard       double reference, angle-error bound
//   swiglu_rows with k = 1 and a 7 x 7 mixing factor     double reference
//   swiglu_hadamard_quant_rows                           bit for bit against swiglu_rows +
//                                                        hadamard_quant_rows (codes, scales)
//   kv_cache_store, FP16 and int4 (+ writeback)          bit for bit against the documented float ops
// Outputs are poisoned before each launch; inputs are seeded random. Exit status 0 only
// when every check holds.
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
#include "kernels/cuda/hadamard_quant.cuh"
#include "kernels/cuda/int_gemm.cuh"
#include "kernels/cuda/kv_cache.cuh"
#include "kernels/cuda/rmsnorm.cuh"
#include "kernels/cuda/rope.cuh"
#include "kernels/cuda/swiglu.cuh"
#include "kernels/cuda/swiglu_hadamard_quant.cuh"

namespace {

using namespace quarot::cuda;
using namespace quarot::cuda::check_harness;

constexpr uint8_t kPoison = 0xFF;  // NaN in FP16 and FP32

double hf(__half h) { return static_cast<double>(__half2float(h)); }
std::vector<__half> random_half(std::mt19937& rng, size_t n, float sigma) {
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<__half> v(n);
  for (auto& x : v) x = __float2half_rn(normal(rng));
  return v;
}
const double kHalfUlp = std::ldexp(1.0, -11);  // FP16 rounding, relative
const double kSub = std::ldexp(1.0, -25);      // FP16 subnormal half step

void test_rmsnorm(std::mt19937& rng, int64_t rows, int64_t cols) {
  const auto x = random_half(rng, rows * cols, 2.0f), gamma = random_half(rng, cols, 1.0f);
  DevBuf<__half> dx(x.size()), dg(gamma.size()), dy(x.size());
  DevBuf<float> ds(rows);
  dx.upload(x), dg.upload(gamma), dy.poison(kPoison);
  std::vector<float> s0(rows);
  for (int64_t r = 0; r < rows; ++r) s0[r] = 0.01f * static_cast<float>(r + 1);
  ds.upload(s0);
  const float eps = 1e-5f;
  CUDA_OK(rmsnorm_rows(dx.p, dg.p, rows, cols, eps, dy.p, nullptr));
  CUDA_OK(rows_scale_inv_rms(dx.p, rows, cols, eps, ds.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto y = dy.download();
  const auto s = ds.download();
  int64_t bad = 0, bad_s = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0.0;
    for (int64_t c = 0; c < cols; ++c) ss += hf(x[r * cols + c]) * hf(x[r * cols + c]);
    const double inv = 1.0 / std::sqrt(ss / cols + eps);
    // FP32 sum of squares: each thread adds cols / 256 values, then 5 shuffle and 8
    // block additions (relative (cols / 256 + 13) 2^-24); rsqrtf 2 ulp; two products.
    const double rel = (static_cast<double>(cols) / 256 + 13 + 2 * 2 + 2) * std::ldexp(1.0, -24);
    for (int64_t c = 0; c < cols; ++c) {
      const double want = hf(x[r * cols + c]) * inv * hf(gamma[c]);
      const double err = std::fabs(hf(y[r * cols + c]) - want);
      bad += !(err <= kHalfUlp * std::fabs(want) * (1 + rel) + rel * std::fabs(want) + kSub);
    }
    const double want_s = s0[r] * inv;
    bad_s += !(std::fabs(s[r] - want_s) <= rel * 2 * want_s);
  }
  check(bad == 0, "rmsnorm " + std::to_string(rows) + "x" + std::to_string(cols) + ": " + std::to_string(bad) +
                      " values outside the bound");
  check(bad_s == 0, "rows_scale_inv_rms " + std::to_string(rows) + "x" + std::to_string(cols) + ": " +
                        std::to_string(bad_s) + " scales outside the bound");
}

void test_rope(std::mt19937& rng, int seq, int batch, int hq, int hkv, int d, int pos0, bool hadamard) {
  const int64_t rows = int64_t{batch} * seq, stride = int64_t{hq + 2 * hkv} * d + 8;
  const auto x = random_half(rng, rows * stride, 1.0f);
  DevBuf<__half> dx(x.size());
  dx.upload(x);
  const float theta = 10000.0f;
  CUDA_OK(rope_qk(dx.p, rows, stride, seq, pos0, hq, hkv, d, theta, hadamard, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto y = dx.download();
  int64_t bad = 0, changed = 0, untouched_bad = 0;
  std::vector<double> r(d);
  for (int64_t row = 0; row < rows; ++row) {
    const double pos = pos0 + row % seq;
    for (int h = 0; h < hq + hkv; ++h) {
      const __half* xs = &x[row * stride + int64_t{h} * d];
      double norm1 = 0.0, norm2 = 0.0, angle_err = 0.0;
      for (int i = 0; i < d / 2; ++i) {
        const double a = pos * std::pow(static_cast<double>(theta), -2.0 * i / d);
        // FP32 angle: the exponent -log2(theta) 2i/d (up to 13.3, so 2^-24 13.3 absolute
        // twice) through exp2f (2 ulp) makes inv_freq good to about 40 2^-24 relative; the
        // product adds 1 ulp; sincosf 2 ulp. Margin x2.
        angle_err = std::max(angle_err, 2.0 * (42.0 * std::ldexp(a, -24) + std::ldexp(1.0, -22)));
        const double x0 = hf(xs[i]), x1 = hf(xs[i + d / 2]);
        r[i] = x0 * std::cos(a) - x1 * std::sin(a);
        r[i + d / 2] = x1 * std::cos(a) + x0 * std::sin(a);
      }
      for (int i = 0; i < d; ++i) norm1 += std::fabs(hf(xs[i])), norm2 += hf(xs[i]) * hf(xs[i]);
      norm2 = std::sqrt(norm2);
      if (hadamard) {
        for (int hh = 1; hh < d; hh *= 2)
          for (int i = 0; i < d; ++i)
            if ((i & hh) == 0) {
              const double a = r[i], b = r[i + hh];
              r[i] = a + b, r[i + hh] = a - b;
            }
        for (auto& v : r) v /= std::sqrt(static_cast<double>(d));
      }
      for (int i = 0; i < d; ++i) {
        // Rotation: the angle error moves a pair by at most angle_err times its norm
        // (and the Hadamard is orthonormal: the 2-norm of the error is kept); FP32
        // butterflies add log2(d) roundings of values up to ||x||_1.
        const double bound = kHalfUlp * std::fabs(r[i]) + angle_err * norm2 * 2 +
                             (hadamard ? (std::log2(d) + 2) * std::ldexp(norm1, -24) : std::ldexp(norm1, -23)) + kSub;
        const double got = hf(y[row * stride + int64_t{h} * d + i]);
        bad += !(std::fabs(got - r[i]) <= bound);
        changed += got != hf(xs[i]);
      }
    }
    for (int64_t c = int64_t{hq + hkv} * d; c < stride; ++c)
      untouched_bad += std::memcmp(&y[row * stride + c], &x[row * stride + c], 2) != 0;
  }
  char name[128];
  std::snprintf(name, sizeof name, "rope seq %d batch %d heads %d/%d d %d pos0 %d%s", seq, batch, hq, hkv, d, pos0,
                hadamard ? " + hadamard" : "");
  check(bad == 0, std::string(name) + ": " + std::to_string(bad) + " values outside the bound");
  check(untouched_bad == 0, std::string(name) + ": V columns or padding modified");
  // A no-op would keep every value (position 0 rotates nothing, so require most changed).
  check(changed > rows * (hq + hkv) * d / 2, std::string(name) + ": most values must change");
}

void test_swiglu(std::mt19937& rng, int64_t rows, int64_t inter, int k) {
  const auto gu = random_half(rng, rows * 2 * inter, 2.0f);
  std::vector<float> mix(k * k);
  std::normal_distribution<float> normal(0.0f, 1.0f / std::sqrt(static_cast<float>(k)));
  for (auto& m : mix) m = normal(rng);
  DevBuf<__half> dgu(gu.size()), dy(rows * inter);
  dgu.upload(gu), dy.poison(kPoison);
  CUDA_OK(swiglu_rows(dgu.p, rows, inter, k, k > 1 ? mix.data() : nullptr, dy.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto y = dy.download();
  const int64_t block = inter / k;
  int64_t bad = 0;
  std::vector<double> h(inter);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < inter; ++i) {
      const double g = hf(gu[r * 2 * inter + i]), u = hf(gu[r * 2 * inter + inter + i]);
      h[i] = g / (1.0 + std::exp(-g)) * u;
    }
    for (int a = 0; a < k; ++a)
      for (int64_t j = 0; j < block; ++j) {
        double want = 0.0, mag = 0.0;
        for (int c = 0; c < k; ++c) {
          const double t = (k == 1 ? 1.0 : mix[a * k + c]) * h[c * block + j];
          want += t, mag += std::fabs(t);
        }
        // __expf: 2 + 1.16 |g| ulp (|g| < 12 here), __fdividef 2 ulp, the sum and two
        // products, k FMAs.
        const double rel = (2 + 14 + 2 + 3 + k) * std::ldexp(1.0, -24);
        const double got = hf(y[r * inter + a * block + j]);
        bad += !(std::fabs(got - want) <= kHalfUlp * std::fabs(want) + rel * mag + kSub);
      }
  }
  check(bad == 0, "swiglu " + std::to_string(rows) + "x" + std::to_string(inter) + " k " + std::to_string(k) + ": " +
                      std::to_string(bad) + " values outside the bound");
}

// The fused pass against the two it replaces, byte for byte and bit for bit: row 0 has
// a zero gate (scale 0, codes 0), row 1 one NaN gate (NaN scale, codes 0).
void test_swiglu_hq(std::mt19937& rng, int64_t rows, int64_t inter, int k, int bits, float clip,
                    IntGemmActLayout layout) {
  auto gu = random_half(rng, rows * 2 * inter, 2.0f);
  for (int64_t i = 0; i < inter; ++i) gu[i] = __float2half_rn(0.0f);
  gu[2 * inter + 5] = __float2half_rn(NAN);
  std::vector<float> mix(k * k);
  std::normal_distribution<float> normal(0.0f, 1.0f / std::sqrt(static_cast<float>(k)));
  for (auto& m : mix) m = normal(rng);
  DevBuf<__half> dgu(gu.size()), dy(rows * inter), dsh0(rows), dsh1(rows);
  DevBuf<uint8_t> dq0(rows * inter), dq1(rows * inter);
  DevBuf<float> ds0(rows), ds1(rows);
  dgu.upload(gu), dy.poison(kPoison), dq0.poison(kPoison), dq1.poison(0xA5);
  ds0.poison(kPoison), ds1.poison(0xA5), dsh0.poison(kPoison), dsh1.poison(0xA5);
  const float* mp = k > 1 ? mix.data() : nullptr;
  CUDA_OK(swiglu_rows(dgu.p, rows, inter, k, mp, dy.p, nullptr));
  CUDA_OK(hadamard_quant_rows(dy.p, rows, inter, inter / k, bits, clip, dq0.p, ds0.p, dsh0.p, nullptr,
                              HadamardQuantVariant::Auto, layout));
  CUDA_OK(swiglu_hadamard_quant_rows(dgu.p, rows, inter, k, mp, bits, clip, layout, dq1.p, ds1.p, dsh1.p, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto q0 = dq0.download(), q1 = dq1.download();
  const auto s0 = ds0.download(), s1 = ds1.download();
  const auto h0 = dsh0.download(), h1 = dsh1.download();
  int64_t q_bad = 0, s_bad = 0, nonzero = 0;
  for (size_t i = 0; i < q0.size(); ++i) q_bad += q0[i] != q1[i], nonzero += q1[i] != 0;
  for (int64_t r = 0; r < rows; ++r) {
    s_bad += bits_of(s0[r]) != bits_of(s1[r]);
    s_bad += bits_of(__half2float(h0[r])) != bits_of(__half2float(h1[r]));
  }
  char what[160];
  std::snprintf(what, sizeof what, "swiglu_hadamard_quant %lldx%lld k %d bits %d clip %.2f %s", (long long)rows,
                (long long)inter, k, bits, clip, layout == IntGemmActLayout::Int8EvenOdd ? "even/odd" : "standard");
  check(q_bad == 0, std::string(what) + ": " + std::to_string(q_bad) + " code bytes differ from the two passes");
  check(s_bad == 0, std::string(what) + ": " + std::to_string(s_bad) + " scales differ from the two passes");
  check(s1[0] == 0.0f && std::isnan(s1[1]), std::string(what) + ": the zero / NaN rows' scales");
  check(nonzero > (rows - 2) * inter / 2, std::string(what) + ": too few nonzero codes");
}

void test_kv_store(std::mt19937& rng, bool int4, bool writeback, int d) {
  const int batch = 3, seq = 37, hq = 4, hkv = 2, max_ctx = 64, pos0 = 5;
  const int64_t rows = int64_t{batch} * seq, stride = int64_t{hq + 2 * hkv} * d;
  auto x = random_half(rng, rows * stride, 1.5f);
  // One all-zero head (scale fallback) and one all-positive head (zero point 0).
  for (int i = 0; i < d; ++i) x[3 * stride + hq * d + i] = __float2half_rn(0.0f);
  for (int i = 0; i < d; ++i) x[4 * stride + hq * d + i] = __float2half_rn(0.25f + 0.01f * i);
  const int64_t entries = int64_t{batch} * hkv * max_ctx;
  DevBuf<__half> dx(x.size());
  DevBuf<uint8_t> kc(entries * (int4 ? d / 2 : d * 2)), vc(entries * (int4 ? d / 2 : d * 2));
  DevBuf<__half2> ksz(entries), vsz(entries);
  dx.upload(x);
  CUDA_OK(cudaMemset(kc.p, 0xA5, kc.n));
  CUDA_OK(cudaMemset(vc.p, 0xA5, vc.n));
  CUDA_OK(cudaMemset(ksz.p, 0xFF, ksz.n * 4));
  CUDA_OK(cudaMemset(vsz.p, 0xFF, vsz.n * 4));
  KvCacheView c;
  c.batch = batch, c.heads = hkv, c.head_dim = d, c.max_ctx = max_ctx, c.int4 = int4;
  c.k = kc.p, c.v = vc.p, c.k_sz = ksz.p, c.v_sz = vsz.p;
  const float clip = 0.95f;
  CUDA_OK(kv_cache_store(dx.p, rows, stride, int64_t{hq} * d, int64_t{hq + hkv} * d, seq, pos0, c, clip, writeback,
                         nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto y = dx.download();
  const auto kb = kc.download(), vb = vc.download();
  const auto ks = ksz.download(), vs = vsz.download();
  int64_t bad = 0, extremes = 0;
  for (int64_t row = 0; row < rows; ++row)
    for (int which = 0; which < 2; ++which)
      for (int h = 0; h < hkv; ++h) {
        const int64_t col = int64_t{hq + which * hkv + h} * d;
        const int64_t entry = (row / seq * hkv + h) * max_ctx + pos0 + row % seq;
        const auto& cache = which ? vb : kb;
        const __half* xs = &x[row * stride + col];
        if (!int4) {
          bad += std::memcmp(&cache[entry * d * 2], xs, d * 2) != 0;
          bad += std::memcmp(&y[row * stride + col], xs, d * 2) != 0;
          continue;
        }
        float mx = 0.0f, mn = 0.0f;
        for (int i = 0; i < d; ++i) mx = std::max(mx, __half2float(xs[i])), mn = std::min(mn, __half2float(xs[i]));
        const float hi = clip * mx, lo = clip * mn;
        float s = __half2float(__float2half_rn((hi - lo) / 15.0f));
        if (!(s > 0.0f)) s = 1.0f;
        const float z = std::nearbyint(-lo / s);
        const __half2 sz = (which ? vs : ks)[entry];
        bad += __half2float(sz.x) != s || __half2float(sz.y) != z;
        for (int i = 0; i < d; ++i) {
          const float q = std::min(std::max(std::nearbyint(__half2float(xs[i]) / s) + z, 0.0f), 15.0f);
          const uint8_t byte = cache[entry * (d / 2) + i / 2];
          const int code = (i % 2 == 0) ? (byte & 0xF) : (byte >> 4);
          bad += code != static_cast<int>(q);
          extremes += code == 0 || code == 15;
          const __half want = writeback ? __float2half_rn((q - z) * s) : xs[i];
          bad += std::memcmp(&y[row * stride + col + i], &want, 2) != 0;
        }
      }
  // Q columns stay as they were.
  for (int64_t row = 0; row < rows; ++row) bad += std::memcmp(&y[row * stride], &x[row * stride], hq * d * 2) != 0;
  char name[96];
  std::snprintf(name, sizeof name, "kv_cache_store %s d %d%s", int4 ? "int4" : "fp16", d, writeback ? " writeback" : "");
  check(bad == 0, std::string(name) + ": " + std::to_string(bad) + " mismatches");
  if (int4) check(extremes > rows * 2 * hkv, std::string(name) + ": codes reach 0 or 15 in most heads");
  // Entries before pos0 and after the last position are never written.
  bool outside = true;
  for (int b = 0; b < batch; ++b)
    for (int t : {0, pos0 - 1, pos0 + seq}) outside &= kb[(int64_t{b} * hkv * max_ctx + t) * (int4 ? d / 2 : d * 2)] == 0xA5;
  check(outside, std::string(name) + ": wrote outside positions [pos0, pos0 + seq)");
}

void test_rejects() {
  DevBuf<__half> buf(1 << 16);
  check(rmsnorm_rows(buf.p, buf.p, 4, 12, 1e-5f, buf.p, nullptr) == cudaErrorInvalidValue, "rmsnorm cols % 8 rejected");
  check(rope_qk(buf.p, 4, 128, 4, 0, 1, 1, 96, 1e4f, false, nullptr) == cudaErrorInvalidValue, "rope d 96 rejected");
  check(rope_qk(buf.p, 4, 100, 4, 0, 1, 1, 64, 1e4f, false, nullptr) == cudaErrorInvalidValue,
        "rope narrow stride rejected");
  check(swiglu_rows(buf.p, 4, 28, 7, nullptr, buf.p, nullptr) == cudaErrorInvalidValue, "swiglu no mix rejected");
  {
    DevBuf<uint8_t> q(1 << 16);
    DevBuf<float> s(4);
    const float mix[4] = {1, 0, 0, 1};
    const auto eo = IntGemmActLayout::Int8EvenOdd;
    check(swiglu_hadamard_quant_rows(buf.p, 1, 2048, 2, mix, 4, 1.0f, eo, q.p, s.p, nullptr, nullptr) ==
              cudaErrorInvalidValue,
          "swiglu_hadamard_quant p = 1024 rejected");
    check(swiglu_hadamard_quant_rows(buf.p, 1, 1024, 2, mix, 4, 1.0f, IntGemmActLayout::Standard, q.p, s.p, nullptr,
                                     nullptr) == cudaErrorInvalidValue,
          "swiglu_hadamard_quant packed int4 rejected");
    check(swiglu_hadamard_quant_rows(buf.p, 1, 1024, 2, nullptr, 4, 1.0f, eo, q.p, s.p, nullptr, nullptr) ==
              cudaErrorInvalidValue,
          "swiglu_hadamard_quant no mix rejected");
    check(swiglu_hadamard_quant_rows(buf.p, 1, 1024, 2, mix, 4, 0.0f, eo, q.p, s.p, nullptr, nullptr) ==
              cudaErrorInvalidValue,
          "swiglu_hadamard_quant clip 0 rejected");
    check(swiglu_hadamard_quant_supported(28672, 7, 4, eo) && !swiglu_hadamard_quant_supported(11008, 43, 4, eo),
          "swiglu_hadamard_quant_supported");
  }
  KvCacheView c;
  c.batch = 1, c.heads = 1, c.head_dim = 64, c.max_ctx = 8, c.k = c.v = buf.p;
  check(kv_cache_store(buf.p, 4, 192, 64, 128, 4, 6, c, 0.95f, false, nullptr) == cudaErrorInvalidValue,
        "kv store past max_ctx rejected");
  c.int4 = true;
  check(kv_cache_store(buf.p, 4, 192, 64, 128, 4, 0, c, 0.95f, false, nullptr) == cudaErrorInvalidValue,
        "kv store int4 without scales rejected");
}

}  // namespace

int main(int argc, char** argv) {
  // --quick (for compute-sanitizer): the largest fused-quantizer shape left out.
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  if (!open_device()) return 2;
  std::mt19937 rng(20261203);
  test_rejects();
  test_rmsnorm(rng, 7, 8192);
  test_rmsnorm(rng, 3, 136);
  for (bool had : {false, true}) {
    test_rope(rng, 33, 2, 8, 1, 128, 3, had);
    test_rope(rng, 5, 3, 2, 2, 64, 2040, had);
  }
  test_swiglu(rng, 3, 28672, 7);
  test_swiglu(rng, 5, 1024, 1);
  test_swiglu(rng, 2, 96, 3);
  const auto eo = IntGemmActLayout::Int8EvenOdd, standard = IntGemmActLayout::Standard;
  test_swiglu_hq(rng, 40, 28672, 7, 4, 1.0f, eo);
  test_swiglu_hq(rng, 9, 28672, 7, 8, 0.9f, standard);
  test_swiglu_hq(rng, 33, 1536, 3, 4, 1.0f, eo);
  test_swiglu_hq(rng, 20, 4096, 1, 4, 0.95f, eo);
  test_swiglu_hq(rng, 5, 2048, 4, 8, 1.0f, eo);
  if (!quick) test_swiglu_hq(rng, 300, 32768, 8, 4, 1.0f, eo);
  test_swiglu_hq(rng, 3, 512, 1, 8, 1.0f, standard);
  for (int d : {128, 64}) {
    test_kv_store(rng, false, false, d);
    test_kv_store(rng, true, false, d);
    test_kv_store(rng, true, true, d);
  }
  return finish();
}
