#include "quant/pipeline/runtime_scheme.h"

#include <map>
#include <string>

#include "common/error.h"
#include "quant/quantized_model.h"

namespace quarot {

RetargetReport retarget_runtime_scheme(const std::string& source, const std::string& output,
                                       const QuantizeOptions& options) {
  if (!is_quantized_model_file(source))
    fail("{}: not a quarot quantized model (the weights to reuse must come from `quarot quantize`)", source);
  LoadedQuantizedModel m = load_quantized_model(source, /*keep_quantized=*/true);
  nlohmann::json info = m.info;  // format keys in it are rewritten by the save
  QuantizeOptions merged =
      info.contains("options") ? quantize_options_from_json(info["options"], source) : QuantizeOptions{};
  const std::string source_scheme = merged.scheme.name;
  if (merged.scheme.w_bits != options.scheme.w_bits)
    fail("{}: its weights are {}-bit ({}); scheme {} needs {}-bit weights, which takes a new quantization", source,
         merged.scheme.w_bits, source_scheme, options.scheme.name, options.scheme.w_bits);
  merged.take_runtime_options(options);
  merged.validate();
  merged.validate_for(m.weights.config, source);
  apply_quant_specs(merged, m.recipe);

  info["scheme"] = merged.scheme.name;
  info["options"] = to_json(merged);
  info["weights_from"] = {{"path", source}, {"scheme", source_scheme}};
  if (info.contains("report") && info["report"].is_object()) info["report"]["scheme"] = merged.scheme.name;
  // Codebook (CLAQ) linears are written as they are stored; `weights` also holds them
  // dequantized (keep_quantized), which the save skips for names given here.
  std::map<std::string, WeightEncoding> codebooks;
  for (const auto& [name, e] : m.encoded)
    if (e.kind == WeightKind::kCodebook) codebooks.emplace(name, e);
  save_quantized_model(output, m.weights, m.qweights, m.recipe, info, m.tokenizer_json, {}, codebooks);
  return {source_scheme, merged.scheme.name, info["options"]};
}

}  // namespace quarot
