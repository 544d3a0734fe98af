#include "model/llama_model.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <set>

#include "common/error.h"
#include "model/rope.h"

namespace quarot {

struct LlamaModel::Linear {
  std::unique_ptr<PackedWeight> weight;
  BackendBuffer bias;
  const OnlineRotation* rotation = nullptr;
  ActQuantSpec act;
  const char* name = nullptr;  // "q_proj", ..., "lm_head"

  LinearOp op() const {
    LinearOp o;
    o.weight = weight.get();
    o.bias = bias.empty() ? nullptr : bias.data();
    o.input_rotation = (rotation != nullptr && !rotation->is_identity()) ? rotation : nullptr;
    o.act = act;
    o.name = name;
    return o;
  }
  void run(const Backend& backend, const float* x, int64_t n, float* y) const { backend.linear(op(), x, n, y); }
  // residual += this product, the add fused into the product (LinearOp::accumulate).
  void run_into_residual(const Backend& backend, const float* x, int64_t n, float* residual) const {
    LinearOp o = op();
    o.accumulate = true;
    backend.linear(o, x, n, residual);
  }
};

struct LlamaModel::Layer {
  BackendBuffer attn_norm, ffn_norm;
  std::array<Linear, kLayerLinearCount> linears;  // in kLayerLinears order
  const Linear& wq() const { return linears[0]; }
  const Linear& wk() const { return linears[1]; }
  const Linear& wv() const { return linears[2]; }
  const Linear& wo() const { return linears[3]; }
  const Linear& w_gate() const { return linears[4]; }
  const Linear& w_up() const { return linears[5]; }
  const Linear& w_down() const { return linears[6]; }
};

// The intermediates of one decoder layer over n rows, in backend memory; allocated
// once per forward() and reused by every layer.
struct LlamaModel::Workspace {
  BackendBuffer h, q, k, v, att, gate, up;
  Workspace(const Backend& b, const LlamaConfig& c, int64_t n)
      : h(b.alloc(n * c.hidden)),
        q(b.alloc(n * c.q_dim())),
        k(b.alloc(n * c.kv_dim())),
        v(b.alloc(n * c.kv_dim())),
        att(b.alloc(n * c.q_dim())),
        gate(b.alloc(n * c.intermediate)),
        up(b.alloc(n * c.intermediate)) {}
};

// One shape of small forward on one cache: its buffers stay put between calls, so a
// backend can record the step once (run_step) and replay it.
struct LlamaModel::StepSlot {
  int64_t n = 0;
  bool all_logits = false;
  BackendBuffer x, out;
  std::unique_ptr<Workspace> ws;
  std::unique_ptr<StepGraph> graph;
};

// What a model keeps with a cache (KvCache::sequence_state): a few StepSlots.
struct LlamaModel::StepState final : SequenceState {
  uint64_t model_id = 0;
  std::vector<std::unique_ptr<StepSlot>> slots;  // most recently used first
};

namespace {

// LlamaModel::id_ values.
std::atomic<uint64_t> g_next_model_id{1};

// Keeps a copy of an FP tensor alive behind an encoding.
WeightEncoding owned_f32(const Tensor& t) {
  auto data = std::make_shared<std::vector<float>>(t.data);
  return f32_weight(data->data(), t.shape[0], t.shape[1], data);
}

BackendBuffer upload_vector(const Backend& backend, const std::vector<float>& v) {
  return backend.upload(v.data(), static_cast<int64_t>(v.size()));
}

}  // namespace

LlamaModel::LlamaModel(const ModelWeights& w, RuntimeRecipe recipe, std::shared_ptr<const Backend> backend,
                       const WeightEncodings& encoded)
    : config_(w.config), recipe_(std::move(recipe)), backend_(std::move(backend)), id_(g_next_model_id++) {
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
  const WeightEncoding tok_embeddings = encoding_of("tok_embeddings", w.tok_embeddings, c.vocab_size, c.hidden);
  tok_embeddings_ = backend_->pack_embedding(tok_embeddings);
  output_norm_ = upload_vector(*backend_, w.output_norm.data);
  rope_inv_freq_ = upload_vector(*backend_, rope_inverse_frequencies(c));
  if (!recipe_.qk_rotation.is_identity() && recipe_.qk_rotation.size() != c.head_dim)
    fail("recipe: q/k rotation of size {} does not match head_dim {}", recipe_.qk_rotation.size(), c.head_dim);
  if (!recipe_.o_proj_input.is_identity() && recipe_.o_proj_input.size() != c.q_dim())
    fail("recipe: o_proj input rotation of size {} does not match {}", recipe_.o_proj_input.size(), c.q_dim());
  if (!recipe_.down_proj_input.is_identity() && recipe_.down_proj_input.size() != c.intermediate)
    fail("recipe: down_proj input rotation of size {} does not match {}", recipe_.down_proj_input.size(),
         c.intermediate);
  if (recipe_.act_overrides.count(LinearSlot::kLmHead))
    fail("recipe: activation override for lm_head (its input has its own spec; overrides: qkv, o, gate_up, down)");

  auto input_rotation = [&](LinearSlot slot) -> const OnlineRotation* {
    if (slot == LinearSlot::kO) return &recipe_.o_proj_input;
    if (slot == LinearSlot::kDown) return &recipe_.down_proj_input;
    return nullptr;
  };
  for (int64_t li = 0; li < c.n_layers; ++li) {
    const LayerWeights& lw = w.layers[li];
    auto layer = std::make_shared<Layer>();
    layer->attn_norm = upload_vector(*backend_, lw.attn_norm.data);
    layer->ffn_norm = upload_vector(*backend_, lw.ffn_norm.data);
    for (int i = 0; i < kLayerLinearCount; ++i) {
      const LayerLinear& d = kLayerLinears[i];
      Linear& l = layer->linears[i];
      const WeightEncoding e = encoding_of(layer_linear_name(li, d), lw.*d.weight, d.rows(c), d.cols(c));
      l.weight = backend_->pack(e);
      if (d.bias != nullptr && !(lw.*d.bias).empty()) l.bias = upload_vector(*backend_, (lw.*d.bias).data);
      l.rotation = input_rotation(d.slot);
      l.act = recipe_.act_for(d.slot);
      l.name = d.hf_name;
    }
    layers_.push_back(std::move(layer));
  }
  lm_head_ = std::make_shared<Linear>();
  lm_head_->name = "lm_head";
  if (encoded.count("lm_head"))
    lm_head_->weight = backend_->pack(encoding_of("lm_head", w.lm_head, c.vocab_size, c.hidden));
  else if (!w.lm_head.empty())
    lm_head_->weight = backend_->pack(w.lm_head);
  else
    lm_head_->weight = backend_->pack(tok_embeddings);  // tied
  lm_head_->act = recipe_.lm_head_act;
}

int64_t LlamaModel::weight_bytes_per_token() const {
  int64_t b = lm_head_->weight->bytes + output_norm_.size() * 4 + tok_embeddings_->row_bytes;
  for (const auto& layer : layers_) {
    b += (layer->attn_norm.size() + layer->ffn_norm.size()) * 4;
    for (const Linear& l : layer->linears) b += l.weight->bytes + l.bias.size() * 4;
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
  const Backend& be = *backend_;
  const int64_t H = c.hidden;
  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t rows = n - first;
  if (!be.host_memory() && !hook_ && n <= kStepRows) {
    // The same queued ops on the same buffers at every call but for pos0 and the
    // token ids: what Backend::run_step may record and replay.
    StepSlot& s = step_slot(cache, n, all_logits);
    be.run_step(s.graph.get(), tokens, n, pos0, [&] {
      be.embed(*tok_embeddings_, tokens, n, s.x.data());
      for (int64_t li = 0; li < c.n_layers; ++li)
        layer_forward(li, s.x.data(), n, pos0, cache.storage(), li, *s.ws);
      be.rmsnorm(s.x.data() + first * H, output_norm_.data(), rows, H, c.rms_eps, s.ws->h.data());
      lm_head_->run(be, s.ws->h.data(), rows, s.out.data());
    });
    cache.advance(n);
    logits.resize(rows * c.vocab_size);
    be.download(s.out.data(), rows * c.vocab_size, logits.data());
    return;
  }
  const BackendBuffer x = be.alloc(n * H);
  const Workspace ws(be, c, n);
  be.embed(*tok_embeddings_, tokens, n, x.data());
  for (int64_t li = 0; li < c.n_layers; ++li) layer_forward(li, x.data(), n, pos0, cache.storage(), li, ws);
  cache.advance(n);

  be.rmsnorm(x.data() + first * H, output_norm_.data(), rows, H, c.rms_eps, ws.h.data());
  if (hook_) call_hook(static_cast<int>(c.n_layers), LinearSlot::kLmHead, ws.h.data(), rows, H);
  logits.resize(rows * c.vocab_size);
  if (be.host_memory()) {
    lm_head_->run(be, ws.h.data(), rows, logits.data());
  } else {
    const BackendBuffer out = be.alloc(rows * c.vocab_size);
    lm_head_->run(be, ws.h.data(), rows, out.data());
    be.download(out.data(), rows * c.vocab_size, logits.data());
  }
}

LlamaModel::StepSlot& LlamaModel::step_slot(KvCache& cache, int64_t n, bool all_logits) const {
  constexpr size_t kMaxSlots = 4;  // decode plus a few small-batch shapes
  auto* state = dynamic_cast<StepState*>(cache.sequence_state());
  if (state == nullptr || state->model_id != id_) {
    auto fresh = std::make_unique<StepState>();
    fresh->model_id = id_;
    state = fresh.get();
    cache.set_sequence_state(std::move(fresh));
  }
  auto& slots = state->slots;
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i]->n == n && slots[i]->all_logits == all_logits) {
      std::rotate(slots.begin(), slots.begin() + static_cast<std::ptrdiff_t>(i),
                  slots.begin() + static_cast<std::ptrdiff_t>(i) + 1);
      return *slots.front();
    }
  }
  if (slots.size() == kMaxSlots) slots.pop_back();
  const Backend& be = *backend_;
  auto slot = std::make_unique<StepSlot>();
  slot->n = n;
  slot->all_logits = all_logits;
  slot->x = be.alloc(n * config_.hidden);
  slot->out = be.alloc((all_logits ? n : 1) * config_.vocab_size);
  slot->ws = std::make_unique<Workspace>(be, config_, n);
  slot->graph = be.make_step_graph();
  slots.insert(slots.begin(), std::move(slot));
  return *slots.front();
}

void LlamaModel::embed(const int32_t* tokens, int64_t n, float* x) const {
  const LlamaConfig& c = config_;
  for (int64_t t = 0; t < n; ++t) {
    if (tokens[t] < 0 || tokens[t] >= c.vocab_size)
      fail("token id {} at position {} is outside the vocabulary (size {})", tokens[t], t, c.vocab_size);
  }
  if (backend_->host_memory()) {
    backend_->embed(*tok_embeddings_, tokens, n, x);
    return;
  }
  const BackendBuffer out = backend_->alloc(n * c.hidden);
  backend_->embed(*tok_embeddings_, tokens, n, out.data());
  backend_->download(out.data(), n * c.hidden, x);
}

void LlamaModel::run_layer(int layer, float* x, int64_t n) const {
  if (layer < 0 || layer >= config_.n_layers)
    fail("run_layer: layer {} out of range (model has {} layers)", layer, config_.n_layers);
  if (n <= 0) fail("run_layer: no tokens to run");
  const Backend& be = *backend_;
  const std::unique_ptr<KvStorage> cache = be.make_kv_storage(kv_spec(1, n));
  const Workspace ws(be, config_, n);
  if (be.host_memory()) {
    layer_forward(layer, x, n, 0, *cache, 0, ws);
    return;
  }
  const int64_t count = n * config_.hidden;
  const BackendBuffer rows = be.upload(x, count);
  layer_forward(layer, rows.data(), n, 0, *cache, 0, ws);
  be.download(rows.data(), count, x);
}

void LlamaModel::call_hook(int layer, LinearSlot slot, const float* x, int64_t n, int64_t dim) const {
  if (backend_->host_memory()) {
    hook_(layer, slot, x, n, dim);
    return;
  }
  std::vector<float> host(n * dim);
  backend_->download(x, n * dim, host.data());
  hook_(layer, slot, host.data(), n, dim);
}

void LlamaModel::layer_forward(int64_t li, float* x, int64_t n, int64_t pos0, KvStorage& cache,
                               int64_t cache_layer, const Workspace& ws) const {
  const LlamaConfig& c = config_;
  const Backend& be = *backend_;
  const int64_t H = c.hidden, hd = c.head_dim, nh = c.n_heads, nkv = c.n_kv_heads;
  const int64_t qd = c.q_dim(), F = c.intermediate;
  float *h = ws.h.data(), *q = ws.q.data(), *k = ws.k.data(), *v = ws.v.data();
  float *att = ws.att.data(), *gate = ws.gate.data(), *up = ws.up.data();
  const float attn_scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const Layer& L = *layers_[li];
  const int layer = static_cast<int>(li);
  // RMSNorm, then the products that share its output (q/k/v, gate/up): without a hook
  // nothing else reads the normalized rows, so the backend may normalize, rotate and
  // quantize each row once, in one pass.
  auto norm_then_linears = [&](const BackendBuffer& norm, LinearSlot slot, const LinearOp* ops, int count,
                               float* const* ys) {
    if (!hook_) return be.rmsnorm_linears(x, norm.data(), H, c.rms_eps, ops, count, n, h, ys);
    be.rmsnorm(x, norm.data(), n, H, c.rms_eps, h);
    call_hook(layer, slot, h, n, H);
    be.linears(ops, count, h, n, ys);
  };
  // --- attention ---
  {
    const std::array<LinearOp, 3> ops{L.wq().op(), L.wk().op(), L.wv().op()};
    float* const ys[3] = {q, k, v};
    norm_then_linears(L.attn_norm, LinearSlot::kQkv, ops.data(), 3, ys);
  }
  be.rope_rotate_qk(q, k, n, {nh, nkv, hd}, pos0, rope_inv_freq_.data(), recipe_.qk_rotation);
  cache.append(cache_layer, pos0, n, k, v);
  be.attention(q, n, pos0, cache, cache_layer, {nh, nkv, hd}, attn_scale, att);
  if (hook_) {
    // Calibration sees o_proj's input in the basis its weights live in.
    const BackendBuffer rotated = be.alloc(n * qd);
    be.rotate(recipe_.o_proj_input, att, n, qd, rotated.data());
    call_hook(layer, LinearSlot::kO, rotated.data(), n, qd);
  }
  L.wo().run_into_residual(be, att, n, x);

  // --- SwiGLU MLP ---
  // Where the backend gates inside the gate/up products (their outputs never written),
  // down_proj reads the gated rows as a plain linear.
  if (!hook_ && be.rmsnorm_swiglu(x, L.ffn_norm.data(), H, c.rms_eps, L.w_gate().op(), L.w_up().op(), n, gate)) {
    L.w_down().run_into_residual(be, gate, n, x);
    return;
  }
  {
    const std::array<LinearOp, 2> ops{L.w_gate().op(), L.w_up().op()};
    float* const ys[2] = {gate, up};
    norm_then_linears(L.ffn_norm, LinearSlot::kGateUp, ops.data(), 2, ys);
  }
  if (hook_) {
    be.swiglu(gate, up, n * F, gate);
    const BackendBuffer rotated = be.alloc(n * F);
    be.rotate(recipe_.down_proj_input, gate, n, F, rotated.data());
    call_hook(layer, LinearSlot::kDown, rotated.data(), n, F);
    L.w_down().run_into_residual(be, gate, n, x);
  } else {
    // The backend may gate each row inside down_proj's activation quantization.
    LinearOp down = L.w_down().op();
    down.accumulate = true;
    be.swiglu_linear(down, gate, up, n, x);
  }
}

}  // namespace quarot
