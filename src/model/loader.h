#pragma once
// Loads a full-precision model (GGUF file or Hugging Face checkpoint directory,
// or a registry name such as "smollm2-135m") into FP32 ModelWeights in HF layout.
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "model/weights.h"

namespace quarot {

class GgufFile;
class TensorSource;

// Dequantizes every tensor (multi-threaded), undoes llama.cpp's Q/K row permutation
// for llama-architecture GGUF files, and validates shapes and finiteness.
// Throws Error("<path>: ...") for anything missing, inconsistent or unsupported.
ModelWeights load_model_weights(const std::string& name_or_path);

// Hyper-parameters only, without reading tensor data.
LlamaConfig config_from_gguf(const GgufFile& gguf);
// `config_json` is config.json; `source` names it in errors. `tensors` (optional)
// supplies vocab size / tied-embedding facts the JSON may omit.
LlamaConfig config_from_hf(const nlohmann::json& config_json, const std::string& source,
                           const TensorSource* tensors);

// What `quarot inspect` prints.
struct ModelSummary {
  std::string path;          // resolved path
  std::string format;        // "GGUF v3", "safetensors (1 file)", ...
  std::string architecture;  // as the file names it: "llama", "LlamaForCausalLM", ...
  LlamaConfig config;
  std::map<std::string, int64_t> tensors_by_dtype;  // dtype name -> tensor count
  int64_t tensor_count = 0;
  int64_t parameter_count = 0;  // elements over all tensors in the file
  uint64_t file_bytes = 0;      // all files together
  uint64_t fp32_bytes = 0;      // memory for the weights once loaded as FP32
};
ModelSummary inspect_model(const std::string& name_or_path);

}  // namespace quarot
