// quarot's quantized model file (the file users exchange): any byte string must load
// or raise quarot::Error; is_quantized_model_file never throws. Codebook (CLAQ)
// linears that load also run through the lookup-table kernels, decode and prefill,
// so a size the loader failed to check shows up as an out-of-bounds read.
#include <cstdint>
#include <vector>

#include "common/error.h"
#include "fuzz_input_file.h"
#include "kernels/cpu/codebook_gemm.h"
#include "quant/quantized_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = quarot::fuzz::write_input(data, size, ".safetensors");
  (void)quarot::is_quantized_model_file(path);
  for (bool keep_quantized : {false, true}) {
    try {
      const quarot::LoadedQuantizedModel m = quarot::load_quantized_model(path, keep_quantized);
      for (const auto& [name, q] : m.qweights) (void)q.dequantize();
      for (const auto& [name, e] : m.encoded) {
        if (e.kind != quarot::WeightKind::kCodebook) continue;
        const quarot::CodebookGemmWeight w = quarot::pack_codebook_weight(e);
        for (int64_t n : {1, 9}) {
          const std::vector<float> x(n * e.cols, 0.5f);
          std::vector<float> y(n * e.rows);
          quarot::codebook_gemm(w, x.data(), n, nullptr, y.data(), quarot::best_isa());
          quarot::codebook_gemm(w, x.data(), n, nullptr, y.data(), quarot::Isa::kScalar);
        }
      }
    } catch (const quarot::Error&) {
    }
  }
  return 0;
}
