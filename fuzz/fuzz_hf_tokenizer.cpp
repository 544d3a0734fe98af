// HF tokenizer.json + tokenizer_config.json (input split at kSplit): any pair must
// build a tokenizer or raise quarot::Error, and a built one must encode, decode and
// serialize any text without crashing.
#include <cstdint>

#include "common/error.h"
#include "fuzz_input_file.h"
#include "tokenizer/tokenizer.h"

namespace {

void exercise(const quarot::Tokenizer& tok) {
  for (const std::string& text : quarot::fuzz::probe_texts()) {
    try {
      const auto ids = tok.encode(text, tok.add_bos_default());
      (void)tok.decode(ids);
    } catch (const quarot::Error&) {
    }
  }
  for (int32_t id : {0, 1, tok.bos_id(), tok.eos_id(), static_cast<int32_t>(tok.vocab_size()) - 1}) {
    try {
      (void)tok.token_text(id);
    } catch (const quarot::Error&) {
    }
  }
  (void)tok.describe();
  const auto copy = quarot::Tokenizer::from_hf_json_strings(tok.to_hf_json(), tok.to_hf_config_json(), "copy");
  if (copy->to_hf_json() != tok.to_hf_json()) __builtin_trap();  // what we write must read back the same
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = quarot::fuzz::split_input(data, size, 2);
  try {
    exercise(*quarot::Tokenizer::from_hf_json_strings(parts[0], parts[1], "fuzz"));
  } catch (const quarot::Error&) {
  }
  // The file form reads tokenizer_config.json from beside tokenizer.json.
  const std::string path = quarot::fuzz::write_file("tokenizer.json", parts[0]);
  quarot::fuzz::write_file("tokenizer_config.json", parts[1]);
  try {
    (void)quarot::Tokenizer::from_hf_json_file(path);
  } catch (const quarot::Error&) {
  }
  return 0;
}
