#pragma once
// The one Tokenizer implementation: an HF tokenizer.json pipeline (added tokens ->
// normalizer -> pre-tokenizer -> BPE -> decoder) restricted to the pieces BPE
// language models use. GGUF loading builds the same JSON, so both sources share
// one code path.
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>

#include "tokenizer/tokenizer.h"

namespace quarot {

// The parts of tokenizer_config.json the tokenizer needs.
struct TokenizerConfig {
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<bool> add_bos_token;
  std::string chat_template;
};

TokenizerConfig parse_tokenizer_config(const nlohmann::json& config, const std::string& source);
nlohmann::json tokenizer_config_to_json(const TokenizerConfig& config);

std::unique_ptr<Tokenizer> make_bpe_tokenizer(nlohmann::json tokenizer_json, TokenizerConfig config,
                                              const std::string& source);

}  // namespace quarot
