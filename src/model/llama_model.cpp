#include "model/llama_model.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/fake_quant.h"
#include "kernels/cpu/fwht.h"
#include "kernels/cpu/vec_ops.h"
#include "model/rope.h"

namespace quarot {

const char* linear_slot_name(LinearSlot s) {
  switch (s) {
    case LinearSlot::kQkv: return "qkv";
    case LinearSlot::kO: return "o";
    case LinearSlot::kGateUp: return "gate_up";
    case LinearSlot::kDown: return "down";
    case LinearSlot::kLmHead: return "lm_head";
  }
  return "?";
}

struct LlamaModel::Linear {
  std::unique_ptr<PackedWeight> weight;
  std::vector<float> bias;
  const OnlineRotation* rotation = nullptr;
  ActQuantSpec act;

  void run(const Backend& backend, const float* x, int64_t n, float* y) const {
    LinearOp op;
    op.weight = weight.get();
    op.bias = bias.empty() ? nullptr : bias.data();
    op.input_rotation = (rotation != nullptr && !rotation->is_identity()) ? rotation : nullptr;
    op.act = act;
    backend.linear(op, x, n, y);
  }
};

struct LlamaModel::Layer {
  std::vector<float> attn_norm, ffn_norm;
  Linear wq, wk, wv, wo, w_gate, w_up, w_down;
};

namespace {

void rmsnorm_rows(const float* x, const float* w, float* out, int64_t n, int64_t dim, float eps) {
#pragma omp parallel for if (n > 1)
  for (int64_t t = 0; t < n; ++t) rmsnorm(x + t * dim, w, dim, eps, out + t * dim);
}

}  // namespace

LlamaModel::LlamaModel(const ModelWeights& w, RuntimeRecipe recipe, std::shared_ptr<const Backend> backend)
    : config_(w.config), recipe_(std::move(recipe)), backend_(std::move(backend)) {
  w.validate(config_.name.empty() ? "model" : config_.name);
  const LlamaConfig& c = config_;
  tok_embeddings_ = w.tok_embeddings.data;
  output_norm_ = w.output_norm.data;
  rope_inv_freq_ = rope_inverse_frequencies(c);
  if (!recipe_.qk_rotation.is_identity() && recipe_.qk_rotation.size() != c.head_dim)
    fail("recipe: q/k rotation of size {} does not match head_dim {}", recipe_.qk_rotation.size(), c.head_dim);
  if (!recipe_.o_proj_input.is_identity() && recipe_.o_proj_input.size() != c.q_dim())
    fail("recipe: o_proj input rotation of size {} does not match {}", recipe_.o_proj_input.size(), c.q_dim());
  if (!recipe_.down_proj_input.is_identity() && recipe_.down_proj_input.size() != c.intermediate)
    fail("recipe: down_proj input rotation of size {} does not match {}", recipe_.down_proj_input.size(),
         c.intermediate);
  for (const auto& [slot, spec] : recipe_.act_overrides)
    if (slot != "qkv" && slot != "o" && slot != "gate_up" && slot != "down")
      fail("recipe: activation override for unknown slot '{}' (qkv, o, gate_up, down)", slot);

  auto make_linear = [&](const Tensor& weight, const Tensor& bias, const OnlineRotation* rot, ActQuantSpec act) {
    Linear l;
    l.weight = backend_->pack(weight);
    l.bias = bias.data;
    l.rotation = rot;
    l.act = act;
    return l;
  };
  const Tensor none;
  for (const LayerWeights& lw : w.layers) {
    auto layer = std::make_shared<Layer>();
    layer->attn_norm = lw.attn_norm.data;
    layer->ffn_norm = lw.ffn_norm.data;
    layer->wq = make_linear(lw.wq, lw.bq, nullptr, recipe_.act_for("qkv"));
    layer->wk = make_linear(lw.wk, lw.bk, nullptr, recipe_.act_for("qkv"));
    layer->wv = make_linear(lw.wv, lw.bv, nullptr, recipe_.act_for("qkv"));
    layer->wo = make_linear(lw.wo, none, &recipe_.o_proj_input, recipe_.act_for("o"));
    layer->w_gate = make_linear(lw.w_gate, none, nullptr, recipe_.act_for("gate_up"));
    layer->w_up = make_linear(lw.w_up, none, nullptr, recipe_.act_for("gate_up"));
    layer->w_down = make_linear(lw.w_down, none, &recipe_.down_proj_input, recipe_.act_for("down"));
    layers_.push_back(std::move(layer));
  }
  lm_head_ = std::make_shared<Linear>(make_linear(w.output_matrix(), none, nullptr, recipe_.lm_head_act));
}

KvCache LlamaModel::make_cache(int64_t max_tokens) const {
  if (max_tokens <= 0) fail("KV cache size must be positive, got {}", max_tokens);
  return KvCache(config_.n_layers, config_.kv_dim(), max_tokens);
}

void LlamaModel::forward(const int32_t* tokens, int64_t n, KvCache& cache, std::vector<float>& logits,
                         bool all_logits) const {
  const LlamaConfig& c = config_;
  if (n <= 0) fail("forward: no tokens to run");
  const int64_t pos0 = cache.size();
  if (pos0 + n > cache.capacity())
    fail("sequence of {} tokens exceeds the context of {} tokens", pos0 + n, cache.capacity());
  for (int64_t t = 0; t < n; ++t) {
    if (tokens[t] < 0 || tokens[t] >= c.vocab_size)
      fail("token id {} at position {} is outside the vocabulary (size {})", tokens[t], pos0 + t, c.vocab_size);
  }
  const int64_t H = c.hidden;
  std::vector<float> x(n * H), h(n * H);
  embed(tokens, n, x.data());
  for (int64_t li = 0; li < c.n_layers; ++li) layer_forward(li, x.data(), n, pos0, cache, li);
  cache.advance(n);

  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t rows = n - first;
  rmsnorm_rows(x.data() + first * H, output_norm_.data(), h.data(), rows, H, c.rms_eps);
  if (hook_) hook_(static_cast<int>(c.n_layers), LinearSlot::kLmHead, h.data(), rows, H);
  logits.resize(rows * c.vocab_size);
  lm_head_->run(*backend_, h.data(), rows, logits.data());
}

void LlamaModel::embed(const int32_t* tokens, int64_t n, float* x) const {
  const LlamaConfig& c = config_;
  for (int64_t t = 0; t < n; ++t) {
    if (tokens[t] < 0 || tokens[t] >= c.vocab_size)
      fail("token id {} at position {} is outside the vocabulary (size {})", tokens[t], t, c.vocab_size);
  }
  for (int64_t t = 0; t < n; ++t)
    std::copy_n(tok_embeddings_.data() + static_cast<int64_t>(tokens[t]) * c.hidden, c.hidden, x + t * c.hidden);
}

void LlamaModel::run_layer(int layer, float* x, int64_t n) const {
  if (layer < 0 || layer >= config_.n_layers)
    fail("run_layer: layer {} out of range (model has {} layers)", layer, config_.n_layers);
  if (n <= 0) fail("run_layer: no tokens to run");
  KvCache cache(1, config_.kv_dim(), n);
  layer_forward(layer, x, n, 0, cache, 0);
}

void LlamaModel::layer_forward(int64_t li, float* x, int64_t n, int64_t pos0, KvCache& cache,
                               int64_t cache_layer) const {
  const LlamaConfig& c = config_;
  const int64_t H = c.hidden, hd = c.head_dim, nh = c.n_heads, nkv = c.n_kv_heads;
  const int64_t qd = c.q_dim(), kvd = c.kv_dim(), F = c.intermediate;
  std::vector<float> h(n * H), q(n * qd), k(n * kvd), v(n * kvd), att(n * qd), tmp(n * H);
  std::vector<float> gate(n * F), up(n * F);
  const float attn_scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const KvQuantSpec& kq = recipe_.k_cache;
  const KvQuantSpec& vq = recipe_.v_cache;
  const Layer& L = *layers_[li];
  const int layer = static_cast<int>(li);
  // --- attention ---
  rmsnorm_rows(x, L.attn_norm.data(), h.data(), n, H, c.rms_eps);
  if (hook_) hook_(layer, LinearSlot::kQkv, h.data(), n, H);
  L.wq.run(*backend_, h.data(), n, q.data());
  L.wk.run(*backend_, h.data(), n, k.data());
  L.wv.run(*backend_, h.data(), n, v.data());
#pragma omp parallel for if (n > 1)
  for (int64_t t = 0; t < n; ++t) {
    apply_rope(q.data() + t * qd, nh, hd, pos0 + t, rope_inv_freq_);
    apply_rope(k.data() + t * kvd, nkv, hd, pos0 + t, rope_inv_freq_);
  }
  if (!recipe_.qk_rotation.is_identity()) {
    apply_online_rotation(recipe_.qk_rotation, q.data(), n * nh, hd);
    apply_online_rotation(recipe_.qk_rotation, k.data(), n * nkv, hd);
  }
  for (int64_t t = 0; t < n; ++t) {
    float* kc = cache.k(cache_layer, pos0 + t);
    float* vc = cache.v(cache_layer, pos0 + t);
    std::copy_n(k.data() + t * kvd, kvd, kc);
    std::copy_n(v.data() + t * kvd, kvd, vc);
    const bool keep_fp = recipe_.intact_kv && pos0 + t == 0;
    if (kq.enabled() && !keep_fp)
      fake_quant_rows(kc, nkv, hd, kq.bits, kq.clip_ratio, kq.group, kq.symmetric);
    if (vq.enabled() && !keep_fp)
      fake_quant_rows(vc, nkv, hd, vq.bits, vq.clip_ratio, vq.group, vq.symmetric);
  }
  causal_attention(q.data(), n, pos0, cache.k(cache_layer, 0), cache.v(cache_layer, 0), {nh, nkv, hd}, attn_scale,
                   att.data());
  if (hook_) {
    // Calibration sees o_proj's input in the basis its weights live in.
    std::vector<float> rotated = att;
    if (!recipe_.o_proj_input.is_identity()) apply_online_rotation(recipe_.o_proj_input, rotated.data(), n, qd);
    hook_(layer, LinearSlot::kO, rotated.data(), n, qd);
  }
  L.wo.run(*backend_, att.data(), n, tmp.data());
  for (int64_t i = 0; i < n * H; ++i) x[i] += tmp[i];

  // --- SwiGLU MLP ---
  rmsnorm_rows(x, L.ffn_norm.data(), h.data(), n, H, c.rms_eps);
  if (hook_) hook_(layer, LinearSlot::kGateUp, h.data(), n, H);
  L.w_gate.run(*backend_, h.data(), n, gate.data());
  L.w_up.run(*backend_, h.data(), n, up.data());
#pragma omp parallel for
  for (int64_t i = 0; i < n * F; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
  if (hook_) {
    std::vector<float> rotated = gate;
    if (!recipe_.down_proj_input.is_identity())
      apply_online_rotation(recipe_.down_proj_input, rotated.data(), n, F);
    hook_(layer, LinearSlot::kDown, rotated.data(), n, F);
  }
  L.w_down.run(*backend_, gate.data(), n, tmp.data());
  for (int64_t i = 0; i < n * H; ++i) x[i] += tmp[i];
}

}  // namespace quarot
