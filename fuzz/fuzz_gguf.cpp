// Any byte string must either parse or raise quarot::Error: no crash, no
// out-of-bounds read (ASan), no undefined behaviour (UBSan), no other exception.
#include <cstdint>

#include "common/error.h"
#include "fuzz_input_file.h"
#include "io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = quarot::fuzz::write_input(data, size, ".gguf");
  try {
    quarot::GgufFile f(path);
    for (const auto& [key, value] : f.metadata()) {
      (void)f.get_int_or(key, 0);  // may throw Error on type mismatch: fine
    }
  } catch (const quarot::Error&) {
  }
  try {
    quarot::GgufFile f(path);
    int64_t budget = 1 << 22;  // elements dequantized per input, to keep executions fast
    for (const auto& t : f.tensors()) {
      const int64_t n = quarot::Tensor::numel_of(t.shape);
      if (n > budget) continue;
      budget -= n;
      (void)f.read(t.name);
    }
    (void)f.get_string_or("general.architecture", "");
    (void)f.get_float_or("general.alignment", 0);
    if (f.has("tokenizer.ggml.tokens")) (void)f.get_string_array("tokenizer.ggml.tokens");
  } catch (const quarot::Error&) {
  }
  return 0;
}
