#include "model/linear_slots.h"

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

std::optional<LinearSlot> parse_layer_slot(std::string_view name) {
  for (LinearSlot s : {LinearSlot::kQkv, LinearSlot::kO, LinearSlot::kGateUp, LinearSlot::kDown})
    if (name == linear_slot_name(s)) return s;
  return std::nullopt;
}

namespace {
int64_t hidden(const LlamaConfig& c) { return c.hidden; }
int64_t q_dim(const LlamaConfig& c) { return c.q_dim(); }
int64_t kv_dim(const LlamaConfig& c) { return c.kv_dim(); }
int64_t ffn(const LlamaConfig& c) { return c.intermediate; }
}  // namespace

const std::array<LayerLinear, kLayerLinearCount> kLayerLinears = {{
    {"wq", "q_proj", LinearSlot::kQkv, &LayerWeights::wq, &LayerWeights::bq, q_dim, hidden},
    {"wk", "k_proj", LinearSlot::kQkv, &LayerWeights::wk, &LayerWeights::bk, kv_dim, hidden},
    {"wv", "v_proj", LinearSlot::kQkv, &LayerWeights::wv, &LayerWeights::bv, kv_dim, hidden},
    {"wo", "o_proj", LinearSlot::kO, &LayerWeights::wo, nullptr, hidden, q_dim},
    {"w_gate", "gate_proj", LinearSlot::kGateUp, &LayerWeights::w_gate, nullptr, ffn, hidden},
    {"w_up", "up_proj", LinearSlot::kGateUp, &LayerWeights::w_up, nullptr, ffn, hidden},
    {"w_down", "down_proj", LinearSlot::kDown, &LayerWeights::w_down, nullptr, hidden, ffn},
}};

std::string layer_linear_name(int64_t layer, const LayerLinear& l) {
  return "layers." + std::to_string(layer) + "." + l.field;
}

}  // namespace quarot
