#pragma once
// Numbers read from JSON that came from outside quarot (tokenizer.json, config.json,
// the metadata of a quantized file). nlohmann's get<int64_t>() on 5e113 or get<float>()
// on 1e300 is a plain cast, undefined behaviour out of range, and get<int>() on 3.5
// silently truncates; a fuzzed tokenizer.json found the first. Every integer or float
// field of an input file is read through these, which fail with an Error naming `what`.
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>
#include <type_traits>
#include <vector>

#include "common/error.h"

namespace quarot {

// `v` as a T: an integer T needs a JSON integer within T's range, a floating T any
// JSON number within T's finite range.
template <typename T>
T json_number(const nlohmann::json& v, std::string_view what) {
  static_assert(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>);
  if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) fail("{} is not an integer ({})", what, v.dump());
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) fail("{} {} is out of range", what, u);
      return static_cast<T>(u);
    }
    const int64_t i = v.get<int64_t>();
    const bool fits = i < 0 ? std::is_signed_v<T> && i >= static_cast<int64_t>(std::numeric_limits<T>::min())
                            : static_cast<uint64_t>(i) <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    if (!fits) fail("{} {} is out of range", what, i);
    return static_cast<T>(i);
  } else {
    if (!v.is_number()) fail("{} is not a number ({})", what, v.dump());
    const double d = v.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > static_cast<double>(std::numeric_limits<T>::max()))
      fail("{} {} is out of range", what, d);
    return static_cast<T>(d);
  }
}

// The field `key` of the object `j` as a T; a missing field is an error.
template <typename T>
T json_number_field(const nlohmann::json& j, const char* key, std::string_view where) {
  if (!j.is_object() || !j.contains(key)) fail("{}: missing {}", where, key);
  return json_number<T>(j[key], fmt::format("{}: {}", where, key));
}

// A JSON array of numbers, each read as by json_number.
template <typename T>
std::vector<T> json_numbers(const nlohmann::json& v, std::string_view what) {
  if (!v.is_array()) fail("{} is not an array", what);
  std::vector<T> out;
  out.reserve(v.size());
  for (const auto& x : v) out.push_back(json_number<T>(x, what));
  return out;
}

}  // namespace quarot
