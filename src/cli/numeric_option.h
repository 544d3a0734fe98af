#pragma once
// Numeric options, each declared once with its meaningful range
// (common/value_range.h, usually the library's own constant): the value is checked
// when the command line is parsed, before any work, with one short line
// ("--seqlen: -5 is out of range 2..1048576"), and --help shows the range.
#include <CLI/CLI.hpp>

#include <string>
#include <type_traits>

#include "common/value_range.h"

namespace quarot::cli {

template <typename T>
CLI::Option* add_number(CLI::App* cmd, const std::string& flags, T& value, const std::string& help,
                        const ValueRange<T>& range) {
  static_assert(std::is_arithmetic_v<T>);
  CLI::Validator check(
      [range](std::string& text) -> std::string {
        T v{};
        const NumberParse parsed = parse_number(text, v);
        if (parsed == NumberParse::kNotANumber) return "'" + text + "' is not " + number_kind<T>();
        if (parsed == NumberParse::kOverflow || !range.contains(v)) return text + " is out of range " + range.describe();
        return {};
      },
      range.describe(), "range");
  return cmd->add_option(flags, value, help)->check(check);
}

}  // namespace quarot::cli
