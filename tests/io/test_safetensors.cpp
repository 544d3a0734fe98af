// safetensors reader/writer round trip and rejection of malformed headers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/half.h"
#include "io/safetensors.h"
#include "test_support.h"

namespace quarot {
namespace {

using ::testing::HasSubstr;

template <typename T>
std::vector<uint8_t> as_bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

TEST(Safetensors, RoundTripsEveryPlainDtypeAndMetadata) {
  const std::string path = test::temp_dir() + "/rt.safetensors";
  std::vector<SafetensorsEntry> entries;
  entries.push_back({"u8", DType::kU8, {3}, {1, 2, 255}});  // 3 bytes: forces alignment care
  entries.push_back({"f16", DType::kF16, {2}, as_bytes<uint16_t>({fp32_to_fp16(1.5f), fp32_to_fp16(-2.0f)})});
  entries.push_back({"bf16", DType::kBF16, {1, 2}, as_bytes<uint16_t>({fp32_to_bf16(3.0f), fp32_to_bf16(-0.5f)})});
  entries.push_back({"i64", DType::kI64, {2}, as_bytes<int64_t>({-5, 1ll << 40})});
  entries.push_back({"i32", DType::kI32, {2}, as_bytes<int32_t>({7, -9})});
  entries.push_back({"i8", DType::kI8, {1}, as_bytes<int8_t>({-128})});
  entries.push_back({"f64", DType::kF64, {1}, as_bytes<double>({0.25})});
  entries.push_back({"empty", DType::kF32, {0, 4}, {}});
  Tensor w({2, 3});
  for (int i = 0; i < 6; ++i) w.data[i] = 0.5f * i - 1;
  entries.push_back(safetensors_entry_f32("model.w", w));
  write_safetensors(path, entries, {{"format", "quarot"}, {"bits", "4"}});

  SafetensorsFile f(path);
  EXPECT_EQ(f.metadata().at("format"), "quarot");
  EXPECT_EQ(f.metadata().at("bits"), "4");
  EXPECT_EQ(f.tensors().size(), entries.size());
  for (const auto& e : entries) {
    const TensorInfo* t = f.find(e.name);
    ASSERT_NE(t, nullptr) << e.name;
    EXPECT_EQ(t->dtype, e.dtype);
    EXPECT_EQ(t->shape, e.shape);
    // Every tensor aligned to its element size within an 8-aligned data section.
    EXPECT_EQ(t->offset % dtype_block_bytes(e.dtype), 0u) << e.name;
    const auto raw = f.raw(e.name);
    EXPECT_EQ(std::vector<uint8_t>(raw.begin(), raw.end()), e.data) << e.name;
  }
  EXPECT_EQ(f.read("model.w").data, w.data);
  EXPECT_EQ(f.read("model.w").shape, w.shape);
  EXPECT_EQ(f.read("f16").data, (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(f.read("bf16").data, (std::vector<float>{3.0f, -0.5f}));
  EXPECT_EQ(f.read("i64").data, (std::vector<float>{-5.0f, static_cast<float>(1ll << 40)}));
  EXPECT_EQ(f.read("u8").data, (std::vector<float>{1, 2, 255}));
  EXPECT_EQ(f.read("i8").data, (std::vector<float>{-128}));
  EXPECT_TRUE(f.read("empty").empty());

  // The data section starts 8-byte aligned and tensors leave no gaps (the
  // reference library rejects gaps).
  uint64_t header_len;
  const auto bytes = test::read_bytes(path);
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ((8 + header_len) % 8, 0u);
  uint64_t total = 0;
  for (const auto& e : entries) total += e.data.size();
  EXPECT_EQ(bytes.size(), 8 + header_len + total);
}

TEST(Safetensors, LargeTensorReadInParallelChunks) {
  const std::string path = test::temp_dir() + "/big.safetensors";
  std::vector<uint16_t> h(300000);
  for (size_t i = 0; i < h.size(); ++i) h[i] = fp32_to_bf16(static_cast<float>(i % 256) - 128);
  write_safetensors(path, {{"x", DType::kBF16, {300, 1000}, as_bytes(h)}}, {});
  const Tensor t = SafetensorsFile(path).read("x");
  ASSERT_EQ(t.numel(), 300000);
  for (int64_t i = 0; i < t.numel(); i += 997) EXPECT_EQ(t.data[i], static_cast<float>(i % 256) - 128);
}

TEST(Safetensors, WriterRejectsBadEntries) {
  const std::string dir = test::temp_dir();
  EXPECT_THROW(write_safetensors(dir + "/a", {{"x", DType::kF32, {2}, {1, 2, 3}}}, {}), Error);
  EXPECT_THROW(write_safetensors(dir + "/b", {{"x", DType::kU8, {1}, {1}}, {"x", DType::kU8, {1}, {2}}}, {}), Error);
  EXPECT_THROW(write_safetensors(dir + "/c", {{"x", DType::kQ4_0, {32}, std::vector<uint8_t>(18)}}, {}), Error);
  EXPECT_THROW(write_safetensors(dir + "/d", {{"__metadata__", DType::kU8, {1}, {1}}}, {}), Error);
}

// Writes header text + data bytes as a safetensors file.
std::string make_file(const std::string& name, const std::string& header, size_t data_bytes,
                      std::optional<uint64_t> header_len = std::nullopt) {
  const std::string path = test::temp_dir() + "/" + name + ".safetensors";
  std::vector<uint8_t> b(8);
  const uint64_t len = header_len.value_or(header.size());
  std::memcpy(b.data(), &len, 8);
  b.insert(b.end(), header.begin(), header.end());
  b.resize(b.size() + data_bytes, 0);
  test::write_bytes(path, b);
  return path;
}

void expect_rejected(const std::string& path, const std::string& word) {
  try {
    SafetensorsFile f(path);
    ADD_FAILURE() << path << " was accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path));
    EXPECT_THAT(e.what(), HasSubstr(word));
  }
}

TEST(Safetensors, RejectsMalformedFiles) {
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_NO_THROW(SafetensorsFile(make_file("ok", ok, 8)));
  expect_rejected(make_file("short", "", 0).substr(0), "header");  // header length 0: not JSON
  expect_rejected(make_file("hugelen", ok, 8, ~0ull), "header length");
  expect_rejected(make_file("lenpast", ok, 8, 1000), "header length");
  expect_rejected(make_file("notjson", "{not json", 0), "JSON");
  expect_rejected(make_file("array", "[1,2]", 0), "JSON object");
  expect_rejected(make_file("past", ok, 4), "past end of file");
  expect_rejected(make_file("mismatch", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 16), "needs");
  expect_rejected(make_file("backwards", R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 16),
                  "before begin");
  expect_rejected(make_file("dtype", R"({"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", 1),
                  "F8_E4M3");
  expect_rejected(make_file("negshape", R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", 1),
                  "non-negative");
  expect_rejected(make_file("overflow",
                            R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8),
                  "overflow");
  expect_rejected(make_file("nooffsets", R"({"a":{"dtype":"F32","shape":[2]}})", 8), "data_offsets");
  expect_rejected(make_file("dup",
                            R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                            R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                            2),
                  "duplicated tensor name a");
  expect_rejected(make_file("overlap",
                            R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                            R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                            4),
                  "overlapping");
  expect_rejected(make_file("badmeta", R"({"__metadata__":{"k":1}})", 0), "__metadata__");
  expect_rejected(make_file("tiny", "", 0, 0).substr(0), "header");
  const std::string p3 = test::temp_dir() + "/three.safetensors";
  test::write_bytes(p3, {1, 2, 3});
  expect_rejected(p3, "not a safetensors file");
}

TEST(Safetensors, TruncatedFilesNeverCrash) {
  const std::string path = test::temp_dir() + "/full.safetensors";
  write_safetensors(path,
                    {{"a", DType::kF32, {2, 2}, std::vector<uint8_t>(16, 1)}, {"b", DType::kU8, {5}, {1, 2, 3, 4, 5}}},
                    {{"k", "v"}});
  const auto full = test::read_bytes(path);
  const std::string cut_path = test::temp_dir() + "/cut.safetensors";
  for (size_t cut = 0; cut < full.size(); ++cut) {
    test::write_bytes(cut_path, std::vector<uint8_t>(full.begin(), full.begin() + cut));
    EXPECT_THROW(SafetensorsFile{cut_path}, Error) << cut;
  }
}

}  // namespace
}  // namespace quarot
