#pragma once
// Opens any model a user can name for inference: a registry name
// ("smollm2-135m"), a GGUF file, an HF checkpoint directory, or a quantized
// model written by `quarot quantize` (weights, recipe and tokenizer all from the file).
#include <memory>
#include <string>

#include "kernels/backend.h"
#include "model/llama_model.h"
#include "tokenizer/tokenizer.h"

namespace quarot {

struct ModelSession {
  std::string path;         // resolved path
  std::string description;  // e.g. "GGUF (FP)" or "quarot quantized W4A4KV4 (gptq, hadamard)"
  std::shared_ptr<const Backend> backend;
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<Tokenizer> tokenizer;
};

// The model runs on `backend` (e.g. kernels/cpu/cpu_backend.h make_cpu_backend).
// Quantized files hand their integer codes to it as stored (mapped, not copied).
ModelSession open_model(const std::string& name_or_path, std::shared_ptr<const Backend> backend);

struct LoadedQuantizedModel;
// The tokenizer a quantized file carries (tokenizer.json plus, when present, the
// tokenizer_config.json that holds EOS and the chat template).
std::unique_ptr<Tokenizer> tokenizer_from_quantized(const LoadedQuantizedModel& q, const std::string& path);

}  // namespace quarot
