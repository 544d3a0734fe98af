// The tokenizer a GGUF file's metadata describes (tokenizer.ggml.*): any byte string
// must give a working tokenizer or raise quarot::Error.
#include <cstdint>

#include "common/error.h"
#include "fuzz_input_file.h"
#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = quarot::fuzz::write_input(data, size, ".gguf");
  try {
    const quarot::GgufFile gguf(path);
    const auto tok = quarot::Tokenizer::from_gguf(gguf);
    for (const std::string& text : quarot::fuzz::probe_texts()) {
      try {
        (void)tok->decode(tok->encode(text, tok->add_bos_default()));
      } catch (const quarot::Error&) {
      }
    }
    (void)tok->chat_template();
    (void)quarot::Tokenizer::from_hf_json_strings(tok->to_hf_json(), tok->to_hf_config_json(), "copy");
  } catch (const quarot::Error&) {
  }
  return 0;
}
