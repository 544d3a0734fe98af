// Dequantization against the reference `gguf` Python package: random blocks of
// every format and gguf.quants.dequantize's output, stored by make_quant_vectors.py.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "io/ggml_quants.h"

namespace quarot {
namespace {

std::vector<uint8_t> from_hex(const std::string& hex) {
  std::vector<uint8_t> b(hex.size() / 2);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return b;
}

TEST(DequantReference, MatchesGgufPythonPackage) {
  const std::map<std::string, DType> types = {{"Q4_0", DType::kQ4_0}, {"Q4_1", DType::kQ4_1}, {"Q5_0", DType::kQ5_0},
                                              {"Q5_1", DType::kQ5_1}, {"Q8_0", DType::kQ8_0}, {"Q4_K", DType::kQ4_K},
                                              {"Q5_K", DType::kQ5_K}, {"Q6_K", DType::kQ6_K}};
  std::ifstream in(std::string(QUAROT_SOURCE_DIR) + "/tests/io/data/ggml_quant_vectors.txt");
  ASSERT_TRUE(in) << "missing tests/io/data/ggml_quant_vectors.txt";
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string name, raw_hex, values_hex;
    int64_t n = 0;
    ss >> name >> n >> raw_hex >> values_hex;
    ASSERT_TRUE(types.count(name)) << name;
    const auto raw = from_hex(raw_hex);
    const auto value_bytes = from_hex(values_hex);
    ASSERT_EQ(value_bytes.size(), static_cast<size_t>(n) * 4);
    std::vector<float> want(n), got(n);
    std::memcpy(want.data(), value_bytes.data(), value_bytes.size());
    dequantize_row(types.at(name), raw.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      // numpy may associate d * scale * q differently: allow one rounding step.
      EXPECT_NEAR(got[i], want[i], 1e-6f * std::max(1.0f, std::fabs(want[i]))) << name << " element " << i;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 8);
}

}  // namespace
}  // namespace quarot
