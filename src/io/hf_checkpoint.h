#pragma once
// A Hugging Face checkpoint directory: config.json plus either model.safetensors
// or shards listed in model.safetensors.index.json ("weight_map": name -> file).
// Presents all shards as one TensorSource; TensorInfo::file_index names the shard.
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "io/tensor_source.h"

namespace quarot {

class HfCheckpoint : public TensorSource {
 public:
  explicit HfCheckpoint(const std::string& dir);  // throws Error("<dir>: ...")
  const std::string& path() const override { return dir_; }
  const std::vector<TensorInfo>& tensors() const override { return tensors_; }
  Tensor read(const std::string& name) const override;

  const nlohmann::json& config() const { return config_; }
  const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return shards_; }
  // True when `dir` looks like a checkpoint (a directory holding config.json).
  static bool is_checkpoint_dir(const std::string& dir);

 private:
  std::string dir_;
  nlohmann::json config_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::vector<TensorInfo> tensors_;
};

// Parses a JSON file; throws Error("<path>: ...") when unreadable or invalid.
nlohmann::json read_json_file(const std::string& path);

}  // namespace quarot
