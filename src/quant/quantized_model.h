#pragma once
// quarot's quantized model file (docs/file-format.md): a safetensors container with
// the integer form of every quantized linear ("<name>.qweight" packed codes,
// "<name>.scales", "<name>.zeros" when asymmetric), the remaining tensors in FP, and
// metadata "quarot" (JSON: format version, model config, runtime recipe, per-tensor
// encodings, caller's info) plus "tokenizer.json" (the HF tokenizer, so the file runs
// on its own). Tensor names follow ModelWeights: "tok_embeddings", "output_norm",
// "lm_head", "layers.<i>.<field>" with field one of attn_norm, wq, wk, wv, wo, bq, bk,
// bv, ffn_norm, w_gate, w_up, w_down.
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/llama_model.h"
#include "model/runtime_recipe.h"
#include "model/weights.h"
#include "quant/quantized_matrix.h"

namespace quarot {

// The newest format version this build reads. A file is written with the lowest
// version that can express it: 1 without codebook (CLAQ) linears, 2 with them, 3 with
// 2- or 3-bit integer linears (stored densely, "bits-low-first").
inline constexpr int kQuantizedFormatVersion = 3;

struct QuantizedModelWriteOptions {
  bool fp16_tensors = false;   // store every FP tensor (norms and biases too) as F16
  bool fp16_embedding = true;  // store an FP embedding table as F16 (else F32)
  bool fp16_lm_head = true;    // store an FP (untied) lm_head as F16 (else F32)
};

// Writes atomically (nothing is left behind on failure). `weights` supplies every
// tensor not in `qweights`; keys of `qweights` must be linear names ("layers.3.wq",
// "lm_head") whose shapes match the config. `info` (an object) is stored in the
// metadata; by convention it holds "scheme" (string), "options", "rotation"
// {mode, seed, sizes, description} and "source" {path, sha256}.
// `codebook_weights` holds linears encoded as WeightKind::kCodebook (CLAQ), stored
// in their encoded form (docs/file-format.md, kind "codebook"); a name may appear in
// qweights or codebook_weights, not both. Throws Error naming `path` on inconsistent
// input (including an encoding that fails WeightEncoding::validate).
void save_quantized_model(const std::string& path, const ModelWeights& weights,
                          const std::map<std::string, QuantizedMatrix>& qweights, const RuntimeRecipe& recipe,
                          const nlohmann::json& info, const std::string& tokenizer_json,
                          const QuantizedModelWriteOptions& options = {},
                          const std::map<std::string, WeightEncoding>& codebook_weights = {});

struct LoadedQuantizedModel {
  // The FP tensors (norms, biases, FP32-stored matrices). Matrices held in
  // `encoded` are empty here unless loaded with keep_quantized.
  ModelWeights weights;
  // Integer and codebook linears and 16-bit matrices as stored, viewed in the mapped
  // file (the views keep it mapped): what LlamaModel hands to the backend.
  WeightEncodings encoded;
  RuntimeRecipe recipe;
  nlohmann::json info;   // the whole "quarot" metadata object (the caller's info keys included)
  std::string tokenizer_json;
  // Filled only with keep_quantized: the integer linears unpacked (and then every
  // encoded matrix, codebook ones included, is also dequantized into `weights`, for
  // re-quantizing tools).
  std::map<std::string, QuantizedMatrix> qweights;

  // `weights` with every encoded matrix dequantized to FP32 (the simulated model).
  ModelWeights dequantized_weights() const;
  int64_t parameter_count() const;  // FP tensors and encoded matrices together
};

// Throws Error("<path>: ...") on a newer format version, missing or misshapen
// tensors, corrupt packed data, non-finite or non-positive scales, unknown encodings,
// codebook tensors whose sizes, bit widths, centroids or outliers are inconsistent.
LoadedQuantizedModel load_quantized_model(const std::string& path, bool keep_quantized = false);

// True for a safetensors file carrying quarot metadata; false (never throws) otherwise.
bool is_quantized_model_file(const std::string& path);

// Names of every linear layer of a model with this config, in file order.
std::vector<std::string> linear_weight_names(const LlamaConfig& config);

// JSON forms stored in the metadata (also useful for reports).
nlohmann::json config_to_json(const LlamaConfig& c);
LlamaConfig config_from_json(const nlohmann::json& j, const std::string& source);
nlohmann::json recipe_to_json(const RuntimeRecipe& r);
RuntimeRecipe recipe_from_json(const nlohmann::json& j, const std::string& source);

}  // namespace quarot
