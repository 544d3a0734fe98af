#pragma once
// The one list of a decoder layer's linear layers. Everything that walks the
// linears (the model graph, the quantized file, the quantization pipeline,
// calibration hooks, activation overrides) derives from kLayerLinears instead of
// spelling the seven names again.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/config.h"
#include "model/weights.h"

namespace quarot {

// The input an activation quantizer sees: linears that share an input share a slot.
// The library keys everything per slot by this enum; the names below are for files,
// JSON and the command line only (parsed once, where the text comes in).
enum class LinearSlot { kQkv, kO, kGateUp, kDown, kLmHead };

struct LinearSlotInfo {
  LinearSlot slot;
  const char* name;  // "qkv", ...
  bool in_layer;     // an input inside a decoder layer (may get its own activation width)
};
inline constexpr std::array<LinearSlotInfo, 5> kLinearSlots = {{
    {LinearSlot::kQkv, "qkv", true},
    {LinearSlot::kO, "o", true},
    {LinearSlot::kGateUp, "gate_up", true},
    {LinearSlot::kDown, "down", true},
    {LinearSlot::kLmHead, "lm_head", false},
}};

const char* linear_slot_name(LinearSlot s);  // "qkv", "o", "gate_up", "down", "lm_head"
// The decoder-layer slot of that name ("qkv", "o", "gate_up", "down"); nullopt otherwise.
std::optional<LinearSlot> parse_layer_slot(std::string_view name);
// "qkv, o, gate_up, down", for messages.
const std::string& layer_slot_names();

struct LayerLinear {
  const char* field;     // file name part: "layers.<i>.<field>" ("wq", ...)
  const char* hf_name;   // PyTorch module name ("q_proj", ...), for messages
  LinearSlot slot;
  Tensor LayerWeights::*weight;
  Tensor LayerWeights::*bias;  // null when the linear never has a bias
  // [rows, cols] of the weight for a model of this config.
  int64_t (*rows)(const LlamaConfig&);
  int64_t (*cols)(const LlamaConfig&);
};

inline constexpr int kLayerLinearCount = 7;
extern const std::array<LayerLinear, kLayerLinearCount> kLayerLinears;

// "layers.<layer>.<field>"; "lm_head" for the output matrix.
std::string layer_linear_name(int64_t layer, const LayerLinear& l);

}  // namespace quarot
