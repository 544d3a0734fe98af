#pragma once
// The Llama-family decoder at run time: batched prefill and incremental decode
// with a KV cache. Every numeric step runs on a Backend (kernels/backend.h), whose
// memory holds the weights and activations; the model keeps the graph, the shapes
// and the bookkeeping. Rotations and quantization come from the RuntimeRecipe.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/weight_encoding.h"
#include "model/kv_cache.h"
#include "model/linear_slots.h"
#include "model/runtime_recipe.h"
#include "model/weights.h"

namespace quarot {

// Weights given in encoded form, by name ("tok_embeddings", "lm_head",
// "layers.<i>.<field>"): they replace the FP tensor of that name, which may be empty.
using WeightEncodings = std::map<std::string, WeightEncoding>;

// Called with the exact input rows (after online rotation, before activation
// quantization) that a linear layer receives: used to collect GPTQ Hessians.
using ActivationHook = std::function<void(int layer, LinearSlot slot, const float* x, int64_t n, int64_t dim)>;

class LlamaModel {
 public:
  // Keeps its own copy of the weights packed for the backend; `weights` may be
  // dropped afterwards. Encoded weights are handed to Backend::pack as they are
  // (the backend may keep referring to their owner, e.g. a mapped file); an encoded
  // "tok_embeddings" is packed for row lookups (Backend::pack_embedding).
  LlamaModel(const ModelWeights& weights, RuntimeRecipe recipe, std::shared_ptr<const Backend> backend,
             const WeightEncodings& encoded = {});

  static constexpr int64_t kStepRows = 16;

  const LlamaConfig& config() const { return config_; }
  const RuntimeRecipe& recipe() const { return recipe_; }
  const Backend& backend() const { return *backend_; }
  // Bytes of weights one decoded token reads: every packed linear (as the backend
  // stores it), the norms and one embedding row.
  int64_t weight_bytes_per_token() const;

  // A cache for up to max_tokens positions, laid out by the backend as the recipe says.
  KvCache make_cache(int64_t max_tokens) const;

  // Runs n tokens at positions cache.size() .. cache.size()+n-1 and appends their K/V.
  // logits: [n, vocab] when all_logits, else [1, vocab] for the last token only.
  // On a device backend (host_memory() false) a forward of at most kStepRows tokens
  // keeps its buffers with the cache (KvCache::sequence_state) and runs through
  // Backend::run_step, so the backend may replay a recorded step (CUDA graphs).
  void forward(const int32_t* tokens, int64_t n, KvCache& cache, std::vector<float>& logits,
               bool all_logits) const;

  // Observes the inputs of every linear layer during forward() (calibration).
  void set_activation_hook(ActivationHook hook) { hook_ = std::move(hook); }

  // Layer-by-layer execution, for calibration that keeps the hidden states of many
  // windows between layers (GPTQ quantizes layer i on the outputs of the already
  // quantized layers < i, so a full forward per layer would cost O(layers^2)).
  // embed(): x[n, hidden] = token embeddings. run_layer(): applies decoder layer
  // `layer` in place to one whole sequence x[n, hidden] at positions 0..n-1, with a
  // private cache; the activation hook sees its linear inputs as in forward().
  // x is host memory (copied to and from the backend where its memory differs).
  void embed(const int32_t* tokens, int64_t n, float* x) const;
  void run_layer(int layer, float* x, int64_t n) const;

 private:
  struct Linear;
  struct Layer;
  struct Workspace;
  struct StepState;
  struct StepSlot;
  // The persistent buffers (and recording slot) of n-token forwards on `cache`.
  StepSlot& step_slot(KvCache& cache, int64_t n, bool all_logits) const;
  // One decoder layer over x[n, hidden] (backend memory) in place at positions
  // pos0.., appending K/V to `cache` under index cache_layer (== li in forward(), 0
  // for run_layer()); `ws` holds the intermediates of n rows.
  void layer_forward(int64_t li, float* x, int64_t n, int64_t pos0, KvStorage& cache, int64_t cache_layer,
                     const Workspace& ws) const;
  // Passes rows x[n, dim] of backend memory to the activation hook (as host memory).
  void call_hook(int layer, LinearSlot slot, const float* x, int64_t n, int64_t dim) const;
  KvCacheSpec kv_spec(int64_t n_layers, int64_t max_tokens) const;
  LlamaConfig config_;
  RuntimeRecipe recipe_;
  std::shared_ptr<const Backend> backend_;
  std::shared_ptr<const PackedEmbedding> tok_embeddings_;
  BackendBuffer output_norm_;
  std::vector<std::shared_ptr<Layer>> layers_;
  std::shared_ptr<Linear> lm_head_;
  BackendBuffer rope_inv_freq_;
  ActivationHook hook_;
  uint64_t id_;  // unique per model in the process: tells a cache's StepState whose it is
};

}  // namespace quarot
