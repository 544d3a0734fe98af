#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "common/error.h"
#include "io/safetensors.h"
#include "model/weights.h"
#include "quant/quantized_model.h"
#include "quant/rtn.h"
#include "quant/scheme.h"
#include "test_support.h"

namespace quarot {
namespace {

namespace fs = std::filesystem;

struct Fixture {
  ModelWeights weights;  // quantized linears hold their dequantized values
  std::map<std::string, QuantizedMatrix> qweights;
  RuntimeRecipe recipe;
  nlohmann::json info;
};

Tensor& linear_by_name(ModelWeights& w, const std::string& name) {
  if (name == "lm_head") return w.lm_head;
  const size_t a = name.find('.'), b = name.find('.', a + 1);
  LayerWeights& l = w.layers[std::stoi(name.substr(a + 1, b - a - 1))];
  const std::string f = name.substr(b + 1);
  if (f == "wq") return l.wq;
  if (f == "wk") return l.wk;
  if (f == "wv") return l.wv;
  if (f == "wo") return l.wo;
  if (f == "w_gate") return l.w_gate;
  if (f == "w_up") return l.w_up;
  return l.w_down;
}

// A tiny model with every layer's linears quantized: mixed widths, sym/asym and
// groups, so every code path of the format is exercised in one file.
Fixture make_fixture() {
  Fixture f;
  f.weights = make_synthetic_model(tiny_test_config(), 42);
  int i = 0;
  for (const std::string& name : linear_weight_names(f.weights.config)) {
    if (name == "lm_head") continue;
    WeightQuantSpec spec;
    spec.bits = (i % 3 == 0) ? 8 : (i % 3 == 1 ? 4 : 3);
    spec.symmetric = i % 2 == 0;
    spec.group = i % 4 == 3 ? 16 : 0;
    Tensor& t = linear_by_name(f.weights, name);
    QuantizedMatrix q = quantize_rtn(t, spec, name);
    t = q.dequantize();
    f.qweights.emplace(name, std::move(q));
    ++i;
  }
  QuantizeOptions o;
  apply_quant_specs(o, f.recipe);
  f.recipe.norms_folded = true;
  f.recipe.qk_rotation = {1, 16, 1, {}};
  f.recipe.down_proj_input = {5, 32, 1, {}};  // 160 = 5 * 32
  for (int r = 0; r < 5; ++r)
    for (int c = 0; c < 5; ++c) f.recipe.down_proj_input.m.push_back(r == c ? 1.0f : 0.0f);
  f.recipe.down_proj_input.m[1] = 0.25f;  // values only need to survive the round trip
  f.info = {{"scheme", "W4A4KV4"}, {"options", to_json(o)},
            {"rotation", {{"mode", "hadamard"}, {"seed", 0}, {"sizes", {64, 160}}, {"description", "test"}}}};
  return f;
}

std::string save_fixture(const Fixture& f, const std::string& name, QuantizedModelWriteOptions opts = {}) {
  const std::string path = test::temp_dir() + "/" + name;
  save_quantized_model(path, f.weights, f.qweights, f.recipe, f.info, "{\"model\": {}}", opts);
  return path;
}

TEST(QuantizedModelFile, RoundTripIsExact) {
  const Fixture f = make_fixture();
  const std::string path = save_fixture(f, "model.safetensors", {.fp16_embedding = false, .fp16_lm_head = false});
  EXPECT_TRUE(is_quantized_model_file(path));
  const LoadedQuantizedModel m = load_quantized_model(path, true);
  EXPECT_EQ(m.tokenizer_json, "{\"model\": {}}");
  EXPECT_EQ(m.info["scheme"], "W4A4KV4");
  EXPECT_EQ(m.info["format_version"], 3);  // the fixture has 3-bit linears, stored densely
  EXPECT_EQ(m.info["rotation"]["mode"], "hadamard");
  EXPECT_EQ(m.weights.config.hidden, f.weights.config.hidden);
  EXPECT_EQ(m.weights.config.bos_id, f.weights.config.bos_id);
  EXPECT_EQ(m.weights.tok_embeddings.data, f.weights.tok_embeddings.data);
  EXPECT_EQ(m.weights.output_norm.data, f.weights.output_norm.data);
  EXPECT_TRUE(m.weights.lm_head.empty());
  for (size_t i = 0; i < f.weights.layers.size(); ++i) {
    const LayerWeights &a = f.weights.layers[i], &b = m.weights.layers[i];
    EXPECT_EQ(a.attn_norm.data, b.attn_norm.data);
    EXPECT_EQ(a.ffn_norm.data, b.ffn_norm.data);
    for (auto [x, y] : {std::pair{&a.wq, &b.wq}, {&a.wk, &b.wk}, {&a.wv, &b.wv}, {&a.wo, &b.wo},
                        {&a.w_gate, &b.w_gate}, {&a.w_up, &b.w_up}, {&a.w_down, &b.w_down}}) {
      EXPECT_EQ(x->shape, y->shape);
      EXPECT_EQ(x->data, y->data);
    }
  }
  ASSERT_EQ(m.qweights.size(), f.qweights.size());
  for (const auto& [name, q] : f.qweights) {
    const QuantizedMatrix& back = m.qweights.at(name);
    EXPECT_EQ(back.bits, q.bits) << name;
    EXPECT_EQ(back.group, q.group) << name;
    EXPECT_EQ(back.symmetric, q.symmetric) << name;
    EXPECT_EQ(back.codes, q.codes) << name;
    EXPECT_EQ(back.scales, q.scales) << name;
    EXPECT_EQ(back.zeros, q.zeros) << name;
  }
  // The recipe comes back field by field.
  const RuntimeRecipe& r = m.recipe;
  EXPECT_EQ(r.act.bits, 4);
  EXPECT_FLOAT_EQ(r.act.clip_ratio, 0.9f);
  EXPECT_EQ(r.k_cache.bits, 4);
  EXPECT_FALSE(r.k_cache.symmetric);
  EXPECT_FLOAT_EQ(r.v_cache.clip_ratio, 0.95f);
  EXPECT_TRUE(r.norms_folded);
  EXPECT_EQ(r.qk_rotation.p, 16);
  EXPECT_EQ(r.down_proj_input.k, 5);
  EXPECT_EQ(r.down_proj_input.p, 32);
  EXPECT_EQ(r.down_proj_input.m, f.recipe.down_proj_input.m);
  EXPECT_TRUE(r.o_proj_input.is_identity());
}

TEST(QuantizedModelFile, CodesArePackedAsTheFormatSays) {
  const Fixture f = make_fixture();
  const std::string path = save_fixture(f, "packed.safetensors");
  SafetensorsFile file(path);
  const nlohmann::json meta = nlohmann::json::parse(file.metadata().at("quarot"));
  int dense = 0;
  for (const auto& [name, q] : f.qweights) {
    const TensorInfo* t = file.find(name + ".qweight");
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->dtype, DType::kU8);
    // 2/3 bits: a bit stream; 4: nibbles; 5..8: bytes. Each row starts on a byte.
    const int64_t row_bytes = q.bits < 4 ? (q.cols * q.bits + 7) / 8 : q.bits == 4 ? (q.cols + 1) / 2 : q.cols;
    EXPECT_EQ(t->shape, (std::vector<int64_t>{q.rows, row_bytes})) << name;
    const uint8_t* d = file.tensor_data(*t);
    if (q.bits < 4) {
      ++dense;
      EXPECT_EQ(meta["tensors"][name]["packing"], "bits-low-first") << name;
      // The first three codes, low bits first; the third straddles a byte for 3 bits.
      const uint32_t first = d[0] | (d[1] << 8);
      EXPECT_EQ(first & ((1u << (3 * q.bits)) - 1),
                q.codes[0] | (q.codes[1] << q.bits) | (q.codes[2] << (2 * q.bits))) << name;
      // Row 1 starts on its own byte.
      EXPECT_EQ(d[row_bytes] & ((1u << q.bits) - 1), q.codes[q.cols]) << name;
    } else if (q.bits == 4) {
      EXPECT_EQ(meta["tensors"][name]["packing"], "nibbles-low-first") << name;
      EXPECT_EQ(d[0], q.codes[0] | (q.codes[1] << 4)) << name;
    } else {
      EXPECT_EQ(meta["tensors"][name]["packing"], "bytes") << name;
      EXPECT_EQ(d[0], q.codes[0]) << name;
    }
    EXPECT_EQ(file.find(name + ".zeros") != nullptr, !q.symmetric) << name;
    EXPECT_EQ(file.find(name), nullptr) << name;  // no FP copy of a quantized linear
  }
  EXPECT_GT(dense, 0);
}

TEST(QuantizedModelFile, Fp16OptionStoresHalfTensors) {
  const Fixture f = make_fixture();
  const std::string path = save_fixture(f, "half.safetensors", {.fp16_tensors = true});
  SafetensorsFile file(path);
  EXPECT_EQ(file.find("tok_embeddings")->dtype, DType::kF16);
  EXPECT_EQ(file.find("output_norm")->dtype, DType::kF16);
  const LoadedQuantizedModel m = load_quantized_model(path);
  const ModelWeights w = m.dequantized_weights();
  for (size_t i = 0; i < f.weights.tok_embeddings.data.size(); ++i)
    ASSERT_NEAR(w.tok_embeddings.data[i], f.weights.tok_embeddings.data[i],
                1e-3 * std::fabs(f.weights.tok_embeddings.data[i]) + 1e-7);
  EXPECT_EQ(w.layers[0].wq.data, f.weights.layers[0].wq.data);  // integer tensors unaffected
}

TEST(QuantizedModelFile, MatricesAreSixteenBitByDefaultAndNormsStayF32) {
  const Fixture f = make_fixture();
  const std::string path = save_fixture(f, "default.safetensors");
  SafetensorsFile file(path);
  EXPECT_EQ(file.find("tok_embeddings")->dtype, DType::kF16);
  EXPECT_EQ(file.find("output_norm")->dtype, DType::kF32);
  // Loaded without a copy: the embedding stays an F16 view, the linears integer views.
  const LoadedQuantizedModel m = load_quantized_model(path);
  ASSERT_TRUE(m.encoded.count("tok_embeddings"));
  EXPECT_EQ(m.encoded.at("tok_embeddings").kind, WeightKind::kF16);
  EXPECT_TRUE(m.weights.tok_embeddings.empty());
  EXPECT_EQ(m.encoded.at("layers.0.wq").kind, WeightKind::kIntGrid);
  EXPECT_TRUE(m.weights.layers[0].wq.empty());
  EXPECT_EQ(m.parameter_count(), f.weights.parameter_count());
}

TEST(QuantizedModelFile, EncodedWeightsAreViewsOfTheMappedFile) {
  const Fixture f = make_fixture();
  const std::string path = save_fixture(f, "views.safetensors");
  const LoadedQuantizedModel m = load_quantized_model(path);
  SafetensorsFile file(path);
  const WeightEncoding& e = m.encoded.at("layers.1.w_down");
  const QuantizedMatrix& q = f.qweights.at("layers.1.w_down");
  // The codes are the file's packed bytes, unchanged.
  const TensorInfo* t = file.find("layers.1.w_down.qweight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(0, std::memcmp(e.data, file.tensor_data(*t), t->nbytes));
  EXPECT_EQ(e.bits, q.bits);
  // Dequantizing the view gives exactly the quantizer's FP32 weights.
  EXPECT_EQ(e.dequantize(), q.dequantize().data);
}

// Rewrites a saved file with `mutate` applied to its tensors and metadata.
template <typename Mutate>
std::string rewrite(const std::string& src, const std::string& name, Mutate mutate) {
  SafetensorsFile file(src);
  std::vector<SafetensorsEntry> entries;
  for (const TensorInfo& t : file.tensors()) {
    SafetensorsEntry e;
    e.name = t.name;
    e.dtype = t.dtype;
    e.shape = t.shape;
    const uint8_t* d = file.tensor_data(t);
    e.data.assign(d, d + t.nbytes);
    entries.push_back(std::move(e));
  }
  std::map<std::string, std::string> metadata = file.metadata();
  nlohmann::json meta = nlohmann::json::parse(metadata.at("quarot"));
  mutate(entries, meta);
  metadata["quarot"] = meta.dump();
  const std::string path = test::temp_dir() + "/" + name;
  write_safetensors(path, entries, metadata);
  return path;
}

void expect_load_error(const std::string& path, const std::string& part) {
  try {
    load_quantized_model(path);
    ADD_FAILURE() << "no error loading " << path;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(part), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;  // names the file
  }
}

using Entries = std::vector<SafetensorsEntry>;
using Json = nlohmann::json;

SafetensorsEntry& entry(Entries& es, const std::string& name) {
  for (auto& e : es)
    if (e.name == name) return e;
  throw std::runtime_error("no entry " + name);
}

TEST(QuantizedModelFile, NewerFormatVersionIsRefused) {
  const std::string src = save_fixture(make_fixture(), "v.safetensors");
  const std::string path = rewrite(src, "v4.safetensors", [](Entries&, Json& m) { m["format_version"] = 4; });
  expect_load_error(path, "written by a newer quarot: format 4, this build reads 3");
}

TEST(QuantizedModelFile, CorruptionIsReported) {
  const Fixture f = make_fixture();
  const std::string src = save_fixture(f, "c.safetensors");
  // layers.0.wq is 8-bit symmetric, layers.0.wk 4-bit asymmetric (see make_fixture).
  ASSERT_EQ(f.qweights.at("layers.0.wk").bits, 4);
  expect_load_error(rewrite(src, "missing.safetensors",
                            [](Entries& es, Json&) {
                              std::erase_if(es, [](const SafetensorsEntry& e) { return e.name == "layers.1.ffn_norm"; });
                            }),
                    "tensor layers.1.ffn_norm is missing");
  expect_load_error(rewrite(src, "missing_scales.safetensors",
                            [](Entries& es, Json&) {
                              std::erase_if(es, [](const SafetensorsEntry& e) { return e.name == "layers.0.wk.scales"; });
                            }),
                    "layers.0.wk.scales is missing");
  expect_load_error(rewrite(src, "short.safetensors",
                            [](Entries& es, Json&) {
                              SafetensorsEntry& e = entry(es, "layers.0.wk.qweight");
                              e.shape[1] -= 1;
                              e.data.resize(e.shape[0] * e.shape[1]);
                            }),
                    "layers.0.wk.qweight holds");
  expect_load_error(rewrite(src, "nan.safetensors",
                            [](Entries& es, Json&) {
                              SafetensorsEntry& e = entry(es, "layers.0.wq.scales");
                              const float nan = std::nanf("");
                              std::memcpy(e.data.data() + 4, &nan, 4);
                            }),
                    "is not a positive finite number");
  expect_load_error(rewrite(src, "shape.safetensors",
                            [](Entries& es, Json&) {
                              SafetensorsEntry& e = entry(es, "output_norm");
                              e.shape = {e.shape[0] / 2, 2};
                            }),
                    "output norm");
  expect_load_error(rewrite(src, "kind.safetensors", [](Entries&, Json& m) { m["tensors"]["layers.0.wq"]["kind"] = "lattice"; }),
                    "encoding 'lattice'");
  expect_load_error(rewrite(src, "bits.safetensors", [](Entries&, Json& m) { m["tensors"]["layers.0.wk"]["bits"] = 8; }),
                    "packing 'nibbles-low-first' does not hold 8-bit codes");
  expect_load_error(rewrite(src, "bits_legacy.safetensors",
                            [](Entries&, Json& m) {
                              m["tensors"]["layers.0.wk"]["bits"] = 8;
                              m["tensors"]["layers.0.wk"].erase("packing");
                            }),
                    "layers.0.wk.qweight holds");
  expect_load_error(rewrite(src, "meta.safetensors", [](Entries&, Json& m) { m.erase("recipe"); }), "lacks");
  expect_load_error(rewrite(src, "format.safetensors", [](Entries&, Json& m) { m["format"] = 3; }), "does not describe");
  expect_load_error(rewrite(src, "config.safetensors", [](Entries&, Json& m) { m["config"]["hidden"] = "wide"; }),
                    "config hidden is not an integer (\"wide\")");
  // Numbers out of their type's range are errors, not undefined casts.
  expect_load_error(rewrite(src, "theta.safetensors", [](Entries&, Json& m) { m["config"]["rope_theta"] = 1e300; }),
                    "config rope_theta 1e+300 is out of range");
  expect_load_error(rewrite(src, "group.safetensors",
                            [](Entries&, Json& m) { m["tensors"]["layers.0.wv"]["group"] = 5.8e113; }),
                    "tensor layers.0.wv group is not an integer (5.8e+113)");
  expect_load_error(rewrite(src, "bits.safetensors",
                            [](Entries&, Json& m) { m["recipe"]["act"]["bits"] = int64_t{1} << 40; }),
                    "recipe act.bits 1099511627776 is out of range");
  expect_load_error(rewrite(src, "code.safetensors",
                            [&](Entries& es, Json& m) {
                              // A 3-bit linear as older files stored it, in nibbles, where 0xF is out of range.
                              const QuantizedMatrix& q = f.qweights.at("layers.0.wv");
                              m["tensors"]["layers.0.wv"].erase("packing");
                              SafetensorsEntry& e = entry(es, "layers.0.wv.qweight");
                              e.shape = {q.rows, (q.cols + 1) / 2};
                              e.data.assign(static_cast<size_t>(q.rows * e.shape[1]), 0);
                              e.data[0] = 0xff;
                            }),
                    "exceeds the 3-bit range");
  expect_load_error(rewrite(src, "packing.safetensors",
                            [](Entries&, Json& m) { m["tensors"]["layers.0.wv"]["packing"] = "trits"; }),
                    "unknown packing \"trits\"");
  expect_load_error(rewrite(src, "packing_bits.safetensors",
                            [](Entries&, Json& m) { m["tensors"]["layers.0.wv"]["packing"] = "bytes"; }),
                    "packing 'bytes' does not hold 3-bit codes");
  expect_load_error(rewrite(src, "short_dense.safetensors",
                            [](Entries& es, Json&) {
                              SafetensorsEntry& e = entry(es, "layers.0.wv.qweight");
                              e.data.resize(e.data.size() - 1);
                              e.shape = {static_cast<int64_t>(e.data.size())};
                            }),
                    "layers.0.wv.qweight holds");
  // Truncated file: the container itself is checked.
  const std::string truncated = test::temp_dir() + "/truncated.safetensors";
  std::vector<uint8_t> bytes = test::read_bytes(src);
  bytes.resize(bytes.size() - 100);
  test::write_bytes(truncated, bytes);
  EXPECT_THROW(load_quantized_model(truncated), Error);
  EXPECT_TRUE(is_quantized_model_file(src));
  EXPECT_FALSE(is_quantized_model_file(truncated));
}

// Files from before format version 3 kept 2/3-bit codes in nibbles without a "packing"
// key; they load to the same codes as the dense form.
TEST(QuantizedModelFile, NibblePackedTwoAndThreeBitFilesStillLoad) {
  Fixture f = make_fixture();
  // One 2-bit linear too (the fixture has 3, 4 and 8).
  WeightQuantSpec two;
  two.bits = 2;
  two.symmetric = false;
  Tensor& t = linear_by_name(f.weights, "layers.1.wo");
  f.qweights.erase("layers.1.wo");
  QuantizedMatrix q2 = quantize_rtn(t, two, "layers.1.wo");
  t = q2.dequantize();
  f.qweights.emplace("layers.1.wo", std::move(q2));
  const std::string src = save_fixture(f, "dense.safetensors");
  const std::string old = rewrite(src, "nibbles.safetensors", [&](Entries& es, Json& m) {
    m["format_version"] = 1;
    for (const auto& [name, q] : f.qweights) {
      if (q.bits >= 4) continue;
      m["tensors"][name].erase("packing");
      SafetensorsEntry& e = entry(es, name + ".qweight");
      e.shape = {q.rows, (q.cols + 1) / 2};
      e.data.clear();
      for (int64_t r = 0; r < q.rows; ++r) {
        const std::vector<uint8_t> row(q.codes.begin() + r * q.cols, q.codes.begin() + (r + 1) * q.cols);
        const std::vector<uint8_t> p = pack_codes(row, q.bits);
        e.data.insert(e.data.end(), p.begin(), p.end());
      }
    }
  });
  const LoadedQuantizedModel a = load_quantized_model(src, true), b = load_quantized_model(old, true);
  for (const auto& [name, q] : f.qweights) {
    EXPECT_EQ(a.qweights.at(name).codes, q.codes) << name;
    EXPECT_EQ(b.qweights.at(name).codes, q.codes) << name;
    // In memory both are the nibbles the kernels read.
    const WeightEncoding &ea = a.encoded.at(name), &eb = b.encoded.at(name);
    EXPECT_EQ(0, std::memcmp(ea.data, eb.data, static_cast<size_t>(ea.rows * ea.row_bytes()))) << name;
    EXPECT_EQ(ea.dequantize(), q.dequantize().data) << name;
  }
  // The dense file is smaller by the 2/3-bit rows' difference.
  int64_t saved = 0;
  for (const auto& [name, q] : f.qweights)
    if (q.bits < 4) saved += q.rows * ((q.cols + 1) / 2 - (q.cols * q.bits + 7) / 8);
  EXPECT_GT(saved, 0);
  auto code_bytes = [](const std::string& path) {
    int64_t n = 0;
    const SafetensorsFile file(path);  // named: a temporary would die before the loop reads its list
    for (const TensorInfo& t : file.tensors())
      if (t.name.ends_with(".qweight")) n += static_cast<int64_t>(t.nbytes);
    return n;
  };
  EXPECT_EQ(code_bytes(old) - code_bytes(src), saved);
}

TEST(QuantizedModelFile, PlainSafetensorsIsNotAQuantizedModel) {
  const std::string path = test::temp_dir() + "/plain.safetensors";
  write_safetensors(path, {safetensors_entry_f32("x", Tensor({2}, 1.0f))}, {});
  EXPECT_FALSE(is_quantized_model_file(path));
  EXPECT_FALSE(is_quantized_model_file(test::temp_dir()));
  EXPECT_FALSE(is_quantized_model_file(test::temp_dir() + "/does-not-exist"));
  try {
    load_quantized_model(path);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a quarot quantized model"), std::string::npos);
  }
}

TEST(QuantizedModelFile, FailedSaveLeavesNothingBehind) {
  Fixture f = make_fixture();
  const std::string dir = test::temp_dir() + "/atomic";
  fs::create_directories(dir);
  const std::string path = dir + "/model.safetensors";
  // A quantized tensor of the wrong shape: refused before anything is written.
  std::map<std::string, QuantizedMatrix> bad = f.qweights;
  bad["layers.0.wq"] = f.qweights.at("layers.0.wk");
  EXPECT_THROW(save_quantized_model(path, f.weights, bad, f.recipe, f.info, ""), Error);
  std::map<std::string, QuantizedMatrix> unknown = f.qweights;
  unknown["layers.0.attn_norm"] = f.qweights.at("layers.0.wk");
  EXPECT_THROW(save_quantized_model(path, f.weights, unknown, f.recipe, f.info, ""), Error);
  // A NaN in an FP tensor.
  ModelWeights nan_weights = f.weights;
  nan_weights.output_norm.data[3] = std::nanf("");
  EXPECT_THROW(save_quantized_model(path, nan_weights, f.qweights, f.recipe, f.info, ""), Error);
  EXPECT_TRUE(fs::is_empty(dir));
  // A good save over an existing file replaces it; a failing one keeps the old file.
  save_quantized_model(path, f.weights, f.qweights, f.recipe, f.info, "tok");
  const auto before = test::read_bytes(path);
  EXPECT_THROW(save_quantized_model(path, nan_weights, f.qweights, f.recipe, f.info, ""), Error);
  EXPECT_EQ(test::read_bytes(path), before);
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path().filename().string());
  EXPECT_EQ(files, std::vector<std::string>{"model.safetensors"});
  // An unwritable destination.
  EXPECT_THROW(save_quantized_model(dir + "/no/such/dir/m.safetensors", f.weights, f.qweights, f.recipe, f.info, ""),
               Error);
  EXPECT_FALSE(fs::exists(dir + "/no"));
}

}  // namespace
}  // namespace quarot
