#include "model/weights.h"

#include <cmath>

#include "common/error.h"
#include "common/rng.h"
#include "model/linear_slots.h"

namespace quarot {

int64_t ModelWeights::parameter_count() const {
  int64_t n = tok_embeddings.numel() + output_norm.numel() + lm_head.numel();
  for (const auto& l : layers) {
    for (const Tensor* t : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.bq, &l.bk, &l.bv, &l.ffn_norm,
                            &l.w_gate, &l.w_up, &l.w_down})
      n += t->numel();
  }
  return n;
}

namespace {
void check_tensor(const std::string& source, const std::string& name, const Tensor& t,
                  std::vector<int64_t> want) {
  if (t.shape != want) {
    Tensor w(std::vector<int64_t>{});
    w.shape = want;
    fail("{}: tensor {} has shape {}, expected {}", source, name, t.shape_str(), w.shape_str());
  }
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (!std::isfinite(t.data[i])) fail("{}: tensor {} holds a non-finite value ({}) at index {}", source, name, t.data[i], i);
  }
}
}  // namespace

void ModelWeights::validate(const std::string& source, const std::set<std::string>& supplied_elsewhere) const {
  const LlamaConfig& c = config;
  c.validate(source);
  auto check = [&](const std::string& key, const std::string& label, const Tensor& t, std::vector<int64_t> want) {
    if (t.empty() && supplied_elsewhere.count(key)) return;
    check_tensor(source, label, t, std::move(want));
  };
  check("tok_embeddings", "token embeddings", tok_embeddings, {c.vocab_size, c.hidden});
  check_tensor(source, "output norm", output_norm, {c.hidden});
  if (!lm_head.empty()) check_tensor(source, "lm_head", lm_head, {c.vocab_size, c.hidden});
  if (static_cast<int64_t>(layers.size()) != c.n_layers)
    fail("{}: found {} layers, config says {}", source, layers.size(), c.n_layers);
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerWeights& l = layers[i];
    const std::string p = "layer " + std::to_string(i) + " ";
    check_tensor(source, p + "attn_norm", l.attn_norm, {c.hidden});
    check_tensor(source, p + "ffn_norm", l.ffn_norm, {c.hidden});
    for (const LayerLinear& lin : kLayerLinears) {
      check(layer_linear_name(static_cast<int64_t>(i), lin), p + lin.hf_name, l.*lin.weight,
            {lin.rows(c), lin.cols(c)});
      if (c.qkv_bias && lin.bias != nullptr)
        check_tensor(source, p + lin.hf_name + " bias", l.*lin.bias, {lin.rows(c)});
    }
  }
}

LlamaConfig tiny_test_config() {
  LlamaConfig c;
  c.name = "tiny-test";
  c.vocab_size = 256;
  c.hidden = 64;
  c.intermediate = 160;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 16;
  c.max_context = 256;
  c.rms_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.tied_embeddings = true;
  c.bos_id = 1;
  c.eos_id = 2;
  return c;
}

ModelWeights make_synthetic_model(const LlamaConfig& config, uint64_t seed) {
  Rng rng(seed);
  const LlamaConfig& c = config;
  auto normal = [&](std::vector<int64_t> shape, float stddev) {
    Tensor t(std::move(shape));
    for (float& v : t.data) v = static_cast<float>(rng.normal() * stddev);
    return t;
  };
  auto norm = [&](int64_t n) {
    Tensor t({n});
    for (float& v : t.data) v = 1.0f + static_cast<float>(rng.normal() * 0.1);
    return t;
  };
  ModelWeights w;
  w.config = c;
  w.tok_embeddings = normal({c.vocab_size, c.hidden}, 0.02f);
  // Outlier channels: a few residual dimensions carry much larger values.
  for (int64_t ch : {int64_t{3}, c.hidden / 2 + 1}) {
    if (ch >= c.hidden) continue;
    for (int64_t r = 0; r < c.vocab_size; ++r) w.tok_embeddings.at(r, ch) *= 25.0f;
  }
  for (int64_t i = 0; i < c.n_layers; ++i) {
    LayerWeights l;
    l.attn_norm = norm(c.hidden);
    l.wq = normal({c.q_dim(), c.hidden}, 0.02f * 4);
    l.wk = normal({c.kv_dim(), c.hidden}, 0.02f * 4);
    l.wv = normal({c.kv_dim(), c.hidden}, 0.02f * 4);
    l.wo = normal({c.hidden, c.q_dim()}, 0.02f * 4);
    if (c.qkv_bias) {
      l.bq = normal({c.q_dim()}, 0.02f);
      l.bk = normal({c.kv_dim()}, 0.02f);
      l.bv = normal({c.kv_dim()}, 0.02f);
    }
    l.ffn_norm = norm(c.hidden);
    l.w_gate = normal({c.intermediate, c.hidden}, 0.02f * 4);
    l.w_up = normal({c.intermediate, c.hidden}, 0.02f * 4);
    l.w_down = normal({c.hidden, c.intermediate}, 0.02f * 4);
    w.layers.push_back(std::move(l));
  }
  w.output_norm = norm(c.hidden);
  if (!c.tied_embeddings) w.lm_head = normal({c.vocab_size, c.hidden}, 0.02f);
  return w;
}

}  // namespace quarot
