#include "eval/model_session.h"

#include "common/error.h"
#include "model/loader.h"
#include "model/model_registry.h"
#include "quant/quantized_model.h"

namespace quarot {

std::unique_ptr<Tokenizer> tokenizer_from_quantized(const LoadedQuantizedModel& q, const std::string& path) {
  if (q.info.contains("tokenizer_config") && q.info["tokenizer_config"].is_string())
    return Tokenizer::from_hf_json_strings(q.tokenizer_json, q.info["tokenizer_config"].get<std::string>(), path);
  return Tokenizer::from_hf_json_string(q.tokenizer_json, path);
}

ModelSession open_model(const std::string& name_or_path, std::shared_ptr<const Backend> backend) {
  QUAROT_CHECK(backend != nullptr, "open_model: no backend given");
  ModelSession s;
  s.path = resolve_model_path(name_or_path);
  s.backend = std::move(backend);
  if (is_quantized_model_file(s.path)) {
    LoadedQuantizedModel q = load_quantized_model(s.path);
    s.description = "quarot quantized model";
    if (q.info.contains("scheme") && q.info["scheme"].is_string())
      s.description += " " + q.info["scheme"].get<std::string>();
    s.tokenizer = tokenizer_from_quantized(q, s.path);
    s.model = std::make_unique<LlamaModel>(q.weights, q.recipe, s.backend, q.encoded);
  } else {
    ModelWeights w = load_model_weights(s.path);
    s.description = "full precision (FP32 compute)";
    s.tokenizer = Tokenizer::load(s.path);
    s.model = std::make_unique<LlamaModel>(w, RuntimeRecipe{}, s.backend);
  }
  return s;
}

}  // namespace quarot
