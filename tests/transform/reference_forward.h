#pragma once
// An independent double-precision Llama forward for the transform tests: embedding ->
// per layer RMSNorm -> q/k/v (+bias) -> RoPE (HF rotate_half) -> online q/k rotation ->
// causal GQA attention -> online o_proj rotation -> o_proj -> residual -> RMSNorm ->
// SwiGLU with online down_proj rotation -> residual; final RMSNorm -> lm_head.
// Online rotations run through apply_rotation_rows (double), nothing from model/.
#include <cmath>
#include <vector>

#include "model/runtime_recipe.h"
#include "model/weights.h"
#include "transform/hadamard_transform.h"

namespace quarot::test {

inline std::vector<double> linear(const std::vector<double>& x, int64_t n, const Tensor& w, const Tensor& b) {
  const int64_t out = w.shape[0], in = w.shape[1];
  std::vector<double> y(n * out, 0.0);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double s = b.empty() ? 0.0 : b.data[o];
      for (int64_t i = 0; i < in; ++i) s += x[t * in + i] * double(w.at(o, i));
      y[t * out + o] = s;
    }
  return y;
}

inline std::vector<double> rmsnorm(const std::vector<double>& x, int64_t n, const Tensor& g, double eps) {
  const int64_t d = g.numel();
  std::vector<double> y(x.size());
  for (int64_t t = 0; t < n; ++t) {
    double ss = 0.0;
    for (int64_t i = 0; i < d; ++i) ss += x[t * d + i] * x[t * d + i];
    const double r = 1.0 / std::sqrt(ss / d + eps);
    for (int64_t i = 0; i < d; ++i) y[t * d + i] = x[t * d + i] * r * g.data[i];
  }
  return y;
}

inline void rope(double* v, int64_t heads, int64_t hd, int64_t pos, double theta) {
  for (int64_t h = 0; h < heads; ++h) {
    double* x = v + h * hd;
    for (int64_t i = 0; i < hd / 2; ++i) {
      const double angle = pos * std::pow(theta, -2.0 * i / hd);
      const double a = x[i], b = x[i + hd / 2];
      x[i] = a * std::cos(angle) - b * std::sin(angle);
      x[i + hd / 2] = b * std::cos(angle) + a * std::sin(angle);
    }
  }
}

inline void rotate(const OnlineRotation& r, std::vector<double>& x, int64_t dim) {
  if (r.is_identity()) return;
  apply_rotation_rows(r, x.data(), static_cast<int64_t>(x.size()) / dim);
}

// Logits [n, vocab] for tokens at positions 0..n-1.
inline std::vector<double> reference_logits(const ModelWeights& w, const RuntimeRecipe& recipe,
                                            const std::vector<int32_t>& tokens) {
  const LlamaConfig& c = w.config;
  const int64_t n = static_cast<int64_t>(tokens.size()), H = c.hidden, hd = c.head_dim;
  const int64_t nh = c.n_heads, nkv = c.n_kv_heads, qd = c.q_dim(), kvd = c.kv_dim(), F = c.intermediate;
  std::vector<double> x(n * H);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < H; ++i) x[t * H + i] = w.tok_embeddings.at(tokens[t], i);
  const Tensor none;
  for (const LayerWeights& l : w.layers) {
    const auto h = rmsnorm(x, n, l.attn_norm, c.rms_eps);
    auto q = linear(h, n, l.wq, l.bq), k = linear(h, n, l.wk, l.bk), v = linear(h, n, l.wv, l.bv);
    for (int64_t t = 0; t < n; ++t) {
      rope(&q[t * qd], nh, hd, t, c.rope_theta);
      rope(&k[t * kvd], nkv, hd, t, c.rope_theta);
    }
    rotate(recipe.qk_rotation, q, hd);
    rotate(recipe.qk_rotation, k, hd);
    std::vector<double> att(n * qd, 0.0);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t hh = 0; hh < nh; ++hh) {
        const int64_t g = hh / (nh / nkv);
        std::vector<double> s(t + 1);
        double mx = -1e300, sum = 0.0;
        for (int64_t j = 0; j <= t; ++j) {
          double d = 0.0;
          for (int64_t i = 0; i < hd; ++i) d += q[t * qd + hh * hd + i] * k[j * kvd + g * hd + i];
          s[j] = d / std::sqrt(double(hd));
          mx = std::max(mx, s[j]);
        }
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t j = 0; j <= t; ++j)
          for (int64_t i = 0; i < hd; ++i) att[t * qd + hh * hd + i] += s[j] / sum * v[j * kvd + g * hd + i];
      }
    rotate(recipe.o_proj_input, att, qd);
    const auto o = linear(att, n, l.wo, none);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    const auto h2 = rmsnorm(x, n, l.ffn_norm, c.rms_eps);
    const auto gate = linear(h2, n, l.w_gate, none), up = linear(h2, n, l.w_up, none);
    std::vector<double> act(n * F);
    for (int64_t i = 0; i < n * F; ++i) act[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
    rotate(recipe.down_proj_input, act, F);
    const auto d = linear(act, n, l.w_down, none);
    for (size_t i = 0; i < x.size(); ++i) x[i] += d[i];
  }
  return linear(rmsnorm(x, n, w.output_norm, c.rms_eps), n, w.output_matrix(), none);
}

}  // namespace quarot::test
