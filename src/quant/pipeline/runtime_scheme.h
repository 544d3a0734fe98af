#pragma once
// Re-targets a quantized model to another activation / KV-cache scheme while keeping
// its weights bit for bit. Activations and the KV cache are quantized at run time,
// and GPTQ calibrates with them off, so W4A16, W4A8KV4 and W4A4KV4 made with the same
// weight options, seed and calibration have identical weights: one calibration serves
// all of them (`quarot quantize --weights-from FILE`).
#include <string>

#include "quant/scheme.h"

namespace quarot {

struct RetargetReport {
  std::string source_scheme;
  std::string scheme;
  nlohmann::json options;  // the options the output records (weights: the source's)
};

// Reads `source` (a quarot quantized file), replaces its activation and KV specs by
// those of `options` (scheme.a_bits/k_bits/v_bits, a_clip, a_group, a_sym, kv_clip,
// kv_group, kv_sym, intact_kv) and writes `output` atomically. Integer linears and
// codebook (CLAQ) linears are written as the source stores them (a CLAQ W3A16 file
// becomes e.g. W3A16KV4 with the same codebooks: the KV cache does not depend on the
// weight encoding). Throws Error when the
// new scheme's weight width differs from the file's, or on any load/save error.
RetargetReport retarget_runtime_scheme(const std::string& source, const std::string& output,
                                       const QuantizeOptions& options);

}  // namespace quarot
