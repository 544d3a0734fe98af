// GGUF reader: round trip of builder-made files, and every class of corrupt input
// rejected with an Error naming the file and the problem.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "common/error.h"
#include "common/half.h"
#include "gguf_builder.h"
#include "io/gguf.h"
#include "test_support.h"

namespace quarot {
namespace {

using testing::GgufBuilder;
using ::testing::HasSubstr;

std::string write_temp(const std::string& name, const std::vector<uint8_t>& bytes) {
  const std::string path = test::temp_dir() + "/" + name;
  GgufBuilder::write_bytes(path, bytes);
  return path;
}

std::vector<float> iota_values(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * (static_cast<float>(i) - static_cast<float>(n) / 2);
  return v;
}

GgufBuilder valid_builder() {
  GgufBuilder b;
  b.add_string("general.architecture", "llama")
      .add_u32("llama.block_count", 30)
      .add_i32("neg", -7)
      .add_f32("llama.rope.freq_base", 10000.0f)
      .add_f64("f64", 0.125)
      .add_bool("flag", true)
      .add_u8("u8", 200)
      .add_i8("i8", -100)
      .add_u16("u16", 65535)
      .add_i16("i16", -32768)
      .add_u64("u64", 1ull << 40)
      .add_i64("i64", -(1ll << 40))
      .add_string_array("tokens", {"a", "bc", ""})
      .add_f32_array("scores", {0.5f, -1.0f})
      .add_i32_array("types", {1, -2, 3});
  // A nested array: [[1, 2], [3]] of uint8.
  testing::ByteWriter nested;
  nested.put<uint32_t>(testing::kGgufArray).put<uint64_t>(2);
  nested.put<uint32_t>(testing::kGgufU8).put<uint64_t>(2).put<uint8_t>(1).put<uint8_t>(2);
  nested.put<uint32_t>(testing::kGgufU8).put<uint64_t>(1).put<uint8_t>(3);
  b.add_raw_kv("nested", testing::kGgufArray, nested.bytes);
  b.add_tensor_f32("w_f32", {3, 4}, iota_values(12, 0.5f));
  b.add_tensor_f16("w_f16", {2, 8}, iota_values(16, 0.25f));
  b.add_tensor_q8_0("w_q8", {2, 32}, iota_values(64, 0.1f));
  return b;
}

TEST(Gguf, ReadsMetadataOfEveryType) {
  const std::string path = write_temp("valid.gguf", valid_builder().bytes());
  GgufFile f(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_int("llama.block_count"), 30);
  EXPECT_EQ(f.get_int("neg"), -7);
  EXPECT_EQ(f.get_float("llama.rope.freq_base"), 10000.0);
  EXPECT_EQ(f.get_float("f64"), 0.125);
  EXPECT_EQ(f.get_float("llama.block_count"), 30.0);  // integers read as floats too
  EXPECT_TRUE(f.get_bool("flag"));
  EXPECT_EQ(f.get_int("u8"), 200);
  EXPECT_EQ(f.get_int("i8"), -100);
  EXPECT_EQ(f.get_int("u16"), 65535);
  EXPECT_EQ(f.get_int("i16"), -32768);
  EXPECT_EQ(f.get_int("u64"), 1ll << 40);
  EXPECT_EQ(f.get_int("i64"), -(1ll << 40));
  EXPECT_EQ(f.get_string_array("tokens"), (std::vector<std::string>{"a", "bc", ""}));
  EXPECT_EQ(f.get_float_array("scores"), (std::vector<double>{0.5, -1.0}));
  EXPECT_EQ(f.get_int_array("types"), (std::vector<int64_t>{1, -2, 3}));
  const auto& nested = std::get<GgufArray>(f.metadata().at("nested").v);
  ASSERT_EQ(nested.size(), 2u);
  const auto& first = std::get<GgufArray>(nested[0].v);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(std::get<uint64_t>(first[1].v), 2u);
  EXPECT_EQ(std::get<GgufArray>(nested[1].v).size(), 1u);
  // Defaults and type errors.
  EXPECT_EQ(f.get_int_or("missing", 42), 42);
  EXPECT_EQ(f.get_string_or("missing", "x"), "x");
  EXPECT_TRUE(f.get_bool_or("missing", true));
  EXPECT_EQ(f.get_float_or("missing", 2.5), 2.5);
  try {
    f.get_int("general.architecture");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path));
    EXPECT_THAT(e.what(), HasSubstr("general.architecture"));
    EXPECT_THAT(e.what(), HasSubstr("expected integer"));
  }
  try {
    f.get_string("nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("missing"));
  }
  EXPECT_THROW(f.get_string_array("scores"), Error);
  EXPECT_THROW(f.get_bool("u8"), Error);
}

TEST(Gguf, ReadsTensorsInOurShapeOrder) {
  const std::string path = write_temp("tensors.gguf", valid_builder().bytes());
  GgufFile f(path);
  ASSERT_EQ(f.tensors().size(), 3u);
  const TensorInfo* info = f.find("w_f32");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->shape, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(info->nbytes, 48u);
  EXPECT_EQ(info->offset % 32, 0u);
  EXPECT_EQ(f.find("nope"), nullptr);

  const Tensor a = f.read("w_f32");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(a.data, iota_values(12, 0.5f));
  EXPECT_EQ(a.at(2, 3), 0.5f * (11 - 6));

  const Tensor h = f.read("w_f16");
  const auto want_h = iota_values(16, 0.25f);  // all exactly representable in fp16
  EXPECT_EQ(h.data, want_h);

  const Tensor q = f.read("w_q8");
  EXPECT_EQ(q.shape, (std::vector<int64_t>{2, 32}));
  const auto want_q = iota_values(64, 0.1f);
  for (size_t i = 0; i < 64; ++i) {
    // Q8_0 error is at most half a step, step = max|x| / 127 per block.
    EXPECT_NEAR(q.data[i], want_q[i], 3.2 / 127 * 0.51 + 1e-3) << i;
  }
  // The first element of block 0 is -max|x| of that block, exactly -127 * d.
  const float d0 = fp16_to_fp32(fp32_to_fp16(3.2f / 127.0f));
  EXPECT_FLOAT_EQ(q.data[0], -127 * d0);

  try {
    f.read("absent");
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path));
    EXPECT_THAT(e.what(), HasSubstr("absent"));
  }
}

TEST(Gguf, ReadsVersion2AndCustomAlignment) {
  GgufBuilder b;
  b.version(2).alignment(64).add_tensor_f32("a", {5}, {1, 2, 3, 4, 5}).add_tensor_f32("b", {2}, {6, 7});
  const std::string path = write_temp("v2.gguf", b.bytes());
  GgufFile f(path);
  EXPECT_EQ(f.version(), 2u);
  EXPECT_EQ(f.find("b")->offset % 64, 0u);
  EXPECT_EQ(f.read("b").data, (std::vector<float>{6, 7}));
  EXPECT_EQ(f.read("a").data, (std::vector<float>{1, 2, 3, 4, 5}));
}

TEST(Gguf, EmptyFileWithoutTensors) {
  GgufBuilder b;
  b.add_string("k", "v");
  GgufFile f(write_temp("notensors.gguf", b.bytes()));
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.get_string("k"), "v");
}

// Expects construction to fail with a message naming the file and containing `word`.
void expect_rejected(const std::vector<uint8_t>& bytes, const std::string& word, const std::string& name) {
  const std::string path = write_temp(name + ".gguf", bytes);
  try {
    GgufFile f(path);
    ADD_FAILURE() << name << ": accepted a bad file";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path)) << name;
    EXPECT_THAT(e.what(), HasSubstr(word)) << name;
  }
}

void put_u64_at(std::vector<uint8_t>& b, size_t at, uint64_t v) { std::memcpy(b.data() + at, &v, 8); }

TEST(Gguf, RejectsBadHeaders) {
  auto good = valid_builder().bytes();
  auto bad_magic = good;
  bad_magic[0] = 'X';
  expect_rejected(bad_magic, "magic", "bad_magic");
  expect_rejected({'G', 'G'}, "not a GGUF", "tiny");
  expect_rejected(GgufBuilder().version(1).bytes(), "version 1", "v1");
  expect_rejected(GgufBuilder().version(4).bytes(), "version 4", "v4");
  auto big_endian = GgufBuilder().bytes();
  big_endian[4] = 0; big_endian[7] = 3;
  expect_rejected(big_endian, "big-endian", "big_endian");
  auto huge_tensor_count = good;
  put_u64_at(huge_tensor_count, 8, ~0ull);
  expect_rejected(huge_tensor_count, "tensor count", "huge_tensor_count");
  auto huge_kv_count = good;
  put_u64_at(huge_kv_count, 16, 1ull << 62);
  expect_rejected(huge_kv_count, "metadata count", "huge_kv_count");
}

TEST(Gguf, RejectsBadMetadata) {
  // Key length far beyond the file.
  auto long_key = GgufBuilder().add_string("k", "v").bytes();
  put_u64_at(long_key, 24, 1ull << 40);
  expect_rejected(long_key, "exceeds", "long_key");
  // String value longer than the file: key "k" (8+1), type (4), then the length.
  auto long_value = GgufBuilder().add_string("k", "v").bytes();
  put_u64_at(long_value, 24 + 9 + 4, ~0ull - 3);
  expect_rejected(long_value, "string length", "long_value");
  expect_rejected(GgufBuilder().add_u32("dup", 1).add_u32("dup", 2).bytes(), "duplicated metadata key dup", "dupkey");
  expect_rejected(GgufBuilder().add_raw_kv("k", 13, {0, 0, 0, 0}).bytes(), "unknown value type 13", "badtype");
  expect_rejected(GgufBuilder().add_raw_kv("b", testing::kGgufBool, {7}).bytes(), "bool", "badbool");
  // Array claiming more elements than the file holds.
  testing::ByteWriter arr;
  arr.put<uint32_t>(testing::kGgufU32).put<uint64_t>(1ull << 60);
  expect_rejected(GgufBuilder().add_raw_kv("a", testing::kGgufArray, arr.bytes).bytes(), "array elements", "bigarr");
  // Arrays nested deeper than any real file.
  testing::ByteWriter deep;
  for (int i = 0; i < 64; ++i) deep.put<uint32_t>(testing::kGgufArray).put<uint64_t>(1);
  deep.put<uint32_t>(testing::kGgufU8).put<uint64_t>(0);
  expect_rejected(GgufBuilder().add_raw_kv("deep", testing::kGgufArray, deep.bytes).bytes(), "nests", "deep");
  expect_rejected(GgufBuilder().alignment(24).bytes(), "power of two", "align24");
  expect_rejected(GgufBuilder().add_string("general.alignment", "x").bytes(), "general.alignment", "alignstr");
}

TEST(Gguf, RejectsBadTensorInfos) {
  const std::vector<uint8_t> f32x4(16, 0);
  expect_rejected(GgufBuilder().add_tensor_raw("t", {4}, 99, f32x4).bytes(), "ggml type 99", "type99");
  expect_rejected(GgufBuilder().add_tensor_raw("t", {4}, 10, f32x4).bytes(), "ggml type 10", "q2k");
  expect_rejected(GgufBuilder().add_tensor_raw("t", {1, 1, 1, 1, 4}, 0, f32x4).bytes(), "5 dimensions", "5d");
  expect_rejected(GgufBuilder().add_tensor_raw("t", {}, 0, f32x4).bytes(), "0 dimensions", "0d");
  expect_rejected(GgufBuilder().add_tensor_raw("t", {1ull << 32, 1ull << 32}, 0, f32x4).bytes(), "overflow",
                  "numel_overflow");
  expect_rejected(GgufBuilder().add_tensor_raw("t", {1ull << 63}, 0, f32x4).bytes(), "overflow", "dim_too_big");
  // 2^62 F32 elements: the element count fits, the byte count does not.
  expect_rejected(GgufBuilder().add_tensor_raw("t", {1ull << 62}, 0, f32x4).bytes(), "overflow", "bytes_overflow");
  // No elements at all, but a row too long to address (found by fuzz_gguf).
  expect_rejected(GgufBuilder().add_tensor_raw("t", {1ull << 62, 0}, 0, f32x4).bytes(), "overflow",
                  "empty_huge_row");
  expect_rejected(GgufBuilder().add_tensor_raw("t", {33}, 8, std::vector<uint8_t>(68)).bytes(), "block size",
                  "partial_block");
  expect_rejected(GgufBuilder().add_tensor_raw("t", {1024}, 0, f32x4).bytes(), "past end of file", "past_eof");
  expect_rejected(GgufBuilder().add_tensor_raw("t", {4}, 0, f32x4, 1ull << 50).bytes(), "past end of file",
                  "offset_past_eof");
  expect_rejected(GgufBuilder().add_tensor_raw("t", {4}, 0, f32x4, 8).bytes(), "not aligned", "unaligned");
  expect_rejected(
      GgufBuilder().add_tensor_raw("a", {16}, 0, std::vector<uint8_t>(64), 0).add_tensor_raw("b", {4}, 0, f32x4, 32).bytes(),
      "overlapping", "overlap");
  expect_rejected(GgufBuilder().add_tensor_raw("t", {4}, 0, f32x4).add_tensor_raw("t", {4}, 0, f32x4).bytes(),
                  "duplicated tensor name t", "duptensor");
}

TEST(Gguf, TruncatedFilesNeverCrash) {
  const auto good = valid_builder().bytes();
  // Every cut point in the header and tensor table, then a sample of cuts inside the
  // tensor data (all caught by the same bounds check): each must throw Error.
  const std::string dir = test::temp_dir();
  GgufBuilder::write_bytes(dir + "/full.gguf", good);
  uint64_t data_start = good.size();
  const GgufFile full(dir + "/full.gguf");  // named: a range-for over a temporary's member dangles
  for (const auto& t : full.tensors()) data_start = std::min(data_start, t.offset);
  int rejected = 0, tried = 0;
  for (size_t cut = 0; cut < good.size(); cut += cut < data_start ? 1 : 7) {
    ++tried;
    const std::string path = dir + "/cut.gguf";
    GgufBuilder::write_bytes(path, std::vector<uint8_t>(good.begin(), good.begin() + cut));
    try {
      GgufFile f(path);
      for (const auto& t : f.tensors()) (void)f.read(t.name);
    } catch (const Error& e) {
      ++rejected;
      EXPECT_THAT(e.what(), HasSubstr(path));
    }
  }
  // Only cuts within the final tensor's alignment padding may still be valid.
  EXPECT_GE(rejected, tried - 32 / 7 - 1);
  EXPECT_GT(data_start, 200u);
}

TEST(Gguf, MissingFileAndDirectory) {
  EXPECT_THROW(GgufFile("/nonexistent/x.gguf"), Error);
  EXPECT_THROW(GgufFile(test::temp_dir()), Error);
}

}  // namespace
}  // namespace quarot
