#pragma once
// The meaningful range of a numeric setting, declared once beside the setting and
// used everywhere it is checked: the library's validation (check), the command line
// (cli/numeric_option.h derives the parse-time check and the help text from it) and
// messages, which print it briefly ("1..1000", "(0, 1]") rather than a type's limits.
#include <fmt/format.h>

#include <string>
#include <string_view>

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

}  // namespace quarot
