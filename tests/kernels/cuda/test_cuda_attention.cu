// GPU checks of the FP16 prefill attention (flash_attention.cuh) against a double
// precision host reference, on small shapes: seq 1..300, head_dim 128 and 64, GQA 8:1
// and 1:1, causal and full, separate tensors and column slices of a packed QKV
// matrix. Exit status 0 only when every check holds.
//
// Bound per output element (derivation in the comments of within_bound): the kernel
// rounds the unnormalized probabilities to FP16 before they multiply V (relative
// 2^-11 each, so at most 2^-11 * W with W = sum_j p_j |v_j| / sum_j p_j), rounds the
// output once to FP16 (2^-11 |o|), and accumulates in FP32. Any mistake in masking,
// the head mapping, the online rescaling or the fragment layouts moves an output by
// a whole key's weight times |v|, orders of magnitude above the bound.
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
#include "kernels/cuda/flash_attention.cuh"

namespace {

using namespace quarot::cuda;
using namespace quarot::cuda::check_harness;

struct Case {
  int batch, seq, heads_q, heads_kv, d;
  bool causal, packed;
};

void test_attention(std::mt19937& rng, const Case& c) {
  const int64_t wq = int64_t{c.heads_q} * c.d, wkv = int64_t{c.heads_kv} * c.d;
  const int64_t rows = int64_t{c.batch} * c.seq;
  // Packed: one [rows, wq + 2 wkv] matrix (the layer's QKV output), o in its own
  // buffer with a padded stride; otherwise four dense tensors.
  const int64_t qs = c.packed ? wq + 2 * wkv : wq, ks = c.packed ? qs : wkv, os = c.packed ? wq + 8 : wq;
  std::vector<__half> q(rows * qs), k(c.packed ? 0 : rows * ks), v(c.packed ? 0 : rows * ks);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  // Scores of a few units so the softmax is far from uniform and far from one-hot.
  for (auto& x : q) x = __float2half_rn(1.5f * normal(rng));
  for (auto& x : k) x = __float2half_rn(normal(rng));
  for (auto& x : v) x = __float2half_rn(normal(rng));
  DevBuf<__half> dq(q.size()), dk(std::max<size_t>(k.size(), 1)), dv(std::max<size_t>(v.size(), 1));
  DevBuf<__half> dout(rows * os);
  dq.upload(q);
  if (!c.packed) dk.upload(k), dv.upload(v);
  CUDA_OK(cudaMemset(dout.p, 0xFF, dout.n * sizeof(__half)));  // NaN: an element never written fails

  FlashAttentionArgs a;
  a.q = dq.p;
  a.k = c.packed ? dq.p + wq : dk.p;
  a.v = c.packed ? dq.p + wq + wkv : dv.p;
  a.o = dout.p;
  a.q_stride = qs, a.k_stride = ks, a.v_stride = ks, a.o_stride = os;
  a.batch = c.batch, a.seq = c.seq, a.heads_q = c.heads_q, a.heads_kv = c.heads_kv, a.head_dim = c.d;
  a.scale = 1.0f / std::sqrt(static_cast<float>(c.d));
  a.causal = c.causal;
  CUDA_OK(flash_attention(a, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  const auto out = dout.download();

  auto qv = [&](int64_t r, int h, int d) { return static_cast<double>(__half2float(q[r * qs + h * c.d + d])); };
  auto kv = [&](int64_t r, int h, int d) {
    return static_cast<double>(__half2float(c.packed ? q[r * qs + wq + h * c.d + d] : k[r * ks + h * c.d + d]));
  };
  auto vv = [&](int64_t r, int h, int d) {
    return static_cast<double>(__half2float(c.packed ? q[r * qs + wq + wkv + h * c.d + d] : v[r * ks + h * c.d + d]));
  };

  int64_t bad = 0, checked = 0;
  double worst = 0.0;  // largest |err| / bound
  std::vector<double> s(c.seq), absqk(c.seq);
  const int group = c.heads_q / c.heads_kv;
  for (int b = 0; b < c.batch; ++b)
    for (int h = 0; h < c.heads_q; ++h)
      for (int t = 0; t < c.seq; ++t) {
        const int64_t r = int64_t{b} * c.seq + t;
        const int n = c.causal ? t + 1 : c.seq;
        double mx = -1e300, max_abs_s = 0.0, max_qk = 0.0;
        for (int j = 0; j < n; ++j) {
          double dot = 0.0, ab = 0.0;
          for (int d = 0; d < c.d; ++d) {
            const double pr = qv(r, h, d) * kv(int64_t{b} * c.seq + j, h / group, d);
            dot += pr;
            ab += std::fabs(pr);
          }
          s[j] = dot * a.scale;
          absqk[j] = ab * a.scale;
          mx = std::max(mx, s[j]);
          max_abs_s = std::max(max_abs_s, std::fabs(s[j]));
          max_qk = std::max(max_qk, absqk[j]);
        }
        double l = 0.0;
        for (int j = 0; j < n; ++j) l += (s[j] = std::exp(s[j] - mx));
        // Relative error of each unrounded probability: scores accumulated in FP32 over
        // d products (<= d 2^-23 of sum |q k| each, FP32 tensor-core sums), the scale
        // multiply and the subtraction of the running max (2^-23 |s| each, in log2
        // units), exp2f (2 ulp), the rescaling by 2^(m_old - m_new) (one more of each per
        // tile), and the FP32 sum l (n 2^-24). Doubled for margin.
        const double tiles = (n + 63) / 64;
        const double eps_p = 2.0 * (2.0 * c.d * std::ldexp(max_qk, -23) + 4.0 * std::ldexp(max_abs_s + 1.0, -23) +
                                    tiles * std::ldexp(1.0, -21) + n * std::ldexp(1.0, -24));
        for (int d = 0; d < c.d; ++d) {
          double o = 0.0, w = 0.0;
          for (int j = 0; j < n; ++j) {
            const double vj = vv(int64_t{b} * c.seq + j, h / group, d);
            o += s[j] * vj;
            w += s[j] * std::fabs(vj);
          }
          o /= l;
          w /= l;
          // FP16 probabilities (2^-11 relative; below 2^-14 the subnormal step 2^-25
          // absolute, at most n of them against l >= 1), FP32 P V accumulation
          // (n 2^-23 of W), the output's FP16 rounding (2^-11 |o|, subnormal 2^-25).
          const double bound = std::ldexp(1.0, -11) * w + eps_p * w + n * std::ldexp(1.0, -23) * w +
                               n * std::ldexp(1.0, -25) * 4.0 + std::ldexp(1.0, -11) * std::fabs(o) +
                               std::ldexp(1.0, -25);
          const float got = __half2float(out[r * os + h * c.d + d]);
          const double err = std::fabs(static_cast<double>(got) - o);
          ++checked;
          if (!(err <= bound)) {
            if (bad < 3)
              std::printf("  b %d h %d t %d d %d: got %.6f want %.6f bound %.3g\n", b, h, t, d, got, o, bound);
            ++bad;
          } else {
            worst = std::max(worst, err / bound);
          }
        }
      }
  char name[160];
  std::snprintf(name, sizeof name, "attention batch %d seq %d heads %d/%d d %d %s %s", c.batch, c.seq, c.heads_q,
                c.heads_kv, c.d, c.causal ? "causal" : "full", c.packed ? "packed" : "dense");
  check(bad == 0, std::string(name) + ": " + std::to_string(bad) + " of " + std::to_string(checked) +
                      " outside the FP16 bound");
  std::printf("%s: max |err| / bound %.3f\n", name, worst);
  // Padding past the last row of the padded stride must stay untouched (NaN poison).
  if (c.packed) {
    bool pad_kept = true;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = wq; j < os; ++j) pad_kept &= std::isnan(__half2float(out[r * os + j]));
    check(pad_kept, std::string(name) + ": wrote outside the heads' columns");
  }
}

void test_rejects() {
  DevBuf<__half> buf(4096);
  FlashAttentionArgs a;
  a.q = a.k = a.v = buf.p;
  a.o = buf.p;
  a.q_stride = a.k_stride = a.v_stride = a.o_stride = 128;
  a.batch = 1, a.seq = 4, a.heads_q = 1, a.heads_kv = 1, a.head_dim = 128, a.scale = 0.1f;
  check(flash_attention(a, nullptr) == cudaSuccess, "valid shape accepted");
  CUDA_OK(cudaDeviceSynchronize());
  auto bad = a;
  bad.head_dim = 96;
  check(flash_attention(bad, nullptr) == cudaErrorInvalidValue, "head_dim 96 rejected");
  bad = a, bad.heads_q = 3, bad.heads_kv = 2;
  check(flash_attention(bad, nullptr) == cudaErrorInvalidValue, "heads_q not a multiple of heads_kv rejected");
  bad = a, bad.q_stride = 100;
  check(flash_attention(bad, nullptr) == cudaErrorInvalidValue, "stride below the row width rejected");
  bad = a, bad.k = buf.p + 1;
  check(flash_attention(bad, nullptr) == cudaErrorInvalidValue, "misaligned k rejected");
  bad = a, bad.seq = 0;
  check(flash_attention(bad, nullptr) == cudaErrorInvalidValue, "seq 0 rejected");
  bad = a, bad.scale = NAN;
  check(flash_attention(bad, nullptr) == cudaErrorInvalidValue, "NaN scale rejected");
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  if (!open_device()) return 2;
  std::mt19937 rng(20261202);
  test_rejects();
  const Case cases[] = {
      {1, 1, 8, 1, 128, true, false},    {2, 17, 8, 1, 128, true, true},   {1, 64, 8, 1, 128, true, false},
      {2, 65, 2, 2, 128, true, false},   {1, 130, 8, 1, 64, true, true},   {2, 300, 8, 1, 128, true, true},
      {1, 300, 2, 2, 64, true, false},   {1, 129, 8, 1, 128, false, false}, {2, 77, 4, 4, 64, false, true},
      {1, 256, 16, 2, 128, true, true},
  };
  int n = 0;
  for (const Case& c : cases) {
    if (quick && ++n > 4) break;
    test_attention(rng, c);
  }
  return finish();
}
