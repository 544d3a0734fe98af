// Any byte string must either parse or raise quarot::Error: no crash, no
// out-of-bounds read (ASan), no undefined behaviour (UBSan), no other exception.
#include <cstdint>

#include "common/error.h"
#include "fuzz_input_file.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = quarot::fuzz::write_input(data, size, ".safetensors");
  try {
    quarot::SafetensorsFile f(path);
    int64_t budget = 1 << 22;
    for (const auto& t : f.tensors()) {
      const int64_t n = quarot::Tensor::numel_of(t.shape);
      if (n > budget) continue;
      budget -= n;
      (void)f.read(t.name);
      (void)f.raw(t.name);
    }
  } catch (const quarot::Error&) {
  }
  return 0;
}
