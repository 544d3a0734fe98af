#include "model/linear_slots.h"

namespace quarot {

const char* linear_slot_name(LinearSlot s) {
  for (const LinearSlotInfo& i : kLinearSlots)
    if (i.slot == s) return i.name;
  return "?";
}

std::optional<LinearSlot> parse_layer_slot(std::string_view name) {
  for (const LinearSlotInfo& i : kLinearSlots)
    if (i.in_layer && name == i.name) return i.slot;
  return std::nullopt;
}

const std::string& layer_slot_names() {
  static const std::string names = [] {
    std::string s;
    for (const LinearSlotInfo& i : kLinearSlots)
      if (i.in_layer) s += (s.empty() ? "" : ", ") + std::string(i.name);
    return s;
  }();
  return names;
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
