#include "model/llama_model.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <set>
#include <cmath>

#include "common/error.h"
#include "kernels/cpu/fwht.h"
#include "kernels/cpu/vec_ops.h"
#include "model/rope.h"

namespace quarot {

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
  std::array<Linear, kLayerLinearCount> linears;  // in kLayerLinears order
  const Linear& wq() const { return linears[0]; }
  const Linear& wk() const { return linears[1]; }
  const Linear& wv() const { return linears[2]; }
  const Linear& wo() const { return linears[3]; }
  const Linear& w_gate() const { return linears[4]; }
  const Linear& w_up() const { return linears[5]; }
  const Linear& w_down() const { return linears[6]; }
};

namespace {

// Every buffer is written before it is read, so growing keeps old values and
// shrinking frees nothing.
struct LayerScratch {
  std::vector<float> h, q, k, v, att, tmp, gate, up;
  LayerScratch& sized(int64_t hidden, int64_t q_size, int64_t kv_size, int64_t ffn) {
    for (auto* b : {&h, &tmp}) b->resize(hidden);
    for (auto* b : {&q, &att}) b->resize(q_size);
    for (auto* b : {&k, &v}) b->resize(kv_size);
    for (auto* b : {&gate, &up}) b->resize(ffn);
    return *this;
  }
};

void rmsnorm_rows(const float* x, const float* w, float* out, int64_t n, int64_t dim, float eps) {
#pragma omp parallel for if (n > 1)
  for (int64_t t = 0; t < n; ++t) rmsnorm(x + t * dim, w, dim, eps, out + t * dim);
}

}  // namespace

namespace {

// Keeps a copy of an FP tensor alive behind an encoding.
WeightEncoding owned_f32(const Tensor& t) {
  auto data = std::make_shared<std::vector<float>>(t.data);
  return f32_weight(data->data(), t.shape[0], t.shape[1], data);
}

}  // namespace

LlamaModel::LlamaModel(const ModelWeights& w, RuntimeRecipe recipe, std::shared_ptr<const Backend> backend,
                       const WeightEncodings& encoded)
    : config_(w.config), recipe_(std::move(recipe)), backend_(std::move(backend)) {
  QUAROT_CHECK(backend_ != nullptr, "model: no backend given");
  const std::string source = config_.name.empty() ? "model" : config_.name;
  std::set<std::string> supplied;
  for (const auto& [name, e] : encoded) supplied.insert(name);
  w.validate(source, supplied);
  const LlamaConfig& c = config_;
  auto encoding_of = [&](const std::string& name, const Tensor& t, int64_t rows, int64_t cols) {
    const auto it = encoded.find(name);
    if (it == encoded.end()) return owned_f32(t);
    const WeightEncoding& e = it->second;
    if (e.rows != rows || e.cols != cols)
      fail("{}: encoded tensor {} is {}x{}, the model needs {}x{}", source, name, e.rows, e.cols, rows, cols);
    return e;
  };
  tok_embeddings_ = encoding_of("tok_embeddings", w.tok_embeddings, c.vocab_size, c.hidden);
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
    if (!parse_layer_slot(slot)) fail("recipe: activation override for unknown slot '{}' (qkv, o, gate_up, down)", slot);

  auto input_rotation = [&](LinearSlot slot) -> const OnlineRotation* {
    if (slot == LinearSlot::kO) return &recipe_.o_proj_input;
    if (slot == LinearSlot::kDown) return &recipe_.down_proj_input;
    return nullptr;
  };
  for (int64_t li = 0; li < c.n_layers; ++li) {
    const LayerWeights& lw = w.layers[li];
    auto layer = std::make_shared<Layer>();
    layer->attn_norm = lw.attn_norm.data;
    layer->ffn_norm = lw.ffn_norm.data;
    for (int i = 0; i < kLayerLinearCount; ++i) {
      const LayerLinear& d = kLayerLinears[i];
      Linear& l = layer->linears[i];
      const WeightEncoding e = encoding_of(layer_linear_name(li, d), lw.*d.weight, d.rows(c), d.cols(c));
      l.weight = backend_->pack(e);
      if (d.bias != nullptr) l.bias = (lw.*d.bias).data;
      l.rotation = input_rotation(d.slot);
      l.act = recipe_.act_for(linear_slot_name(d.slot));
    }
    layers_.push_back(std::move(layer));
  }
  lm_head_ = std::make_shared<Linear>();
  if (encoded.count("lm_head"))
    lm_head_->weight = backend_->pack(encoding_of("lm_head", w.lm_head, c.vocab_size, c.hidden));
  else if (!w.lm_head.empty())
    lm_head_->weight = backend_->pack(w.lm_head);
  else
    lm_head_->weight = backend_->pack(tok_embeddings_);  // tied
  lm_head_->act = recipe_.lm_head_act;
}

int64_t LlamaModel::weight_bytes_per_token() const {
  int64_t b = lm_head_->weight->bytes + static_cast<int64_t>(output_norm_.size()) * 4 + tok_embeddings_.row_bytes();
  for (const auto& layer : layers_) {
    b += static_cast<int64_t>(layer->attn_norm.size() + layer->ffn_norm.size()) * 4;
    for (const Linear& l : layer->linears) b += l.weight->bytes + static_cast<int64_t>(l.bias.size()) * 4;
  }
  return b;
}

KvCacheSpec LlamaModel::kv_spec(int64_t n_layers, int64_t max_tokens) const {
  KvCacheSpec s;
  s.n_layers = n_layers;
  s.n_kv_heads = config_.n_kv_heads;
  s.head_dim = config_.head_dim;
  s.capacity = max_tokens;
  s.k = recipe_.k_cache;
  s.v = recipe_.v_cache;
  s.intact_kv = recipe_.intact_kv;
  return s;
}

KvCache LlamaModel::make_cache(int64_t max_tokens) const {
  if (max_tokens <= 0) fail("KV cache size must be positive, got {}", max_tokens);
  return KvCache(backend_->make_kv_storage(kv_spec(config_.n_layers, max_tokens)));
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
  for (int64_t li = 0; li < c.n_layers; ++li) layer_forward(li, x.data(), n, pos0, cache.storage(), li);
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
  for (int64_t t = 0; t < n; ++t) tok_embeddings_.dequantize_rows(tokens[t], 1, x + t * c.hidden);
}

void LlamaModel::run_layer(int layer, float* x, int64_t n) const {
  if (layer < 0 || layer >= config_.n_layers)
    fail("run_layer: layer {} out of range (model has {} layers)", layer, config_.n_layers);
  if (n <= 0) fail("run_layer: no tokens to run");
  const std::unique_ptr<KvStorage> cache = backend_->make_kv_storage(kv_spec(1, n));
  layer_forward(layer, x, n, 0, *cache, 0);
}

void LlamaModel::layer_forward(int64_t li, float* x, int64_t n, int64_t pos0, KvStorage& cache,
                               int64_t cache_layer) const {
  const LlamaConfig& c = config_;
  const int64_t H = c.hidden, hd = c.head_dim, nh = c.n_heads, nkv = c.n_kv_heads;
  const int64_t qd = c.q_dim(), kvd = c.kv_dim(), F = c.intermediate;
  // Activation buffers reused across layers and calls (per calling thread): fresh
  // vectors of a 512-token prompt were ~13 MB of new, zeroed pages per layer.
  // A hook that runs a model on this thread re-enters here: it gets buffers of its own.
  thread_local LayerScratch shared;
  thread_local bool in_use = false;
  LayerScratch own;
  LayerScratch& scratch = in_use ? own : shared;
  const bool owner = !in_use;
  in_use = true;
  struct Release {
    bool owner;
    ~Release() {
      if (owner) in_use = false;
    }
  } release{owner};
  auto& [h, q, k, v, att, tmp, gate, up] = scratch.sized(n * H, n * qd, n * kvd, n * F);
  const float attn_scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const Layer& L = *layers_[li];
  const int layer = static_cast<int>(li);
  // --- attention ---
  rmsnorm_rows(x, L.attn_norm.data(), h.data(), n, H, c.rms_eps);
  if (hook_) hook_(layer, LinearSlot::kQkv, h.data(), n, H);
  L.wq().run(*backend_, h.data(), n, q.data());
  L.wk().run(*backend_, h.data(), n, k.data());
  L.wv().run(*backend_, h.data(), n, v.data());
#pragma omp parallel for if (n > 1)
  for (int64_t t = 0; t < n; ++t) {
    apply_rope(q.data() + t * qd, nh, hd, pos0 + t, rope_inv_freq_);
    apply_rope(k.data() + t * kvd, nkv, hd, pos0 + t, rope_inv_freq_);
  }
  if (!recipe_.qk_rotation.is_identity()) {
    apply_online_rotation(recipe_.qk_rotation, q.data(), n * nh, hd);
    apply_online_rotation(recipe_.qk_rotation, k.data(), n * nkv, hd);
  }
  cache.append(cache_layer, pos0, n, k.data(), v.data());
  backend_->attention(q.data(), n, pos0, cache, cache_layer, {nh, nkv, hd}, attn_scale, att.data());
  if (hook_) {
    // Calibration sees o_proj's input in the basis its weights live in.
    std::vector<float> rotated = att;
    if (!recipe_.o_proj_input.is_identity()) apply_online_rotation(recipe_.o_proj_input, rotated.data(), n, qd);
    hook_(layer, LinearSlot::kO, rotated.data(), n, qd);
  }
  L.wo().run(*backend_, att.data(), n, tmp.data());
  for (int64_t i = 0; i < n * H; ++i) x[i] += tmp[i];

  // --- SwiGLU MLP ---
  rmsnorm_rows(x, L.ffn_norm.data(), h.data(), n, H, c.rms_eps);
  if (hook_) hook_(layer, LinearSlot::kGateUp, h.data(), n, H);
  L.w_gate().run(*backend_, h.data(), n, gate.data());
  L.w_up().run(*backend_, h.data(), n, up.data());
#pragma omp parallel for if (n > 1)  // one token: not worth waking the threads
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
  L.w_down().run(*backend_, gate.data(), n, tmp.data());
  for (int64_t i = 0; i < n * H; ++i) x[i] += tmp[i];
}

}  // namespace quarot
