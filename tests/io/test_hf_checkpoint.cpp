// HF checkpoint directories: single-file and sharded layouts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "common/error.h"
#include "io/hf_checkpoint.h"
#include "test_support.h"

namespace quarot {
namespace {

using ::testing::HasSubstr;

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

SafetensorsEntry f32_entry(const std::string& name, std::vector<float> v) {
  Tensor t({static_cast<int64_t>(v.size())});
  t.data = std::move(v);
  return safetensors_entry_f32(name, t);
}

TEST(HfCheckpoint, SingleFile) {
  const std::string dir = test::temp_dir();
  write_text(dir + "/config.json", R"({"hidden_size": 8})");
  write_safetensors(dir + "/model.safetensors", {f32_entry("a", {1, 2}), f32_entry("b", {3})}, {});
  EXPECT_TRUE(HfCheckpoint::is_checkpoint_dir(dir));
  HfCheckpoint ck(dir);
  EXPECT_EQ(ck.config()["hidden_size"], 8);
  EXPECT_EQ(ck.tensors().size(), 2u);
  EXPECT_EQ(ck.read("b").data, (std::vector<float>{3}));
  EXPECT_THROW(ck.read("c"), Error);
}

TEST(HfCheckpoint, Sharded) {
  const std::string dir = test::temp_dir();
  write_text(dir + "/config.json", "{}");
  write_safetensors(dir + "/model-00001-of-00002.safetensors", {f32_entry("a", {1, 2})}, {});
  write_safetensors(dir + "/model-00002-of-00002.safetensors", {f32_entry("b", {3}), f32_entry("c", {4, 5, 6})}, {});
  write_text(dir + "/model.safetensors.index.json",
             R"({"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                 "b": "model-00002-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}})");
  HfCheckpoint ck(dir);
  ASSERT_EQ(ck.tensors().size(), 3u);
  EXPECT_EQ(ck.shards().size(), 2u);
  EXPECT_EQ(ck.find("a")->file_index, 0);
  EXPECT_EQ(ck.find("c")->file_index, 1);
  EXPECT_EQ(ck.read("a").data, (std::vector<float>{1, 2}));
  EXPECT_EQ(ck.read("c").data, (std::vector<float>{4, 5, 6}));
}

void expect_rejected(const std::string& dir, const std::string& word) {
  try {
    HfCheckpoint ck(dir);
    ADD_FAILURE() << "accepted " << dir;
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(dir));
    EXPECT_THAT(e.what(), HasSubstr(word));
  }
}

TEST(HfCheckpoint, RejectsBrokenDirectories) {
  const std::string empty = test::temp_dir();
  expect_rejected(empty, "config.json");
  expect_rejected(empty + "/missing", "not a directory");

  const std::string no_weights = test::temp_dir();
  write_text(no_weights + "/config.json", "{}");
  expect_rejected(no_weights, "model.safetensors");

  const std::string bad_config = test::temp_dir();
  write_text(bad_config + "/config.json", "{oops");
  expect_rejected(bad_config, "JSON");

  const std::string missing_shard = test::temp_dir();
  write_text(missing_shard + "/config.json", "{}");
  write_text(missing_shard + "/model.safetensors.index.json", R"({"weight_map": {"a": "nope.safetensors"}})");
  expect_rejected(missing_shard, "nope.safetensors");

  const std::string escape = test::temp_dir();
  write_text(escape + "/config.json", "{}");
  write_text(escape + "/model.safetensors.index.json", R"({"weight_map": {"a": "../x.safetensors"}})");
  expect_rejected(escape, "invalid shard");

  const std::string lacking = test::temp_dir();
  write_text(lacking + "/config.json", "{}");
  write_safetensors(lacking + "/s.safetensors", {f32_entry("a", {1})}, {});
  write_text(lacking + "/model.safetensors.index.json", R"({"weight_map": {"a": "s.safetensors", "b": "s.safetensors"}})");
  expect_rejected(lacking, "lacks");
}

}  // namespace
}  // namespace quarot
