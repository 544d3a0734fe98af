#include "io/hf_checkpoint.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/error.h"

namespace quarot {

namespace fs = std::filesystem;

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path);
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail("{}: not valid JSON", path);
  return j;
}

bool HfCheckpoint::is_checkpoint_dir(const std::string& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::is_regular_file(fs::path(dir) / "config.json", ec);
}

HfCheckpoint::HfCheckpoint(const std::string& dir) : dir_(dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) fail("{}: not a directory", dir);
  const fs::path root(dir);
  if (!fs::is_regular_file(root / "config.json", ec)) fail("{}: no config.json (not a Hugging Face checkpoint)", dir);
  config_ = read_json_file((root / "config.json").string());
  if (!config_.is_object()) fail("{}: config.json is not a JSON object", (root / "config.json").string());

  const fs::path single = root / "model.safetensors";
  const fs::path index = root / "model.safetensors.index.json";
  std::vector<std::string> shard_names;
  std::map<std::string, std::string> weight_map;  // tensor -> shard file name
  if (fs::is_regular_file(index, ec)) {
    const nlohmann::json idx = read_json_file(index.string());
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
      fail("{}: no \"weight_map\" object", index.string());
    std::set<std::string> seen;
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
      if (!it.value().is_string()) fail("{}: weight_map entry for {} is not a file name", index.string(), it.key());
      const std::string file = it.value().get<std::string>();
      // Shards must sit beside the index: no absolute paths or parent references.
      if (file.empty() || file.find('/') != std::string::npos || file == "." || file == "..")
        fail("{}: weight_map names an invalid shard file '{}'", index.string(), file);
      weight_map[it.key()] = file;
      if (seen.insert(file).second) shard_names.push_back(file);
    }
  } else if (fs::is_regular_file(single, ec)) {
    shard_names.push_back("model.safetensors");
  } else {
    fail("{}: neither model.safetensors nor model.safetensors.index.json found", dir);
  }

  std::set<std::string> names;
  for (size_t i = 0; i < shard_names.size(); ++i) {
    shards_.push_back(std::make_unique<SafetensorsFile>((root / shard_names[i]).string()));
    for (TensorInfo t : shards_.back()->tensors()) {
      if (!weight_map.empty()) {
        auto it = weight_map.find(t.name);
        // Tensors the index does not assign to this shard are ignored, as HF does.
        if (it == weight_map.end() || it->second != shard_names[i]) continue;
      }
      if (!names.insert(t.name).second) fail("{}: tensor {} appears in more than one shard", dir, t.name);
      t.file_index = static_cast<int>(i);
      tensors_.push_back(std::move(t));
    }
  }
  for (const auto& [name, file] : weight_map) {
    if (!names.count(name)) fail("{}: index lists tensor {} in {}, but that shard lacks it", dir, name, file);
  }
}

Tensor HfCheckpoint::read(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (t == nullptr) fail("{}: tensor {} not found", dir_, name);
  return shards_[static_cast<size_t>(t->file_index)]->read(name);
}

}  // namespace quarot
