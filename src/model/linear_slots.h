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
enum class LinearSlot { kQkv, kO, kGateUp, kDown, kLmHead };
const char* linear_slot_name(LinearSlot s);  // "qkv", "o", "gate_up", "down", "lm_head"
// The slot a decoder-layer input may be overridden for ("qkv", "o", "gate_up", "down").
std::optional<LinearSlot> parse_layer_slot(std::string_view name);

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
