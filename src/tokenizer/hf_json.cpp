// Tokenizer construction from HF tokenizer.json (+ tokenizer_config.json).
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace quarot {
namespace {

nlohmann::json parse_json(const std::string& text, const std::string& source) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON ({})", source, e.what());
  }
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open tokenizer file", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail("{}: read error", path);
  return ss.str();
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_hf_json_string(const std::string& json, const std::string& source) {
  return make_bpe_tokenizer(parse_json(json, source), TokenizerConfig{}, source);
}

std::unique_ptr<Tokenizer> Tokenizer::from_hf_json_strings(const std::string& tokenizer_json,
                                                           const std::string& config_json, const std::string& source) {
  TokenizerConfig config;
  if (!config_json.empty()) config = parse_tokenizer_config(parse_json(config_json, source), source);
  return make_bpe_tokenizer(parse_json(tokenizer_json, source), std::move(config), source);
}

std::unique_ptr<Tokenizer> Tokenizer::from_hf_json_file(const std::string& path) {
  const std::string text = read_text_file(path);
  TokenizerConfig config;
  const auto config_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  if (std::filesystem::is_regular_file(config_path, ec)) {
    const std::string config_source = config_path.string();
    config = parse_tokenizer_config(parse_json(read_text_file(config_source), config_source), config_source);
  }
  return make_bpe_tokenizer(parse_json(text, path), std::move(config), path);
}

}  // namespace quarot
