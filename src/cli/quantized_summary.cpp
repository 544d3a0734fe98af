#include "cli/quantized_summary.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <map>
#include <set>
#include <vector>

#include "io/safetensors.h"

namespace quarot::cli {
namespace {

using nlohmann::json;

// Caller keys are free-form JSON: read them without ever throwing.
const json& member(const json& j, const char* key) {
  static const json null_json;
  return j.is_object() && j.contains(key) ? j[key] : null_json;
}
std::string text_of(const json& j, const char* key, const std::string& fallback = "unknown") {
  const json& v = member(j, key);
  return v.is_string() ? v.get<std::string>() : fallback;
}
double number_of(const json& j, const char* key, double fallback = 0.0) {
  const json& v = member(j, key);
  return v.is_number() ? v.get<double>() : fallback;
}
bool flag_of(const json& j, const char* key, bool fallback = false) {
  const json& v = member(j, key);
  return v.is_boolean() ? v.get<bool>() : fallback;
}

std::string mib(double bytes) { return fmt::format("{:.1f} MiB", bytes / 1048576.0); }

// "4-bit symmetric, per token, clip 0.9" from an act/kv spec; "FP" when bits is 0 or 16.
std::string describe_quantizer(const json& spec, const char* unit_when_group0) {
  const int bits = static_cast<int>(number_of(spec, "bits"));
  if (bits <= 0 || bits >= 16) return "FP";
  const int64_t group = static_cast<int64_t>(number_of(spec, "group"));
  return fmt::format("{}-bit {}, {}, clip {:g}", bits, flag_of(spec, "symmetric") ? "symmetric" : "asymmetric",
                     group > 0 ? fmt::format("groups of {}", group) : std::string(unit_when_group0),
                     number_of(spec, "clip_ratio", 1.0));
}

// Linear field of a tensor name: "layers.3.wq.qweight" -> "wq", "lm_head.scales" -> "lm_head",
// "layers.0.w_up.cb_indices" -> "w_up".
std::string linear_field(const std::string& name) {
  std::string base = name;
  for (const char* part : {".qweight", ".scales", ".zeros", ".cb_bits", ".cb_centroids", ".cb_indices",
                           ".cb_outlier_row_ptr", ".cb_outlier_cols", ".cb_outlier_values"}) {
    const std::string p = part;
    if (base.size() > p.size() && base.compare(base.size() - p.size(), p.size(), p) == 0)
      base.resize(base.size() - p.size());
  }
  if (base.rfind("layers.", 0) == 0) {
    const size_t dot = base.find('.', 7);
    return dot == std::string::npos ? base : base.substr(dot + 1);
  }
  return base;
}

std::string tensor_kind(const std::string& field) {
  static const std::set<std::string> attention = {"wq", "wk", "wv", "wo", "bq", "bk", "bv"};
  static const std::set<std::string> mlp = {"w_gate", "w_up", "w_down"};
  if (attention.count(field)) return "attention";
  if (mlp.count(field)) return "mlp";
  if (field == "tok_embeddings") return "embeddings";
  if (field == "lm_head") return "lm_head";
  if (field == "attn_norm" || field == "ffn_norm" || field == "output_norm") return "norms";
  return "other";
}

std::string weights_line(const json& meta) {
  // Encodings per linear field, e.g. "4-bit symmetric, per output channel" -> {wq, wk, ...}.
  std::map<std::string, std::map<std::string, int>> by_field;
  const json& tensors = member(meta, "tensors");
  if (tensors.is_object()) {
    for (const auto& [name, t] : tensors.items()) {
      const int bits = static_cast<int>(number_of(t, "bits"));
      if (text_of(t, "kind", "int") == "codebook") {
        ++by_field[linear_field(name)][fmt::format("CLAQ codebooks, columns up to {}-bit", bits)];
        continue;
      }
      const int64_t group = static_cast<int64_t>(number_of(t, "group"));
      const std::string enc =
          fmt::format("{}-bit {}, {}", bits, flag_of(t, "symmetric") ? "symmetric" : "asymmetric",
                      group > 0 ? fmt::format("groups of {}", group) : std::string("per output channel"));
      ++by_field[linear_field(name)][enc];
    }
  }
  if (by_field.empty()) return "all FP (no quantized linears)";
  // Fields that share one encoding print together, in model order.
  const std::vector<std::string> order = {"wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down", "lm_head"};
  std::map<std::string, std::vector<std::string>> fields_by_enc;
  std::vector<std::string> enc_order;
  for (const std::string& f : order) {
    const auto it = by_field.find(f);
    if (it == by_field.end()) continue;
    for (const auto& [enc, count] : it->second) {
      const std::string key = it->second.size() > 1 ? fmt::format("{} (x{})", enc, count) : enc;
      if (!fields_by_enc.count(key)) enc_order.push_back(key);
      fields_by_enc[key].push_back(f);
    }
  }
  std::string s;
  for (const std::string& enc : enc_order) {
    if (!s.empty()) s += "\n             ";
    s += fmt::format("{}: {}", fmt::join(fields_by_enc[enc], " "), enc);
  }
  if (!by_field.count("lm_head")) s += "\n             lm_head: FP";
  return s;
}

// "30 x 7 linears, 2.131 bits/weight (indices, tables, outliers), 0.50% outliers"; empty without codebooks.
std::string codebook_line(const json& meta) {
  const json& tensors = member(meta, "tensors");
  if (!tensors.is_object()) return "";
  int64_t count = 0;
  double weights = 0.0, bits = 0.0, outliers = 0.0;
  for (const auto& [name, t] : tensors.items()) {
    if (text_of(t, "kind", "int") != "codebook") continue;
    const json& shape = member(t, "shape");
    if (!shape.is_array() || shape.size() != 2 || !shape[0].is_number() || !shape[1].is_number()) continue;
    const double n = shape[0].get<double>() * shape[1].get<double>();
    ++count;
    weights += n;
    bits += n * number_of(t, "effective_bits");
    outliers += number_of(t, "outliers");
  }
  if (count == 0 || weights <= 0.0) return "";
  return fmt::format("{} linears, {:.3f} bits/weight (indices, tables, outliers), {:.2f}% outliers", count,
                     bits / weights, 100.0 * outliers / weights);
}

}  // namespace

std::string quantized_file_summary(const std::string& path, const json& meta) {
  std::string s;
  const json& options = member(meta, "options");
  const json& report = member(meta, "report");
  const json& recipe = member(meta, "recipe");
  const json& rotation = member(meta, "rotation");

  std::string method = text_of(report, "weight_method", text_of(options, "weights"));
  s += fmt::format("scheme       {}, weights by {}\n", text_of(meta, "scheme"), method);
  s += fmt::format("weights      {}\n", weights_line(meta));
  const std::string codebooks = codebook_line(meta);
  if (!codebooks.empty()) s += fmt::format("codebooks    {}\n", codebooks);
  s += fmt::format("activations  {}\n", describe_quantizer(member(recipe, "act"), "per token"));
  const json& overrides = member(recipe, "act_overrides");
  if (overrides.is_object())
    for (const auto& [slot, spec] : overrides.items())
      s += fmt::format("             {} input: {}\n", slot, describe_quantizer(spec, "per token"));
  s += fmt::format("KV cache     K {}; V {}{}\n", describe_quantizer(member(recipe, "k_cache"), "per head"),
                   describe_quantizer(member(recipe, "v_cache"), "per head"),
                   flag_of(recipe, "intact_kv") ? "; first token intact (IntactKV)" : "");

  const std::string mode = text_of(rotation, "mode");
  s += fmt::format("rotation     {}", mode);
  if (member(rotation, "seed").is_number()) s += fmt::format(", seed {}", member(rotation, "seed").dump());
  if (mode != "none") s += fmt::format(": residual {}", text_of(rotation, "residual"));
  s += "\n";
  std::string fallbacks = text_of(rotation, "fallbacks", "");
  while (!fallbacks.empty() && fallbacks.back() == '\n') fallbacks.pop_back();
  if (fallbacks.empty()) {
    s += fmt::format("fallbacks    none{}\n", mode == "hadamard" ? " (every rotation an exact Hadamard)" : "");
  } else {
    size_t pos = 0;
    while ((pos = fallbacks.find('\n', pos)) != std::string::npos) {
      fallbacks.replace(pos, 1, "\n             ");
      pos += 14;
    }
    s += fmt::format("fallbacks    {}\n", fallbacks);
  }

  const int64_t calib_windows = static_cast<int64_t>(number_of(report, "calib_windows"));
  const json& search = member(report, "seed_search");
  if (calib_windows > 0)
    s += fmt::format("calibration  {} windows x {} tokens of {}\n", calib_windows,
                     static_cast<int64_t>(number_of(report, "calib_seqlen")), text_of(options, "calib_path"));
  else
    s += "calibration  none (no calibrated weights)\n";
  if (search.is_object())
    s += fmt::format("seed search  best of {} seeds: seed {}\n", member(search, "trials").size(),
                     member(search, "best_seed").dump());

  // Bytes by tensor kind, quantized codes and their scales/zeros apart.
  struct Bytes {
    uint64_t fp = 0, codes = 0, scales = 0;
    uint64_t cb_indices = 0, cb_tables = 0, cb_outliers = 0;  // codebook (CLAQ) linears
    std::set<std::string> fp_dtypes;  // as stored
  };
  std::map<std::string, Bytes> kinds;
  uint64_t tensor_bytes = 0;
  const SafetensorsFile file(path);
  for (const TensorInfo& t : file.tensors()) {
    Bytes& b = kinds[tensor_kind(linear_field(t.name))];
    auto ends_with = [&](const std::string& suffix) {
      return t.name.size() > suffix.size() && t.name.compare(t.name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends_with(".qweight"))
      b.codes += t.nbytes;
    else if (ends_with(".cb_indices"))
      b.cb_indices += t.nbytes;
    else if (ends_with(".cb_centroids") || ends_with(".cb_bits"))
      b.cb_tables += t.nbytes;
    else if (t.name.find(".cb_outlier_") != std::string::npos)
      b.cb_outliers += t.nbytes;
    else if (ends_with(".scales") || ends_with(".zeros"))
      b.scales += t.nbytes;
    else {
      b.fp += t.nbytes;
      b.fp_dtypes.insert(dtype_name(t.dtype));
    }
    tensor_bytes += t.nbytes;
  }
  std::error_code ec;
  const uint64_t file_bytes = std::filesystem::file_size(path, ec);
  std::string sizes;
  for (const char* kind : {"attention", "mlp", "embeddings", "lm_head", "norms", "other"}) {
    const auto it = kinds.find(kind);
    if (it == kinds.end()) continue;
    const Bytes& b = it->second;
    if (!sizes.empty()) sizes += "\n             ";
    const uint64_t cb = b.cb_indices + b.cb_tables + b.cb_outliers;
    sizes += fmt::format("{:<11}{:>10}", kind, mib(static_cast<double>(b.fp + b.codes + b.scales + cb)));
    if (cb > 0)
      sizes += fmt::format("  (codebook indices {}, tables {}, outliers {}{}{})", mib(static_cast<double>(b.cb_indices)),
                           mib(static_cast<double>(b.cb_tables)), mib(static_cast<double>(b.cb_outliers)),
                           b.codes > 0 ? ", int codes + scales " + mib(static_cast<double>(b.codes + b.scales)) : "",
                           b.fp > 0 ? ", FP " + mib(static_cast<double>(b.fp)) : "");
    else if (b.codes > 0)
      sizes += fmt::format("  (int codes {}, scales/zeros {}{})", mib(static_cast<double>(b.codes)),
                           mib(static_cast<double>(b.scales)),
                           b.fp > 0 ? ", FP " + mib(static_cast<double>(b.fp)) : "");
    else
      sizes += fmt::format("  ({})", fmt::join(b.fp_dtypes, ", "));
  }
  if (!ec && file_bytes > tensor_bytes)
    sizes += fmt::format("\n             {:<11}{:>10}  (tokenizer, recipe, rotations)", "metadata",
                         fmt::format("{:.1f} KiB", static_cast<double>(file_bytes - tensor_bytes) / 1024.0));
  s += fmt::format("sizes        {}\n", sizes);

  const std::string source = text_of(member(meta, "source"), "path", "");
  std::string vs = "source model unknown";
  if (!source.empty()) {
    std::error_code sec;
    const uint64_t source_bytes = std::filesystem::is_regular_file(source, sec)
                                      ? std::filesystem::file_size(source, sec)
                                      : 0;
    vs = source_bytes > 0 && !ec ? fmt::format("{:.2f}x the source {} ({})", static_cast<double>(file_bytes) /
                                                                           static_cast<double>(source_bytes),
                                               source, mib(static_cast<double>(source_bytes)))
                                 : fmt::format("source {} (not found here)", source);
  }
  s += fmt::format("file         {}; {}\n", ec ? std::string("size unknown") : mib(static_cast<double>(file_bytes)),
                   vs);
  return s;
}

}  // namespace quarot::cli
