#include "quant/scheme.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>
#include <cmath>

#include "common/error.h"
#include "quant/quantize_option_table.h"

namespace quarot {

const std::vector<std::string>& preset_scheme_names() {
  static const std::vector<std::string> names = {"W16A16", "W8A8", "W6A6", "W4A16", "W4A8KV4", "W4A4KV4", "K4V4"};
  return names;
}

void check_bits(int bits, std::string_view what) {
  if (!((bits >= 2 && bits <= 8) || bits == 16))
    fail("{}: {} bits is out of range (supported: 2..8, or 16 for full precision)", what, bits);
}

namespace {

[[noreturn]] void fail_unknown_scheme(std::string_view name, std::string_view why) {
  fail("unknown quantization scheme '{}' ({}); valid: {}, or a combination such as W4A4KV8, W4A8, K8V4", name,
       why, fmt::join(preset_scheme_names(), ", "));
}

// Canonical spelling: W and A always when either is quantized, "KV<b>" when K and V agree.
std::string canonical_name(const QuantScheme& s) {
  std::string out;
  const bool has_wa = s.w_bits < 16 || s.a_bits < 16 || (s.k_bits == 16 && s.v_bits == 16);
  if (has_wa) out += fmt::format("W{}A{}", s.w_bits, s.a_bits);
  if (s.k_bits < 16 || s.v_bits < 16) {
    if (s.k_bits == s.v_bits && has_wa)
      out += fmt::format("KV{}", s.k_bits);
    else
      out += fmt::format("K{}V{}", s.k_bits, s.v_bits);
  }
  return out;
}

}  // namespace

QuantScheme parse_quant_scheme(std::string_view name) {
  std::string upper;
  for (char c : name) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper.empty()) fail_unknown_scheme(name, "empty name");

  QuantScheme s;
  size_t pos = 0;
  // Reads the decimal number after a letter tag; returns -1 when none is there.
  auto read_number = [&]() -> int {
    size_t start = pos;
    while (pos < upper.size() && std::isdigit(static_cast<unsigned char>(upper[pos])) && pos - start < 3) ++pos;
    if (pos == start) return -1;
    return std::stoi(upper.substr(start, pos - start));
  };
  auto field = [&](char tag, int& out, const char* what) {
    const int b = read_number();
    if (b < 0) fail_unknown_scheme(name, fmt::format("'{}' must be followed by a bit width", tag));
    check_bits(b, fmt::format("quantization scheme '{}': {}", name, what));
    out = b;
  };

  bool seen_any = false;
  if (pos < upper.size() && upper[pos] == 'W') {
    ++pos;
    field('W', s.w_bits, "weight");
    seen_any = true;
  }
  if (pos < upper.size() && upper[pos] == 'A') {
    ++pos;
    field('A', s.a_bits, "activation");
    seen_any = true;
  }
  if (pos + 1 < upper.size() && upper[pos] == 'K' && upper[pos + 1] == 'V') {
    pos += 2;
    field('V', s.k_bits, "KV cache");
    s.v_bits = s.k_bits;
    seen_any = true;
  } else if (pos < upper.size() && upper[pos] == 'K') {
    ++pos;
    field('K', s.k_bits, "key cache");
    if (pos >= upper.size() || upper[pos] != 'V') fail_unknown_scheme(name, "K<bits> must be followed by V<bits>");
    ++pos;
    field('V', s.v_bits, "value cache");
    seen_any = true;
  }
  if (!seen_any || pos != upper.size())
    fail_unknown_scheme(name, pos < upper.size() ? fmt::format("unexpected '{}'", upper.substr(pos)) : "no bit widths");
  s.name = canonical_name(s);
  for (const std::string& preset : preset_scheme_names())
    if (preset == upper) s.name = preset;
  return s;
}

std::string to_string(WeightMethod m) {
  switch (m) {
    case WeightMethod::kRtn: return "rtn";
    case WeightMethod::kGptq: return "gptq";
    case WeightMethod::kClaq: return "claq";
  }
  return "rtn";
}

std::string to_string(RotationMode m) {
  switch (m) {
    case RotationMode::kHadamard: return "hadamard";
    case RotationMode::kRandom: return "random";
    case RotationMode::kNone: return "none";
  }
  return "none";
}

WeightMethod parse_weight_method(std::string_view s) {
  if (s == "rtn") return WeightMethod::kRtn;
  if (s == "gptq") return WeightMethod::kGptq;
  if (s == "claq") return WeightMethod::kClaq;
  fail("unknown weight quantizer '{}' (valid: rtn, gptq, claq)", s);
}

void check_group_divides(int64_t group, int64_t size, std::string_view what) {
  if (group < 0) fail("{} group {} must not be negative", what, group);
  if (group > 0 && size % group != 0) fail("{} group {} does not divide {}", what, group, size);
}

void QuantizeOptions::validate() const {
  check_bits(scheme.w_bits, "weight");
  check_bits(scheme.a_bits, "activation");
  check_bits(scheme.k_bits, "key cache");
  check_bits(scheme.v_bits, "value cache");
  for (auto [bits, what] : {std::pair{lm_head_bits, "lm_head"}, {embed_bits, "embedding"}})
    if (bits != 32) check_bits(bits, what);
  // Every ranged number, from the option table.
  for_each_quantize_option(*this, [](const OptionField& f, const auto& member, const auto&... range) {
    if constexpr (sizeof...(range) == 1) {
      if (!(f.zero_is_unset && member == 0)) (range.check(member, f.what), ...);
    }
  });
  for (const auto& [slot, bits] : a_bits_at) {
    const std::string name = linear_slot_name(slot);
    if (slot == LinearSlot::kLmHead)
      fail("activation width for linear input '{}' (valid: {})", name, layer_slot_names());
    check_bits(bits, "activation (" + name + ")");
    if (!scheme.quantizes_activations())
      fail("per-slot activation width {}={} needs a scheme that quantizes activations ({} keeps them FP)", name, bits,
           scheme.name);
  }
  if (weights == WeightMethod::kGptq && gptq.act_order && w_group > 0 && !gptq.static_groups)
    fail("GPTQ act_order with weight groups needs static_groups (stored groups must follow the original column order)");
  if (w_bits_budget != 0.0) {
    if (weights != WeightMethod::kClaq && w_bits_budget != std::floor(w_bits_budget))
      fail("a fractional weight bit budget ({}) needs the CLAQ weight quantizer", w_bits_budget);
    if (scheme.w_bits != static_cast<int>(std::floor(w_bits_budget)))
      fail("weight bit budget {} does not match the scheme's weight width {} ({})", w_bits_budget, scheme.w_bits,
           scheme.name);
  }
  if (outlier_fraction > 0.0 && weights != WeightMethod::kClaq)
    fail("keeping a fraction of the weights as outliers ({}) needs the CLAQ weight quantizer", outlier_fraction);
  if (weights == WeightMethod::kClaq && w_group > 0)
    fail("CLAQ quantizes with per-column codebooks; weight groups ({}) do not apply", w_group);
  if (seed_trials > 1 && rotate == RotationMode::kNone)
    fail("seed trials {} need a rotation to vary (a Hadamard or random rotation, not none)", seed_trials);
}

void QuantizeOptions::validate_for(const LlamaConfig& c, const std::string& source) const {
  validate();
  try {
    // Weight groups split the input dimension of every quantized linear.
    check_group_divides(w_group, c.hidden, "weight");
    check_group_divides(w_group, c.intermediate, "weight");
    check_group_divides(w_group, c.q_dim(), "weight");
    check_group_divides(a_group, c.hidden, "activation");
    check_group_divides(a_group, c.intermediate, "activation");
    check_group_divides(a_group, c.q_dim(), "activation");
    check_group_divides(kv_group, c.head_dim, "KV cache");
  } catch (const Error& e) {
    fail("{}: {}", source, e.what());
  }
}

void apply_quant_specs(const QuantizeOptions& o, RuntimeRecipe& recipe) {
  recipe.act = ActQuantSpec{};
  if (o.scheme.quantizes_activations()) {
    recipe.act.bits = o.scheme.a_bits;
    recipe.act.clip_ratio = o.resolved_a_clip();
    recipe.act.group = o.a_group;
    recipe.act.symmetric = o.a_sym;
  }
  recipe.act_overrides.clear();
  for (const auto& [slot, bits] : o.a_bits_at) {
    ActQuantSpec spec = recipe.act;
    spec.bits = bits < 16 ? bits : 0;
    spec.clip_ratio = o.resolved_a_clip(bits);
    recipe.act_overrides[slot] = spec;
  }
  recipe.lm_head_act = ActQuantSpec{};  // lm_head input stays FP (QuaRot keeps lm_head in 16 bits)
  auto kv = [&](int bits) {
    KvQuantSpec spec;
    if (bits < 16) {
      spec.bits = bits;
      spec.clip_ratio = o.kv_clip;
      spec.group = o.kv_group;
      spec.symmetric = o.kv_sym;
    }
    return spec;
  };
  recipe.k_cache = kv(o.scheme.k_bits);
  recipe.v_cache = kv(o.scheme.v_bits);
  recipe.intact_kv = o.intact_kv;
}

namespace {

// Option values as JSON spells them: enums and the scheme by name, slot widths as
// {"down": 8, ...}, everything else as itself.
nlohmann::json json_value(const QuantScheme& v) { return v.name; }
nlohmann::json json_value(WeightMethod v) { return to_string(v); }
nlohmann::json json_value(RotationMode v) { return to_string(v); }
nlohmann::json json_value(const std::map<LinearSlot, int>& widths) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [slot, bits] : widths) j[linear_slot_name(slot)] = bits;
  return j;
}
template <typename T>
nlohmann::json json_value(const T& v) {
  return v;
}

void read_json_value(const nlohmann::json& j, QuantScheme& v) { v = parse_quant_scheme(j.get<std::string>()); }
void read_json_value(const nlohmann::json& j, WeightMethod& v) { v = parse_weight_method(j.get<std::string>()); }
void read_json_value(const nlohmann::json& j, RotationMode& v) { v = parse_rotation_mode(j.get<std::string>()); }
void read_json_value(const nlohmann::json& j, std::map<LinearSlot, int>& widths) {
  widths.clear();
  for (const auto& [name, bits] : j.get<std::map<std::string, int>>()) {
    const std::optional<LinearSlot> slot = parse_layer_slot(name);
    if (!slot) fail("activation width for unknown linear input '{}' (valid: {})", name, layer_slot_names());
    widths[*slot] = bits;
  }
}
template <typename T>
void read_json_value(const nlohmann::json& j, T& v) {
  v = j.get<T>();
}

}  // namespace

nlohmann::json to_json(const QuantScheme& s) {
  return {{"name", s.name}, {"w_bits", s.w_bits}, {"a_bits", s.a_bits}, {"k_bits", s.k_bits}, {"v_bits", s.v_bits}};
}

nlohmann::json to_json(const QuantizeOptions& o) {
  nlohmann::json j = nlohmann::json::object();
  for_each_quantize_option(o, [&](const OptionField& f, const auto& member, const auto&...) {
    nlohmann::json& dst = f.group.empty() ? j : j[std::string(f.group)];
    dst[std::string(f.key)] = json_value(member);
  });
  j["a_clip"] = o.resolved_a_clip();  // the clip that was applied, not "0 = default"
  return j;
}

QuantizeOptions quantize_options_from_json(const nlohmann::json& j, const std::string& source) {
  QuantizeOptions o;
  if (!j.is_object()) fail("{}: quantization options are not a JSON object", source);
  try {
    for_each_quantize_option(o, [&](const OptionField& f, auto& member, const auto&...) {
      const nlohmann::json* obj = &j;
      if (!f.group.empty()) {
        const auto g = j.find(std::string(f.group));
        if (g == j.end()) return;
        obj = &*g;
      }
      const auto it = obj->find(std::string(f.key));
      if (it != obj->end()) read_json_value(*it, member);
    });
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed quantization options: {}", source, e.what());
  } catch (const Error& e) {
    fail("{}: {}", source, e.what());
  }
  return o;
}

}  // namespace quarot
