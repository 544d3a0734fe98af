#include "common/json_number.h"

#include <gtest/gtest.h>

#include <string>

namespace quarot {
namespace {

using nlohmann::json;

std::string error_of(const json& v, auto read) {
  try {
    read(v);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(JsonNumber, ReadsIntegersWithinTheTypesRange) {
  EXPECT_EQ(json_number<int32_t>(json(-7), "x"), -7);
  EXPECT_EQ(json_number<int64_t>(json::parse("9223372036854775807"), "x"), INT64_MAX);
  EXPECT_EQ(json_number<uint64_t>(json::parse("18446744073709551615"), "x"), UINT64_MAX);
  EXPECT_EQ(json_number<uint8_t>(json(255), "x"), 255);
  EXPECT_EQ(json_number<int>(json(2147483647), "x"), 2147483647);
}

TEST(JsonNumber, RejectsIntegersOutsideTheType) {
  const auto i32 = [](const json& v) { return json_number<int32_t>(v, "f: id"); };
  EXPECT_EQ(error_of(json(int64_t{1} << 31), i32), "f: id 2147483648 is out of range");
  EXPECT_EQ(error_of(json(-(int64_t{1} << 31) - 1), i32), "f: id -2147483649 is out of range");
  EXPECT_EQ(error_of(json(-1), [](const json& v) { return json_number<uint8_t>(v, "b"); }), "b -1 is out of range");
  EXPECT_EQ(error_of(json(256), [](const json& v) { return json_number<uint8_t>(v, "b"); }), "b 256 is out of range");
  EXPECT_EQ(error_of(json::parse("18446744073709551615"), [](const json& v) { return json_number<int64_t>(v, "n"); }),
            "n 18446744073709551615 is out of range");
}

TEST(JsonNumber, IntegersMustBeJsonIntegers) {
  const auto i64 = [](const json& v) { return json_number<int64_t>(v, "n"); };
  // The value the fuzzer found: a plain cast of it to int64 is undefined behaviour.
  EXPECT_EQ(error_of(json::parse("5855555555555555555555555555555555555555"), i64),
            "n is not an integer (5.855555555555556e+39)");
  EXPECT_EQ(error_of(json(3.0), i64), "n is not an integer (3.0)");
  EXPECT_EQ(error_of(json("3"), i64), "n is not an integer (\"3\")");
  EXPECT_EQ(error_of(json(true), i64), "n is not an integer (true)");
}

TEST(JsonNumber, FloatsMustBeFiniteInTheirType) {
  EXPECT_FLOAT_EQ(json_number<float>(json(1e-5), "eps"), 1e-5f);
  EXPECT_FLOAT_EQ(json_number<float>(json(3), "eps"), 3.0f);
  EXPECT_DOUBLE_EQ(json_number<double>(json(1e300), "eps"), 1e300);
  const auto f32 = [](const json& v) { return json_number<float>(v, "theta"); };
  EXPECT_EQ(error_of(json(1e300), f32), "theta 1e+300 is out of range");
  EXPECT_EQ(error_of(json(-1e39), f32), "theta -1e+39 is out of range");
  EXPECT_EQ(error_of(json(nullptr), f32), "theta is not a number (null)");
}

TEST(JsonNumber, FieldsAndArrays) {
  const json j = {{"k", 4}, {"m", {1.5, 2}}};
  EXPECT_EQ(json_number_field<int64_t>(j, "k", "file"), 4);
  EXPECT_EQ(error_of(j, [](const json& v) { return json_number_field<int64_t>(v, "p", "file"); }), "file: missing p");
  EXPECT_EQ(json_numbers<float>(j["m"], "m"), (std::vector<float>{1.5f, 2.0f}));
  EXPECT_EQ(error_of(j["k"], [](const json& v) { return json_numbers<float>(v, "m"); }), "m is not an array");
  EXPECT_EQ(error_of(json::array({1, "x"}), [](const json& v) { return json_numbers<float>(v, "m"); }),
            "m is not a number (\"x\")");
}

}  // namespace
}  // namespace quarot
