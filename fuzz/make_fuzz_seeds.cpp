// Writes small valid GGUF and safetensors files as starting corpora:
//   make_fuzz_seeds <gguf_corpus_dir> <safetensors_corpus_dir>
#include <cstdio>
#include <string>
#include <vector>

#include "io/gguf_builder.h"
#include "io/safetensors.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <gguf_dir> <safetensors_dir>\n", argv[0]);
    return 2;
  }
  const std::string gguf_dir = argv[1], st_dir = argv[2];
  using quarot::testing::GgufBuilder;
  std::vector<float> v(64);
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.25f * static_cast<float>(i) - 8.0f;

  GgufBuilder a;
  a.add_string("general.architecture", "llama")
      .add_u32("llama.block_count", 1)
      .add_f32("llama.rope.freq_base", 10000.0f)
      .add_bool("tokenizer.ggml.add_bos_token", true)
      .add_string_array("tokenizer.ggml.tokens", {"a", "b", "<s>"})
      .add_i32_array("tokenizer.ggml.token_type", {1, 1, 3})
      .add_tensor_f32("token_embd.weight", {2, 32}, v)
      .add_tensor_f16("output_norm.weight", {32}, std::vector<float>(v.begin(), v.begin() + 32))
      .add_tensor_q8_0("blk.0.attn_q.weight", {2, 32}, v);
  a.write(gguf_dir + "/seed_model.gguf");
  GgufBuilder b;
  b.version(2).alignment(64).add_u64("u64", 1).add_i64("i64", -1).add_f64("f64", 0.5);
  b.add_tensor_raw("q4_1", {32}, quarot::testing::kGgmlQ4_1, std::vector<uint8_t>(20, 0x11));
  b.add_tensor_raw("q4_k", {256}, quarot::testing::kGgmlQ4_K, std::vector<uint8_t>(144, 0x21));
  b.add_tensor_raw("q6_k", {256}, quarot::testing::kGgmlQ6_K, std::vector<uint8_t>(210, 0x31));
  b.write(gguf_dir + "/seed_v2_quants.gguf");

  std::vector<quarot::SafetensorsEntry> entries;
  quarot::Tensor t({2, 4});
  for (int i = 0; i < 8; ++i) t.data[i] = static_cast<float>(i);
  entries.push_back(quarot::safetensors_entry_f32("w", t));
  entries.push_back({"bf16", quarot::DType::kBF16, {2}, {0x80, 0x3f, 0x00, 0xc0}});
  entries.push_back({"u8", quarot::DType::kU8, {3}, {1, 2, 3}});
  quarot::write_safetensors(st_dir + "/seed.safetensors", entries, {{"format", "pt"}});
  return 0;
}
