// An HF checkpoint directory: config.json and model.safetensors.index.json (input
// split at kSplit) beside a fixed valid shard. Any pair must load or raise
// quarot::Error: config_from_hf's checks, the index's weight_map, the loader's
// name and shape checks.
#include <cstdint>
#include <filesystem>

#include "common/error.h"
#include "fuzz_input_file.h"
#include "fuzz_models.h"
#include "io/hf_checkpoint.h"
#include "model/loader.h"

namespace {

constexpr const char* kShard = "model-00001-of-00001.safetensors";

const std::string& checkpoint_dir() {
  static const std::string dir = [] {
    const std::string d = quarot::fuzz::scratch_dir() + "/ckpt";
    std::filesystem::create_directories(d);
    const auto w = quarot::make_synthetic_model(quarot::fuzz::micro_config(), 1);
    quarot::write_safetensors(d + "/" + kShard, quarot::fuzz::hf_entries(w), {{"format", "pt"}});
    return d;
  }();
  return dir;
}

void write(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (!bytes.empty()) std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& dir = checkpoint_dir();
  const auto parts = quarot::fuzz::split_input(data, size, 2);
  write(dir + "/config.json", parts[0]);
  // No index part: the single-file layout, where the loader looks for model.safetensors.
  std::error_code ec;
  std::filesystem::remove(dir + "/model.safetensors.index.json", ec);
  std::filesystem::remove(dir + "/model.safetensors", ec);
  if (parts[1].empty()) {
    std::filesystem::copy_file(dir + "/" + kShard, dir + "/model.safetensors", ec);
  } else {
    write(dir + "/model.safetensors.index.json", parts[1]);
  }
  try {
    const quarot::HfCheckpoint ckpt(dir);
    (void)quarot::config_from_hf(ckpt.config(), dir, &ckpt);
  } catch (const quarot::Error&) {
  }
  try {
    (void)quarot::load_model_weights(dir);
  } catch (const quarot::Error&) {
  }
  return 0;
}
