// Checks of the CUDA KV cache and attention (cuda_kv_attention.h) against the CPU
// code they must match, run on the GPU machine (no GoogleTest there): exit status 0
// only when every check holds.
//   storage: codes, {scale, zero} pairs and the IntactKV row bit-identical to
//            QuantKvLayerStore::append on the same rows (4 / 8 bits, symmetric and
//            asymmetric, groups, clip ratios, rounding ties, all-zero groups);
//            clone() copies exactly the first positions and is independent after.
//   attention: the GPU output and the CPU backend's (make_cpu_backend()->attention
//            over its own storage built from the same rows) both within a bound B
//            of a float64 softmax over the same dequantized values. B follows from
//            FP32 rounding: score errors gamma_(D+2) * scale * sum|q k| move each
//            weight by a relative exp(2 E) - 1 (+ exp's own error), the weighted
//            sums add gamma_(len+4); B_d = (2 eta + 2 gamma) * sum_j p_j |v_jd|.
//            Each case also asserts that B is tight enough to reject an off-by-one
//            causal mask (and, for prefill, no mask), so a wrong mask cannot pass;
//            outputs are poisoned with NaN first, so a no-op cannot pass.
//   --cpu-only: the reference and bound checks against the CPU backend alone
//            (runs without a GPU; validates the test itself).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "cuda_check_harness.cuh"
#include "kernels/backend.h"
#include "kernels/cpu/fp32_kv_storage.h"
#include "kernels/cpu/kv_store_q.h"
#include "kernels/cpu/quant_kv_storage.h"
#include "kernels/cuda/cuda_kv_attention.h"
#include "kernels/cuda/cuda_kv_storage.cuh"

namespace {

using namespace quarot;
using namespace quarot::cuda;
using namespace quarot::cuda::check_harness;

bool g_gpu = true;
bool g_quick = false;  // fewer attention configurations (for compute-sanitizer)

std::string spec_name(const KvCacheSpec& s) {
  auto side = [](const KvQuantSpec& q) {
    if (!q.enabled()) return std::string("fp32");
    return std::to_string(q.bits) + (q.symmetric ? "s" : "a") + "g" + std::to_string(q.group) + "c" +
           std::to_string(q.clip_ratio).substr(0, 4);
  };
  return "K" + side(s.k) + "/V" + side(s.v) + (s.intact_kv ? "+intact" : "") + " hd" + std::to_string(s.head_dim) +
         " kvh" + std::to_string(s.n_kv_heads);
}

// Rows [n, kv_dim] of N(0, sigma) values with a per-row sigma, and some rows that
// hit the quantizer's corner cases: an all-zero head, half-integer values whose
// quotients land exactly on rounding ties at clip 1 (symmetric: max|x| = 7 in every
// run of 16, scale 1 at 4 bits; asymmetric: min -7, max 8, scale 1), one-signed heads.
// corners = false keeps only the all-zero head: the attention tests need keys of
// different positions uncorrelated (see test_attention's queries).
std::vector<float> make_rows(int64_t n, int64_t kvd, int64_t hd, std::mt19937& rng, int64_t pos0,
                             bool corners = true) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_int_distribution<int> half(-14, 14);
  std::vector<float> r(static_cast<size_t>(n * kvd));
  for (int64_t t = 0; t < n; ++t) {
    const float sigma = 0.5f + static_cast<float>((pos0 + t) % 7) * 0.4f;
    const int kind = static_cast<int>((pos0 + t) % 11);
    const bool corner = corners || kind == 3;
    for (int64_t i = 0; i < kvd; ++i) {
      float x = sigma * nd(rng);
      const int64_t head = i / hd, d = i % hd;
      if (!corner) {
        r[static_cast<size_t>(t * kvd + i)] = x;
        continue;
      }
      if (kind == 3 && head == 0) x = 0.0f;  // all-zero head
      if (kind == 5 || kind == 6) x = 0.5f * static_cast<float>(half(rng));
      if (kind == 5 && d % 16 == 0) x = 7.0f;
      if (kind == 6 && d % 16 == 0) x = 8.0f;
      if ((kind == 5 || kind == 6) && d % 16 == 1) x = -7.0f;
      if (kind == 7) x = std::fabs(x);           // lo = 0
      if (kind == 9) x = -std::fabs(x) - 0.25f;  // hi = 0
      r[static_cast<size_t>(t * kvd + i)] = x;
    }
  }
  return r;
}

// ---------------------------------------------------------------------------
// Storage: bit-identical codes.

// Compares one side of the GPU storage with a CPU store, every byte and float
// (unwritten positions are zero in both).
void compare_side(const KvSideView& g, const QuantKvLayerStore& c, const std::string& what) {
  const QuantKvLayout& l = c.layout();
  const size_t n_codes = static_cast<size_t>(l.n_kv_heads * c.capacity() * l.code_bytes_per_head());
  const size_t n_params = static_cast<size_t>(l.n_kv_heads * c.capacity() * 2 * l.groups_per_head());
  const std::vector<uint8_t> codes = download(g.codes, n_codes);
  const std::vector<float> params = download(g.params, n_params);
  int64_t bad_codes = 0, bad_params = 0, first_bad = -1;
  for (size_t i = 0; i < n_codes; ++i)
    if (codes[i] != c.codes(0, 0)[i]) {
      ++bad_codes;
      if (first_bad < 0) first_bad = static_cast<int64_t>(i);
    }
  for (size_t i = 0; i < n_params; ++i)
    if (bits_of(params[i]) != bits_of(c.params(0, 0)[i])) ++bad_params;
  check(bad_codes == 0, what + ": " + std::to_string(bad_codes) + " code bytes differ (first at " +
                            std::to_string(first_bad) + ")");
  check(bad_params == 0, what + ": " + std::to_string(bad_params) + " scale/zero floats differ");
  if (c.first_fp_row() != nullptr) {
    check(g.first_row != nullptr, what + ": IntactKV row missing");
    if (g.first_row != nullptr) {
      const std::vector<float> first = download(g.first_row, static_cast<size_t>(l.row_dim()));
      check(std::memcmp(first.data(), c.first_fp_row(), first.size() * 4) == 0, what + ": IntactKV row differs");
    }
  }
}

void test_storage_bits(const KvCacheSpec& spec, std::mt19937& rng) {
  const std::string name = "storage " + spec_name(spec);
  auto gpu = make_cuda_kv_storage(spec, nullptr);
  const auto& g = dynamic_cast<const CudaKvStorage&>(*gpu);
  std::vector<QuantKvLayerStore> ck, cv;
  for (int64_t l = 0; l < spec.n_layers; ++l) {
    ck.emplace_back(kv_layout(spec, spec.k), spec.capacity);
    cv.emplace_back(kv_layout(spec, spec.v), spec.capacity);
  }
  const int64_t kvd = spec.kv_dim();
  // Appends of varied sizes, as prefill then decode steps do.
  const int64_t sizes[] = {37, 1, 1, 5, 64, 1, 20};
  for (int64_t l = 0; l < spec.n_layers; ++l) {
    int64_t pos = 0;
    for (int64_t n : sizes) {
      if (pos + n > spec.capacity) break;
      const std::vector<float> k = make_rows(n, kvd, spec.head_dim, rng, pos);
      const std::vector<float> v = make_rows(n, kvd, spec.head_dim, rng, pos + 3);
      DevBuf<float> dk(k.size()), dv(v.size());
      dk.upload(k.data());
      dv.upload(v.data());
      gpu->append(l, pos, n, dk.p, dv.p);
      ck[l].append(k.data(), n, pos, spec.intact_kv);
      cv[l].append(v.data(), n, pos, spec.intact_kv);
      CUDA_OK(cudaDeviceSynchronize());
      pos += n;
    }
    compare_side(g.k(l), ck[l], name + " layer " + std::to_string(l) + " K");
    compare_side(g.v(l), cv[l], name + " layer " + std::to_string(l) + " V");
  }
  QuantKvStorage cpu_store(spec);
  check(gpu->bytes_per_position() == cpu_store.bytes_per_position(),
        name + ": bytes_per_position " + std::to_string(gpu->bytes_per_position()) + " vs CPU " +
            std::to_string(cpu_store.bytes_per_position()));

  // clone(P): the first P positions equal, the rest zero; later appends stay apart.
  const int64_t p = 40;
  auto copy = gpu->clone(p);
  CUDA_OK(cudaDeviceSynchronize());
  const auto& gc = dynamic_cast<const CudaKvStorage&>(*copy);
  for (int64_t l = 0; l < spec.n_layers; ++l) {
    for (int side = 0; side < 2; ++side) {
      const KvSideView a = side == 0 ? g.k(l) : g.v(l), b = side == 0 ? gc.k(l) : gc.v(l);
      const size_t cb = static_cast<size_t>(a.code_bytes), pb = static_cast<size_t>(2 * a.groups);
      const auto ca = download(a.codes, a.n_kv_heads * spec.capacity * cb);
      const auto cc = download(b.codes, a.n_kv_heads * spec.capacity * cb);
      const auto pa = download(a.params, a.n_kv_heads * spec.capacity * pb);
      const auto pc = download(b.params, a.n_kv_heads * spec.capacity * pb);
      int64_t bad = 0;
      for (int64_t h = 0; h < a.n_kv_heads; ++h)
        for (int64_t pos = 0; pos < spec.capacity; ++pos) {
          const size_t slot = static_cast<size_t>(h * spec.capacity + pos);
          for (size_t i = 0; i < cb; ++i) {
            const uint8_t want = pos < p ? ca[slot * cb + i] : 0;
            bad += cc[slot * cb + i] != want;
          }
          for (size_t i = 0; i < pb; ++i) {
            const uint32_t want = pos < p ? bits_of(pa[slot * pb + i]) : 0u;
            bad += bits_of(pc[slot * pb + i]) != want;
          }
        }
      check(bad == 0, name + ": clone(" + std::to_string(p) + ") layer " + std::to_string(l) + " side " +
                          std::to_string(side) + ": " + std::to_string(bad) + " values differ");
    }
  }
  // Overwrite the clone's positions p.. with other rows; the original must not change.
  const auto before = download(g.k(0).codes, static_cast<size_t>(g.k(0).n_kv_heads * spec.capacity * g.k(0).code_bytes));
  {
    const std::vector<float> k = make_rows(8, kvd, spec.head_dim, rng, 1000);
    DevBuf<float> dk(k.size());
    dk.upload(k.data());
    copy->append(0, p, 8, dk.p, dk.p);
    CUDA_OK(cudaDeviceSynchronize());
  }
  const auto after = download(g.k(0).codes, before.size());
  check(before == after, name + ": appending to a clone changed the original");
}

// ---------------------------------------------------------------------------
// Attention against the CPU backend and a float64 reference.

struct Reference {
  std::vector<double> out, bound;
};

constexpr double kU = 1.0 / 16777216.0;  // unit roundoff of float
double gamma_n(double n) { return n * kU / (1.0 - n * kU); }

// Causal attention in float64 on the dequantized rows kf, vf ([len, kvd]); row t sees
// positions j < vis(t). Also the bound B of the FP32 computation (see the top).
Reference reference(const std::vector<float>& q, int64_t n, int64_t pos0, const float* kf, const float* vf,
                    const AttentionShape& s, float scale, int64_t shift, bool no_mask, int64_t len_all) {
  const int64_t hd = s.head_dim, group = s.n_heads / s.n_kv_heads, kvd = s.n_kv_heads * hd, qd = s.n_heads * hd;
  Reference r;
  r.out.assign(static_cast<size_t>(n * qd), 0.0);
  r.bound.assign(static_cast<size_t>(n * qd), 0.0);
  std::vector<double> sc, err;
  for (int64_t t = 0; t < n; ++t) {
    const int64_t vis = no_mask ? len_all : std::max<int64_t>(0, pos0 + t + 1 + shift);
    for (int64_t h = 0; h < s.n_heads; ++h) {
      const float* qv = q.data() + t * qd + h * hd;
      const int64_t g = h / group;
      sc.assign(static_cast<size_t>(vis), 0.0);
      err.assign(static_cast<size_t>(vis), 0.0);
      double mx = -INFINITY, max_abs = 0.0, max_err = 0.0;
      for (int64_t j = 0; j < vis; ++j) {
        const float* kr = kf + j * kvd + g * hd;
        double dot = 0.0, mag = 0.0;
        for (int64_t d = 0; d < hd; ++d) {
          dot += static_cast<double>(qv[d]) * kr[d];
          mag += std::fabs(static_cast<double>(qv[d]) * kr[d]);
        }
        sc[j] = dot * scale;
        err[j] = gamma_n(static_cast<double>(hd + 2)) * mag * scale;
        mx = std::max(mx, sc[j]);
        max_abs = std::max(max_abs, std::fabs(sc[j]));
        max_err = std::max(max_err, err[j]);
      }
      if (vis == 0) continue;  // (wrong-mask variants only) nothing visible: output 0
      double sum = 0.0;
      for (int64_t j = 0; j < vis; ++j) {
        sc[j] = std::exp(sc[j] - mx);
        sum += sc[j];
      }
      for (int64_t j = 0; j < vis; ++j) sc[j] /= sum;
      // Relative error of each FP32 weight: score errors (2 E) and the rounding of the
      // exponent's argument, plus exp's own (CPU polynomial ~1e-6, GPU expf, the
      // chunk rescaling).
      const double eta = std::expm1(2.0 * max_err + 8.0 * kU * max_abs) + 8e-6;
      const double gam = gamma_n(static_cast<double>(vis + 4));
      for (int64_t d = 0; d < hd; ++d) {
        double o = 0.0, a = 0.0;
        for (int64_t j = 0; j < vis; ++j) {
          const double p = sc[j];
          const double v = vf[j * kvd + g * hd + d];
          o += p * v;
          a += p * std::fabs(v);
        }
        r.out[static_cast<size_t>(t * qd + h * hd + d)] = o;
        r.bound[static_cast<size_t>(t * qd + h * hd + d)] = (2.0 * eta + 2.0 * gam) * a + 1e-30;
      }
    }
  }
  return r;
}

// max_i |x_i - ref_i| / bound_i (NaN counts as infinite).
double worst_ratio(const std::vector<float>& x, const Reference& r) {
  double w = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = std::fabs(static_cast<double>(x[i]) - r.out[i]) / r.bound[i];
    w = std::isnan(e) ? INFINITY : std::max(w, e);
  }
  return w;
}
double worst_ratio(const std::vector<double>& x, const Reference& r) {
  double w = 0.0;
  for (size_t i = 0; i < x.size(); ++i) w = std::max(w, std::fabs(x[i] - r.out[i]) / r.bound[i]);
  return w;
}

struct Shape {
  int64_t n_heads, n_kv_heads, head_dim;
};

double g_worst_gpu = 0.0, g_worst_cpu = 0.0, g_max_gpu_cpu = 0.0, g_min_wrong = INFINITY;

// One (spec, shape): both caches filled with the same rows (appends of varied
// sizes, 2 layers), then attention at each (n, pos0) on layer 1. Positions past
// pos0 + n - 1 hold data too, so reading beyond the mask shows.
void test_attention(KvCacheSpec spec, const Shape& sh, std::mt19937& rng) {
  spec.n_layers = 2;
  spec.n_kv_heads = sh.n_kv_heads;
  spec.head_dim = sh.head_dim;
  spec.capacity = 2056;
  const AttentionShape shape{sh.n_heads, sh.n_kv_heads, sh.head_dim};
  const std::string name = spec_name(spec) + " heads " + std::to_string(sh.n_heads);
  const int64_t kvd = spec.kv_dim(), qd = sh.n_heads * sh.head_dim, cap = spec.capacity;
  auto cpu = make_cpu_backend();
  auto cpu_kv = cpu->make_kv_storage(spec);
  const auto* cpu_fp = dynamic_cast<const Fp32KvStorage*>(cpu_kv.get());
  if (cpu_fp == nullptr) {
    check(false, name + ": the CPU backend did not give its FP32 reference storage");
    return;
  }
  std::unique_ptr<KvStorage> gpu_kv;
  if (g_gpu) gpu_kv = make_cuda_kv_storage(spec, nullptr);
  for (int64_t l = 0; l < 2; ++l) {
    int64_t pos = 0, step = 0;
    const int64_t sizes[] = {300, 1, 7, 64, 141, 1, 1, 3};
    while (pos < cap) {
      const int64_t n = std::min(sizes[step++ % 8], cap - pos);
      const std::vector<float> k = make_rows(n, kvd, spec.head_dim, rng, pos, false);
      const std::vector<float> v = make_rows(n, kvd, spec.head_dim, rng, pos + 5);
      cpu_kv->append(l, pos, n, k.data(), v.data());
      if (g_gpu) {
        DevBuf<float> dk(k.size()), dv(v.size());
        dk.upload(k.data());
        dv.upload(v.data());
        gpu_kv->append(l, pos, n, dk.p, dv.p);
        CUDA_OK(cudaDeviceSynchronize());
      }
      pos += n;
    }
  }
  const int64_t layer = 1;
  struct Case {
    int64_t n, pos0;
  };
  const Case cases[] = {{1, 0}, {7, 0}, {64, 0}, {300, 0}, {64, 100}, {1, 1}, {1, 513}, {1, 2047}, {4, 513}, {8, 2047}};
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const Case& c : cases) {
    const std::string what = name + " n " + std::to_string(c.n) + " pos0 " + std::to_string(c.pos0);
    // Random queries pulled towards the keys at the row's own position and at the
    // next one, each raised 4 above the row's largest random score, so both sides of
    // the causal edge carry weight: dropping the own position or admitting the next
    // one moves the output well beyond the bound.
    const float amp = (c.pos0 % 2 == 1) ? 1.5f : 1.0f;
    const float scale = 1.0f / std::sqrt(static_cast<float>(sh.head_dim));
    const float* kf = cpu_fp->k(layer);
    const float* vf = cpu_fp->v(layer);
    std::vector<float> q(static_cast<size_t>(c.n * qd));
    const int64_t group = sh.n_heads / sh.n_kv_heads;
    for (int64_t t = 0; t < c.n; ++t)
      for (int64_t h = 0; h < sh.n_heads; ++h) {
        const int64_t off = (h / group) * sh.head_dim;
        std::vector<double> qv(static_cast<size_t>(sh.head_dim));
        for (double& x : qv) x = amp * nd(rng);
        double top = 0.0;
        for (int64_t j = 0; j <= c.pos0 + t; ++j) {
          double dot = 0.0;
          for (int64_t d = 0; d < sh.head_dim; ++d) dot += qv[d] * kf[j * kvd + off + d];
          top = std::max(top, dot * scale);
        }
        for (int64_t pos : {c.pos0 + t, c.pos0 + t + 1}) {
          const float* kp = kf + pos * kvd + off;
          double norm2 = 0.0;
          for (int64_t d = 0; d < sh.head_dim; ++d) norm2 += static_cast<double>(kp[d]) * kp[d];
          const double pull = norm2 > 0.0 ? (top + 4.0) / (scale * norm2) : 0.0;
          for (int64_t d = 0; d < sh.head_dim; ++d) qv[d] += pull * kp[d];
        }
        for (int64_t d = 0; d < sh.head_dim; ++d)
          q[static_cast<size_t>(t * qd + h * sh.head_dim + d)] = static_cast<float>(qv[d]);
      }
    const Reference ref = reference(q, c.n, c.pos0, kf, vf, shape, scale, 0, false, 0);

    std::vector<float> out_cpu(q.size(), NAN);
    cpu->attention(q.data(), c.n, c.pos0, *cpu_kv, layer, shape, scale, out_cpu.data());
    const double wc = worst_ratio(out_cpu, ref);
    g_worst_cpu = std::max(g_worst_cpu, wc);
    check(wc <= 1.0, what + ": CPU backend off the float64 reference by " + std::to_string(wc) + " x the bound");

    // The bound must reject an off-by-one mask either way (and, for prefill, no mask).
    for (int64_t shift : {-1, 1}) {
      const Reference off = reference(q, c.n, c.pos0, kf, vf, shape, scale, shift, false, 0);
      const double w_off = worst_ratio(off.out, ref);
      g_min_wrong = std::min(g_min_wrong, w_off);
      check(w_off > 1.0, what + ": the bound is too loose to reject a mask shifted by " + std::to_string(shift) +
                             " (" + std::to_string(w_off) + ")");
    }
    if (c.n > 1 && c.n <= 64) {
      const Reference all = reference(q, c.n, c.pos0, kf, vf, shape, scale, 0, true, c.pos0 + c.n);
      const double w_all = worst_ratio(all.out, ref);
      g_min_wrong = std::min(g_min_wrong, w_all);
      check(w_all > 1.0, what + ": the bound is too loose to reject a missing mask (" + std::to_string(w_all) + ")");
    }
    if (!g_gpu) continue;

    DevBuf<float> dq(q.size()), dout(q.size());
    dq.upload(q.data());
    CUDA_OK(cudaMemset(dout.p, 0xFF, q.size() * 4));  // NaN: a no-op cannot pass
    cuda_attention(dq.p, c.n, c.pos0, *gpu_kv, layer, shape, scale, dout.p, nullptr);
    CUDA_OK(cudaDeviceSynchronize());
    const std::vector<float> out_gpu = dout.download();
    const double wg = worst_ratio(out_gpu, ref);
    g_worst_gpu = std::max(g_worst_gpu, wg);
    check(wg <= 1.0, what + ": GPU off the float64 reference by " + std::to_string(wg) + " x the bound");
    double diff = 0.0;
    for (size_t i = 0; i < q.size(); ++i)
      diff = std::max(diff, static_cast<double>(std::fabs(out_gpu[i] - out_cpu[i])));
    g_max_gpu_cpu = std::max(g_max_gpu_cpu, diff);
    // Both within B of the reference, hence within 2 B of each other.
    double wgc = 0.0;
    for (size_t i = 0; i < q.size(); ++i)
      wgc = std::max(wgc, std::fabs(static_cast<double>(out_gpu[i]) - out_cpu[i]) / (2.0 * ref.bound[i]));
    check(wgc <= 1.0, what + ": GPU vs CPU backend " + std::to_string(wgc) + " x 2B");
  }
  if (!g_gpu) return;
  // clone(): attention over a clone of the first 600 positions equals the original's.
  auto copy = gpu_kv->clone(600);
  std::vector<float> q(static_cast<size_t>(qd));
  for (float& x : q) x = nd(rng);
  DevBuf<float> dq(q.size()), o1(q.size()), o2(q.size());
  dq.upload(q.data());
  const float scale = 1.0f / std::sqrt(static_cast<float>(sh.head_dim));
  cuda_attention(dq.p, 1, 599, *gpu_kv, layer, shape, scale, o1.p, nullptr);
  cuda_attention(dq.p, 1, 599, *copy, layer, shape, scale, o2.p, nullptr);
  CUDA_OK(cudaDeviceSynchronize());
  const auto a = o1.download(), b = o2.download();
  check(std::memcmp(a.data(), b.data(), a.size() * 4) == 0, name + ": attention over clone(600) differs");
}

void test_errors() {
  KvCacheSpec spec;
  spec.n_layers = 1;
  spec.n_kv_heads = 2;
  spec.head_dim = 64;
  spec.capacity = 16;
  auto expect_error = [](const std::string& what, auto&& f) {
    bool threw = false;
    try {
      f();
    } catch (const Error&) {
      threw = true;
    }
    check(threw, what + " did not throw quarot::Error");
  };
  KvCacheSpec bad = spec;
  bad.k.bits = 12;
  expect_error("12-bit K", [&] { make_cuda_kv_storage(bad, nullptr); });
  bad = spec;
  bad.v.bits = 4;
  bad.v.group = 48;
  expect_error("group 48 of head_dim 64", [&] { make_cuda_kv_storage(bad, nullptr); });
  auto kv = make_cuda_kv_storage(spec, nullptr);
  expect_error("append past capacity", [&] { kv->append(0, 10, 7, nullptr, nullptr); });
  const AttentionShape shape{4, 2, 64};
  expect_error("attention past capacity", [&] { cuda_attention(nullptr, 4, 14, *kv, 0, shape, 1.0f, nullptr, nullptr); });
  expect_error("attention on layer 1", [&] { cuda_attention(nullptr, 1, 0, *kv, 1, shape, 1.0f, nullptr, nullptr); });
  expect_error("attention with 3 heads on 2", [&] {
    cuda_attention(nullptr, 1, 0, *kv, 0, AttentionShape{3, 2, 64}, 1.0f, nullptr, nullptr);
  });
  auto cpu_kv = make_cpu_backend()->make_kv_storage(spec);
  expect_error("attention on a CPU cache", [&] { cuda_attention(nullptr, 1, 0, *cpu_kv, 0, shape, 1.0f, nullptr, nullptr); });
}

KvCacheSpec quant_spec(int kbits, bool ksym, int64_t kgroup, int vbits, bool vsym, int64_t vgroup, float clip,
                       bool intact) {
  KvCacheSpec s;
  s.k.bits = kbits;
  s.k.symmetric = ksym;
  s.k.group = kgroup;
  s.k.clip_ratio = clip;
  s.v.bits = vbits;
  s.v.symmetric = vsym;
  s.v.group = vgroup;
  s.v.clip_ratio = clip;
  s.intact_kv = intact;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--cpu-only") g_gpu = false;
    else if (std::string(argv[i]) == "--quick") g_quick = true;
  std::mt19937 rng(20261202);
  try {
    if (g_gpu) {
      // Storage: every bit width, symmetry, grouping and clip, with and without IntactKV.
      for (int bits : {4, 8})
        for (bool sym : {true, false})
          for (int64_t group : {0, 16, 32})
            for (float clip : {1.0f, 0.95f})
              for (bool intact : {false, true}) {
                KvCacheSpec s = quant_spec(bits, sym, group, bits, sym, group, clip, intact);
                s.n_layers = 2;
                s.n_kv_heads = 3;
                s.head_dim = (group == 16) ? 64 : 128;
                s.capacity = 160;
                test_storage_bits(s, rng);
              }
      // Odd groups: a packed byte holding two groups' codes; different K and V formats.
      KvCacheSpec odd = quant_spec(4, false, 3, 8, true, 6, 0.9f, true);
      odd.n_layers = 1;
      odd.n_kv_heads = 2;
      odd.head_dim = 6;
      odd.capacity = 160;
      test_storage_bits(odd, rng);
      KvCacheSpec odd2 = quant_spec(2, true, 0, 3, false, 0, 1.0f, false);
      odd2.n_layers = 1;
      odd2.n_kv_heads = 2;
      odd2.head_dim = 7;
      odd2.capacity = 160;
      test_storage_bits(odd2, rng);
      test_errors();
      std::printf("storage checks done: %d checks, %d failures\n", g_checks, g_failures);
    }
    // head_dim 64 / 128 run the compiled-size kernels, 96 the any-size one; groups of
    // 4 and 2 values take the per-byte dequantization inside either.
    const Shape shapes[] = {{8, 8, 64}, {6, 2, 128}, {16, 2, 64}, {32, 8, 128}, {4, 2, 96}};
    KvCacheSpec fp;
    const KvCacheSpec specs[] = {
        fp,
        quant_spec(4, false, 0, 4, false, 0, 0.95f, true),   // QuaRot's default cache, IntactKV
        quant_spec(8, true, 32, 4, true, 16, 1.0f, false),   // int8 K, int4 V, groups
        quant_spec(4, false, 32, 0, false, 0, 0.95f, false),  // K only
        quant_spec(4, true, 4, 8, false, 2, 1.0f, true),      // small groups
    };
    std::vector<std::pair<int, int>> runs;
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j)
        if (!g_quick || i == j) runs.emplace_back(i, j);
    runs.insert(runs.end(), {{4, 4}, {4, 0}});
    if (!g_quick) runs.insert(runs.end(), {{0, 4}, {1, 4}});
    for (const auto& [i, j] : runs) test_attention(specs[i], shapes[j], rng);
  } catch (const Error& e) {
    std::printf("FAIL: quarot::Error: %s\n", e.what());
    ++g_failures;
  }
  std::printf("attention: worst |err| / B: GPU %.3g, CPU backend %.3g; max |GPU - CPU| %.3g; "
              "wrong masks reach >= %.3g x B\n",
              g_worst_gpu, g_worst_cpu, g_max_gpu_cpu, g_min_wrong);
  std::printf("%s: %d checks, %d failures\n", g_failures == 0 ? "PASS" : "FAIL", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
