#pragma once
// Tokenizers bit-identical to HF `tokenizers`: byte-level BPE (GPT-2 style, as in
// SmolLM2 / Llama 3 / Qwen2) and SentencePiece-style BPE with byte fallback (Llama 2).
// Built from GGUF metadata or an HF tokenizer.json.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace quarot {

class GgufFile;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  static std::unique_ptr<Tokenizer> from_gguf(const GgufFile& gguf);
  // HF tokenizer.json (path); BOS/EOS and add_bos_token from tokenizer_config.json
  // beside it when present.
  static std::unique_ptr<Tokenizer> from_hf_json_file(const std::string& path);
  static std::unique_ptr<Tokenizer> from_hf_json_string(const std::string& json, const std::string& source);
  // tokenizer.json text plus tokenizer_config.json text (may be empty): what
  // to_hf_json() / to_hf_config_json() write, read back identically.
  static std::unique_ptr<Tokenizer> from_hf_json_strings(const std::string& tokenizer_json,
                                                         const std::string& config_json, const std::string& source);
  // Loads from a model path: a .gguf file or an HF checkpoint directory.
  static std::unique_ptr<Tokenizer> load(const std::string& model_path);

  // Encodes exactly as HF's tokenizer(text) does, with BOS prepended when add_bos.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_bos) const = 0;
  // Concatenated bytes of the tokens (special tokens rendered as their text).
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  virtual std::string token_text(int32_t id) const = 0;  // decoded bytes of one token

  virtual int64_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;   // -1 if none
  virtual int32_t eos_id() const = 0;   // -1 if none
  virtual bool add_bos_default() const = 0;
  virtual std::string chat_template() const = 0;  // empty if none
  virtual std::string describe() const = 0;       // e.g. "byte-level BPE (gpt2 pre-tokenizer), 49152 tokens, 48900 merges"
  // Serializes to HF tokenizer.json so a quantized model file can carry its tokenizer.
  virtual std::string to_hf_json() const = 0;
  // tokenizer_config.json (bos_token, eos_token, add_bos_token, chat_template): what
  // tokenizer.json cannot hold (HF rejects unknown keys there).
  virtual std::string to_hf_config_json() const = 0;
};

}  // namespace quarot
