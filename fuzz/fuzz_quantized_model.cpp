// quarot's quantized model file (the file users exchange): any byte string must load
// or raise quarot::Error; is_quantized_model_file never throws.
#include <cstdint>

#include "common/error.h"
#include "fuzz_input_file.h"
#include "quant/quantized_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = quarot::fuzz::write_input(data, size, ".safetensors");
  (void)quarot::is_quantized_model_file(path);
  for (bool keep_quantized : {false, true}) {
    try {
      const quarot::LoadedQuantizedModel m = quarot::load_quantized_model(path, keep_quantized);
      for (const auto& [name, q] : m.qweights) (void)q.dequantize();
    } catch (const quarot::Error&) {
    }
  }
  return 0;
}
