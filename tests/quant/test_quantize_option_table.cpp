#include <gtest/gtest.h>

#include <set>
#include <string>
#include <type_traits>

#include "common/error.h"
#include "quant/quantize_option_table.h"

namespace quarot {
namespace {

// A text spelling of a value different from the default, per option type.
template <typename T>
std::string other_value_text(const T& value) {
  if constexpr (std::is_same_v<T, QuantScheme>) return value.name == "W8A8" ? "W4A16" : "W8A8";
  else if constexpr (std::is_same_v<T, WeightMethod>) return value == WeightMethod::kGptq ? "rtn" : "gptq";
  else if constexpr (std::is_same_v<T, RotationMode>) return value == RotationMode::kRandom ? "none" : "random";
  else if constexpr (std::is_same_v<T, std::string>) return value + "other";
  else if constexpr (std::is_same_v<T, std::map<LinearSlot, int>>) return "down=8";
  else if constexpr (std::is_same_v<T, bool>) return value ? "false" : "true";
  else return std::to_string(value == 0 ? 1 : value + value / 2 + 1);
}

// Keys a JSON object (one level of sub-objects flattened as "group.key") holds.
std::map<std::string, nlohmann::json> flatten(const nlohmann::json& j) {
  std::map<std::string, nlohmann::json> out;
  for (const auto& [k, v] : j.items()) {
    if (v.is_object() && k != "a_bits_at") {
      for (const auto& [k2, v2] : v.items()) out[k + "." + k2] = v2;
    } else {
      out[k] = v;
    }
  }
  return out;
}

// The table is the only declaration of the options: each entry has a distinct key and
// flag, and the JSON writer emits exactly the table's keys.
TEST(QuantizeOptionTable, KeysAndFlagsAreUniqueAndMatchTheJson) {
  std::set<std::string> keys, flags;
  const QuantizeOptions o;
  for_each_quantize_option(o, [&](const OptionField& f, const auto&, const auto&...) {
    const std::string key = f.group.empty() ? std::string(f.key) : std::string(f.group) + "." + std::string(f.key);
    EXPECT_TRUE(keys.insert(key).second) << key;
    EXPECT_TRUE(flags.insert(std::string(f.flag)).second) << f.flag;
    EXPECT_FALSE(f.what.empty()) << key;
    EXPECT_FALSE(f.help.empty()) << key;
    EXPECT_EQ(f.help.find("--"), std::string_view::npos) << key << ": help names a flag";
  });
  std::set<std::string> json_keys;
  for (const auto& [k, v] : flatten(to_json(o))) json_keys.insert(k);
  EXPECT_EQ(json_keys, keys);
  EXPECT_GE(keys.size(), 28u);
}

// Setting one option from text changes that option's JSON value and nothing else, and
// the JSON reader brings it back: the writer, the reader and the text parser agree.
TEST(QuantizeOptionTable, EachOptionRoundTripsThroughTextAndJson) {
  const std::map<std::string, nlohmann::json> defaults = flatten(to_json(QuantizeOptions{}));
  int visited = 0;
  const QuantizeOptions base;
  for_each_quantize_option(base, [&](const OptionField& f, const auto& dflt, const auto&...) {
    const std::string key = f.group.empty() ? std::string(f.key) : std::string(f.group) + "." + std::string(f.key);
    const std::string text = other_value_text(dflt);
    QuantizeOptions changed;
    int seen = 0;
    for_each_quantize_option(changed, [&](const OptionField& g, auto& member, const auto&...) {
      if (g.key == f.key && g.group == f.group) {
        assign_option_text(g, text, member);
        ++seen;
      }
    });
    ASSERT_EQ(seen, 1) << key;
    const auto now = flatten(to_json(changed));
    for (const auto& [k, v] : now) {
      if (k == key) {
        EXPECT_NE(v, defaults.at(k)) << key << " <- " << text;
      } else if (!(key == "scheme" && k == "a_clip")) {  // the scheme resolves the default clip
        EXPECT_EQ(v, defaults.at(k)) << key << " changed " << k;
      }
    }
    EXPECT_EQ(to_json(quantize_options_from_json(to_json(changed), "test")), to_json(changed)) << key;
    ++visited;
  });
  EXPECT_GE(visited, 28);
}

TEST(QuantizeOptionTable, TextIsCheckedAndNamedInErrors) {
  QuantizeOptions o;
  auto set = [&](std::string_view flag, std::string_view text) {
    for_each_quantize_option(o, [&](const OptionField& f, auto& member, const auto&... range) {
      if (f.flag == flag) assign_option_text(f, text, member, &range...);
    });
  };
  try {
    set("a-clip", "1.5");
    FAIL() << "accepted an activation clip ratio of 1.5";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "activation clip ratio 1.5 is out of range 0..1");
  }
  EXPECT_THROW(set("calib-windows", "12x"), Error);
  EXPECT_THROW(set("seed", "-1"), Error);
  EXPECT_THROW(set("a-bits-at", "down"), Error);
  EXPECT_THROW(set("a-bits-at", "mlp=8"), Error);
  EXPECT_THROW(set("scheme", "W4Q"), Error);
  set("outliers", "0.5%");
  EXPECT_DOUBLE_EQ(o.outlier_fraction, 0.005);
  EXPECT_THROW(set("outliers", "20%"), Error);
  set("w-bits", "0");  // 0 = the scheme's width, allowed although the range is 2..8
  EXPECT_EQ(o.w_bits_budget, 0.0);
  EXPECT_THROW(set("w-bits", "1.5"), Error);
  set("a-bits-at", "down=8");
  set("a-bits-at", "o=6");
  EXPECT_EQ(o.a_bits_at.size(), 2u);
  EXPECT_EQ(o.a_bits_at.at(LinearSlot::kO), 6);
}

// validate() checks every ranged option from the table, including ones set directly.
TEST(QuantizeOptionTable, ValidateUsesTheTableRanges) {
  QuantizeOptions o;
  o.gptq.block = 0;
  EXPECT_THROW(o.validate(), Error);
  o = QuantizeOptions{};
  o.seed_trial_windows = 0;
  EXPECT_THROW(o.validate(), Error);
  o = QuantizeOptions{};
  o.kv_clip = 1.5f;
  EXPECT_THROW(o.validate(), Error);
  EXPECT_NO_THROW(QuantizeOptions{}.validate());
}

}  // namespace
}  // namespace quarot
