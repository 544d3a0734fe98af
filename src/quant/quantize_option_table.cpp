#include "quant/quantize_option_table.h"

#include <string>

#include <fmt/format.h>

#include "common/error.h"

namespace quarot {

namespace {

template <typename T>
T parse_option_number(const OptionField& f, std::string_view text) {
  std::string_view digits = text;
  double percent_scale = 1.0;
  if constexpr (std::is_floating_point_v<T>) {
    if (f.percent && !digits.empty() && digits.back() == '%') {
      digits.remove_suffix(1);
      percent_scale = 0.01;
    }
  }
  T v{};
  const NumberParse parsed = parse_number(digits, v);
  if (parsed == NumberParse::kOverflow) fail("{} '{}' is out of range", f.what, text);
  if (parsed == NumberParse::kNotANumber) fail("{} '{}' is not {}", f.what, text, number_kind<T>());
  if constexpr (std::is_floating_point_v<T>) v = static_cast<T>(v * percent_scale);
  return v;
}

template <typename T>
void assign_number(const OptionField& f, std::string_view text, T& member, const ValueRange<T>* range) {
  const T v = parse_option_number<T>(f, text);
  if (range != nullptr && !(f.zero_is_unset && v == T{0})) range->check(v, f.what);
  member = v;
}

}  // namespace

void assign_option_text(const OptionField&, std::string_view text, QuantScheme& member) {
  member = parse_quant_scheme(text);
}
void assign_option_text(const OptionField&, std::string_view text, WeightMethod& member) {
  member = parse_weight_method(text);
}
void assign_option_text(const OptionField&, std::string_view text, RotationMode& member) {
  member = parse_rotation_mode(std::string(text));
}
void assign_option_text(const OptionField&, std::string_view text, std::string& member) { member = text; }

void assign_option_text(const OptionField& f, std::string_view text, std::map<LinearSlot, int>& member) {
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == text.size())
    fail("{} '{}': expected SLOT=BITS, e.g. down=8", f.what, text);
  const std::optional<LinearSlot> slot = parse_layer_slot(text.substr(0, eq));
  if (!slot) fail("{} '{}': unknown slot (valid: {})", f.what, text, layer_slot_names());
  int bits = 0;
  if (parse_number(text.substr(eq + 1), bits) != NumberParse::kOk)
    fail("{} '{}': expected SLOT=BITS, e.g. down=8", f.what, text);
  member[*slot] = bits;
}

void assign_option_text(const OptionField& f, std::string_view text, bool& member) {
  if (text == "true" || text == "1") {
    member = true;
  } else if (text == "false" || text == "0") {
    member = false;
  } else {
    fail("{} '{}' is not true or false", f.what, text);
  }
}

void assign_option_text(const OptionField& f, std::string_view text, int& member) {
  member = parse_option_number<int>(f, text);
}
void assign_option_text(const OptionField& f, std::string_view text, uint64_t& member) {
  member = parse_option_number<uint64_t>(f, text);
}
void assign_option_text(const OptionField& f, std::string_view text, int64_t& member,
                        const ValueRange<int64_t>* range) {
  assign_number(f, text, member, range);
}
void assign_option_text(const OptionField& f, std::string_view text, float& member, const ValueRange<float>* range) {
  assign_number(f, text, member, range);
}
void assign_option_text(const OptionField& f, std::string_view text, double& member,
                        const ValueRange<double>* range) {
  assign_number(f, text, member, range);
}

std::string option_value_text(const QuantScheme& v) { return v.name; }
std::string option_value_text(WeightMethod v) { return to_string(v); }
std::string option_value_text(RotationMode v) { return to_string(v); }
std::string option_value_text(const std::string& v) { return v; }
std::string option_value_text(const std::map<LinearSlot, int>& v) {
  std::string out;
  for (const auto& [slot, bits] : v) out += fmt::format("{}{}={}", out.empty() ? "" : " ", linear_slot_name(slot), bits);
  return out;
}
std::string option_value_text(bool v) { return v ? "true" : "false"; }

}  // namespace quarot
