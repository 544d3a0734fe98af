// The calibration text reader: a text file tokenized and cut into windows. The first
// three bytes choose the window count, length and seed; the rest is the file. Any
// input must give windows or raise quarot::Error.
#include <cstdint>
#include <string_view>

#include "common/error.h"
#include "fuzz_input_file.h"
#include "fuzz_models.h"
#include "quant/pipeline/calibration_data.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto tok = quarot::Tokenizer::from_hf_json_strings(
      quarot::fuzz::byte_level_tokenizer_json().dump(), quarot::fuzz::tokenizer_config_json().dump(), "fuzz");
  if (size < 3) return 0;
  const int64_t n_windows = data[0] % 9;    // 0 (an error) .. 8
  const int64_t seqlen = data[1] % 65;      // 0 (an error) .. 64
  const uint64_t seed = data[2];
  const std::string path = quarot::fuzz::write_file(
      "calib.txt", std::string_view(reinterpret_cast<const char*>(data) + 3, size - 3));
  try {
    const auto ids = quarot::load_calibration_tokens(path, *tok, false);
    const auto windows = quarot::sample_calibration_windows(ids, n_windows, seqlen, seed);
    for (const auto& w : windows)
      if (static_cast<int64_t>(w.size()) != seqlen) __builtin_trap();  // the documented contract
  } catch (const quarot::Error&) {
  }
  return 0;
}
