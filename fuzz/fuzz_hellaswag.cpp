// The HellaSwag task reader: plain text (6 lines per task) or, for inputs starting
// with the bzip2 magic "BZh", a .bz2 file. Anything must parse or raise quarot::Error,
// and parsed tasks must tokenize as lm-eval builds them.
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "eval/hellaswag.h"
#include "fuzz_input_file.h"
#include "fuzz_models.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto tok = quarot::Tokenizer::from_hf_json_strings(
      quarot::fuzz::byte_level_tokenizer_json().dump(), quarot::fuzz::tokenizer_config_json().dump(), "fuzz");
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::vector<quarot::HellaswagTask> tasks;
  try {
    if (bytes.substr(0, 3) == "BZh") {
      tasks = quarot::load_hellaswag(quarot::fuzz::write_file("tasks.txt.bz2", bytes));
    } else {
      tasks = quarot::parse_hellaswag(std::string(bytes), "fuzz");
      (void)quarot::load_hellaswag(quarot::fuzz::write_file("tasks.txt", bytes));
    }
  } catch (const quarot::Error&) {
  }
  for (size_t i = 0; i < tasks.size() && i < 8; ++i) {
    try {
      (void)quarot::tokenize_hellaswag_task(*tok, tasks[i]);
    } catch (const quarot::Error&) {
    }
  }
  return 0;
}
