// The GGUF-to-model loader (metadata -> LlamaConfig, tensor names and shapes, Q/K
// un-permutation, dequantization): any byte string must load or raise quarot::Error.
#include <cstdint>

#include "common/error.h"
#include "fuzz_input_file.h"
#include "model/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = quarot::fuzz::write_input(data, size, ".gguf");
  try {
    (void)quarot::inspect_model(path);
  } catch (const quarot::Error&) {
  }
  try {
    (void)quarot::load_model_weights(path);
  } catch (const quarot::Error&) {
  }
  return 0;
}
