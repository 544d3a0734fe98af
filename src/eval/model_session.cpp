#include "eval/model_session.h"

#include "common/error.h"
#include "model/loader.h"
#include "model/model_registry.h"
#include "quant/quantized_model.h"

namespace quarot {

ModelSession open_model(const std::string& name_or_path) {
  ModelSession s;
  s.path = resolve_model_path(name_or_path);
  s.backend = make_cpu_backend();
  if (is_quantized_model_file(s.path)) {
    LoadedQuantizedModel q = load_quantized_model(s.path);
    s.description = "quarot quantized model";
    if (q.info.contains("scheme") && q.info["scheme"].is_string())
      s.description += " " + q.info["scheme"].get<std::string>();
    s.tokenizer = Tokenizer::from_hf_json_string(q.tokenizer_json, s.path);
    s.model = std::make_unique<LlamaModel>(q.weights, q.recipe, s.backend);
  } else {
    ModelWeights w = load_model_weights(s.path);
    s.description = "full precision (FP32 compute)";
    s.tokenizer = Tokenizer::load(s.path);
    s.model = std::make_unique<LlamaModel>(w, RuntimeRecipe{}, s.backend);
  }
  return s;
}

}  // namespace quarot
