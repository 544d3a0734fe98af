#pragma once
// What `quarot inspect` prints for a quantized model file, for a person to read: what
// was quantized and how (scheme, weight method, bits and groups per linear kind,
// activation and KV-cache quantizers, rotation and its fallbacks, calibration) and
// where the bytes go (sizes by tensor kind, file size against the source model).
// The raw metadata, online rotation matrices included, is what `inspect --json` gives.
#include <nlohmann/json.hpp>

#include <string>

namespace quarot::cli {

// `meta` is the file's whole "quarot" metadata object (LoadedQuantizedModel::info).
// Missing or odd caller keys (options, rotation, report, source) are reported as
// unknown, never thrown on. Lines are "label        text\n", as the rest of inspect.
std::string quantized_file_summary(const std::string& path, const nlohmann::json& meta);

}  // namespace quarot::cli
