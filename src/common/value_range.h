#pragma once
// The meaningful range of a numeric setting, declared once beside the setting and
// used everywhere it is checked: the library's validation (check), the command line
// (cli/numeric_option.h derives the parse-time check and the help text from it) and
// messages, which print it briefly ("1..1000", "(0, 1]") rather than a type's limits.
#include <fmt/format.h>

#include <charconv>
#include <string>
#include <string_view>
#include <type_traits>

#include "common/error.h"

namespace quarot {

template <typename T>
struct ValueRange {
  T lo{}, hi{};
  bool open_lo = false;  // lo itself excluded
  bool open_hi = false;  // hi itself excluded

  constexpr bool contains(T v) const {
    return (open_lo ? v > lo : v >= lo) && (open_hi ? v < hi : v <= hi);
  }
  // "2..1048576" when both ends are included, else interval notation "(0, 1]".
  std::string describe() const {
    if (!open_lo && !open_hi) return fmt::format("{}..{}", lo, hi);
    return fmt::format("{}{}, {}{}", open_lo ? '(' : '[', lo, hi, open_hi ? ')' : ']');
  }
  // Error "<what> <v> is out of range <range>" when v is outside.
  void check(T v, std::string_view what) const {
    if (!contains(v)) fail("{} {} is out of range {}", what, v, describe());
  }
};

// Parses the whole of `text` as a T (decimal, no spaces). Shared by every place numbers
// arrive as text, so they accept and reject the same spellings.
enum class NumberParse { kOk, kNotANumber, kOverflow };
template <typename T>
NumberParse parse_number(std::string_view text, T& out) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  if (ec == std::errc::result_out_of_range) return NumberParse::kOverflow;
  if (text.empty() || ec != std::errc() || ptr != end) return NumberParse::kNotANumber;
  return NumberParse::kOk;
}
template <typename T>
constexpr const char* number_kind() {
  return std::is_integral_v<T> ? "an integer" : "a number";
}

}  // namespace quarot
