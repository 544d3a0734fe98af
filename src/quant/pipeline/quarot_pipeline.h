#pragma once
// The QuaRot quantization pass, end to end (docs/quarot.md):
//   copy FP weights -> fold RMSNorm scales -> rotate the residual stream and install
//   the online rotations (or only fold, with rotate "none") -> activation / KV-cache
//   quantizer specs in the recipe -> weights by RTN, or by GPTQ layer after layer on
//   the outputs of the already quantized layers.
// The result is what a quantized model file stores: the rotated weights (quantized
// linears hold their dequantized values, which is what the simulated runtime
// multiplies), the integer form of every quantized linear, and the runtime recipe.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/runtime_recipe.h"
#include "model/weights.h"
#include "quant/pipeline/rotation_step.h"
#include "quant/pipeline/seed_search.h"
#include "quant/codebook_matrix.h"
#include "quant/quantized_matrix.h"
#include "quant/scheme.h"

namespace quarot {

// The integer form of one decoder layer's linears (names as in LayerWeights).
struct QuantizedLayer {
  QuantizedMatrix wq, wk, wv, wo, w_gate, w_up, w_down;
};

struct QuantizeReport {
  std::string model;             // config name
  std::string scheme;            // e.g. "W4A4KV4"
  std::string weight_method;     // "rtn" | "gptq" | "claq" | "none" (weights kept FP)
  RotationSummary rotation;
  uint64_t seed = 0;             // the rotation seed used (the search's pick with seed_trials > 1)
  std::optional<SeedSearchResult> seed_search;
  RuntimeRecipe recipe;          // what the runtime will do
  int64_t head_dim = 0;          // for describing the KV groups (group 0 = head_dim)
  int64_t calib_windows = 0;     // GPTQ and CLAQ only
  // CLAQ only: the budget asked for and the storage of every codebook matrix together.
  double w_bits_budget = 0.0;
  double outlier_fraction = 0.0;
  std::optional<CodebookBits> codebook_bits;
  int64_t calib_seqlen = 0;
  double rotate_seconds = 0.0;
  double calibrate_seconds = 0.0;  // GPTQ: forwards + Hessians (inside quantize_seconds)
  double quantize_seconds = 0.0;   // weight quantization, calibration included
  double total_seconds = 0.0;
  nlohmann::json to_json() const;
  nlohmann::json claq_json() const;  // null unless CLAQ ran
  std::string to_text() const;   // multi-line human summary
};

struct QuantizationResult {
  ModelWeights weights;                 // rotated; quantized linears dequantized
  RuntimeRecipe recipe;
  std::vector<QuantizedLayer> layers;   // empty when the scheme keeps weights in full precision, or with CLAQ
  // CLAQ: every linear as per-column codebooks, keyed like quantized_weight_map ("layers.3.wq").
  std::map<std::string, CodebookMatrix> codebooks;
  std::optional<QuantizedMatrix> lm_head;    // only when options.lm_head_bits < 16 (RTN)
  std::optional<QuantizedMatrix> embedding;  // only when options.embed_bits < 16 (RTN, per row)
  QuantizeReport report;
};

// Runs the whole pass on a copy of `fp`. calib_windows (token windows, see
// quant/pipeline/calibration_data.h) are required for GPTQ and for a rotation seed
// search (options.seed_trials > 1), and otherwise ignored.
// Throws Error on invalid options for this model, missing calibration data, or
// token ids outside the vocabulary.
// Calibration (GPTQ/CLAQ Hessians, seed trials) runs the model on calibration_backend,
// which must compute the simulated quantized arithmetic (kernels/backend.h), e.g.
// make_cpu_backend({.simulate = true}): calibration is defined on it, not on integer kernels.
QuantizationResult quantize_model(const ModelWeights& fp, const QuantizeOptions& options,
                                  const std::vector<std::vector<int32_t>>& calib_windows,
                                  const std::shared_ptr<const Backend>& calibration_backend);

// The integer linears keyed as quant/quantized_model.h names them ("layers.3.wq", "lm_head").
std::map<std::string, QuantizedMatrix> quantized_weight_map(const QuantizationResult& result);

// Writes the result atomically as a quarot quantized model file, with the options,
// the report and the source path in its info and the tokenizer embedded.
void save_quantization_result(const std::string& path, const QuantizationResult& result,
                              const QuantizeOptions& options, const std::string& tokenizer_json,
                              const std::string& source_path, const std::string& tokenizer_config_json = "");

}  // namespace quarot
