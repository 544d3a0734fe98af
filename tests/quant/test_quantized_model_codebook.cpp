// Codebook (CLAQ) linears in the quantized model file: exact round trip as views of
// the mapping, the model runs them, and corrupt or inconsistent files are refused
// with an error naming the file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>

#include "common/error.h"
#include "io/safetensors.h"
#include "kernels/codebook_test_util.h"
#include "kernels/cpu/cpu_backend.h"
#include "model/kv_cache.h"
#include "model/llama_model.h"
#include "model/weights.h"
#include "quant/quantized_model.h"
#include "test_support.h"

namespace quarot {
namespace {

using Entries = std::vector<SafetensorsEntry>;
using Json = nlohmann::json;

struct Fixture {
  ModelWeights weights;  // codebook linears hold their dequantized values
  std::map<std::string, test::CodebookCase> cases;
  std::map<std::string, WeightEncoding> encodings;
};

Tensor& field(ModelWeights& w, int layer, const std::string& f) {
  LayerWeights& l = w.layers[layer];
  if (f == "wq") return l.wq;
  if (f == "wk") return l.wk;
  if (f == "wo") return l.wo;
  return l.w_down;
}

// layers.0.wq: mixed 2/3/4-bit columns with outliers; layers.1.w_down: 2-bit, none;
// layers.0.wk: one 8-bit column among 1-bit ones.
Fixture make_fixture() {
  Fixture f;
  f.weights = make_synthetic_model(tiny_test_config(), 42);
  struct Spec {
    int layer;
    const char* field;
    std::vector<int> widths;
    double outliers;
  };
  uint64_t seed = 5;
  for (const Spec& s : {Spec{0, "wq", {2, 3, 4}, 0.01}, Spec{1, "w_down", {2}, 0.0}, Spec{0, "wk", {1, 8}, 0.005}}) {
    Tensor& t = field(f.weights, s.layer, s.field);
    test::CodebookCase cc = test::random_codebook(t.shape[0], t.shape[1], s.widths, seed++, s.outliers);
    t.data = cc.naive();
    const std::string name = "layers." + std::to_string(s.layer) + "." + s.field;
    f.encodings.emplace(name, cc.encode());
    f.cases.emplace(name, std::move(cc));
  }
  return f;
}

std::string save(const Fixture& f, const std::string& name) {
  const std::string path = test::temp_dir() + "/" + name;
  save_quantized_model(path, f.weights, {}, RuntimeRecipe{}, Json::object(), "{}", {}, f.encodings);
  return path;
}

TEST(QuantizedModelCodebook, RoundTripIsExactAndViewsTheFile) {
  const Fixture f = make_fixture();
  const std::string path = save(f, "cb.safetensors");
  const LoadedQuantizedModel m = load_quantized_model(path);
  EXPECT_EQ(m.info["format_version"], 2);
  EXPECT_EQ(m.info["tensors"]["layers.0.wq"]["kind"], "codebook");
  SafetensorsFile file(path);
  for (const auto& [name, cc] : f.cases) {
    const WeightEncoding& e = m.encoded.at(name);
    ASSERT_EQ(e.kind, WeightKind::kCodebook) << name;
    EXPECT_EQ(e.dequantize(), cc.naive()) << name;
    EXPECT_EQ(e.n_outliers, static_cast<int64_t>(cc.outliers.size())) << name;
    EXPECT_EQ(e.stored_bytes(), f.encodings.at(name).stored_bytes()) << name;
    const TensorInfo* t = file.find(name + ".cb_indices");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(0, std::memcmp(e.data, file.tensor_data(*t), t->nbytes));
    EXPECT_TRUE(m.weights.layers[0].wq.empty());  // not expanded into FP32 on load
  }
  // dequantized_weights() and keep_quantized give the formula's values.
  const ModelWeights dq = m.dequantized_weights();
  EXPECT_EQ(dq.layers[0].wq.data, f.weights.layers[0].wq.data);
  const LoadedQuantizedModel kept = load_quantized_model(path, true);
  EXPECT_EQ(kept.weights.layers[1].w_down.data, f.weights.layers[1].w_down.data);
  EXPECT_EQ(kept.weights.layers[0].wk.data, f.weights.layers[0].wk.data);
  EXPECT_EQ(m.parameter_count(), f.weights.parameter_count());
}

// The backend's lookup-table kernels on the file's views give the simulated model's
// logits (FP32 on the dequantized weights) up to summation order.
TEST(QuantizedModelCodebook, ModelRunsOnTheKernels) {
  const Fixture f = make_fixture();
  const LoadedQuantizedModel m = load_quantized_model(save(f, "run.safetensors"));
  const auto fast = make_cpu_backend(CpuBackendOptions{});
  const auto sim = make_cpu_backend(CpuBackendOptions{.simulate = true, .isa = {}});
  LlamaModel a(m.weights, m.recipe, fast, m.encoded), b(m.weights, m.recipe, sim, m.encoded);
  const std::vector<int32_t> tokens = {1, 5, 9, 77, 3, 200, 14, 8, 8, 30, 2};
  std::vector<float> la, lb;
  KvCache ca = a.make_cache(32), cb = b.make_cache(32);
  a.forward(tokens.data(), static_cast<int64_t>(tokens.size()), ca, la, true);  // prefill path (n > 8)
  b.forward(tokens.data(), static_cast<int64_t>(tokens.size()), cb, lb, true);
  const int32_t next = 42;
  std::vector<float> da, db;
  a.forward(&next, 1, ca, da, false);  // decode path
  b.forward(&next, 1, cb, db, false);
  la.insert(la.end(), da.begin(), da.end());
  lb.insert(lb.end(), db.begin(), db.end());
  ASSERT_EQ(la.size(), lb.size());
  double max_diff = 0.0, max_abs = 0.0;
  for (size_t i = 0; i < la.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(la[i] - lb[i])));
    max_abs = std::max(max_abs, static_cast<double>(std::fabs(lb[i])));
  }
  EXPECT_GT(max_abs, 0.1);
  EXPECT_LE(max_diff, 1e-4 * max_abs);
}

template <typename Mutate>
std::string rewrite(const std::string& src, const std::string& name, Mutate mutate) {
  SafetensorsFile file(src);
  Entries entries;
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
  Json meta = Json::parse(metadata.at("quarot"));
  mutate(entries, meta);
  metadata["quarot"] = meta.dump();
  const std::string path = test::temp_dir() + "/" + name;
  write_safetensors(path, entries, metadata);
  return path;
}

SafetensorsEntry& entry(Entries& es, const std::string& name) {
  for (auto& e : es)
    if (e.name == name) return e;
  throw std::runtime_error("no entry " + name);
}

void expect_load_error(const std::string& path, const std::string& part) {
  try {
    load_quantized_model(path);
    ADD_FAILURE() << "no error loading " << path;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(part), std::string::npos) << msg;
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
  }
}

TEST(QuantizedModelCodebook, CorruptionIsReported) {
  const std::string src = save(make_fixture(), "c.safetensors");
  const std::string q = "layers.0.wq";
  auto drop = [](const std::string& n) {
    return [n](Entries& es, Json&) { std::erase_if(es, [&](const SafetensorsEntry& e) { return e.name == n; }); };
  };
  expect_load_error(rewrite(src, "m1.safetensors", drop(q + ".cb_centroids")), "cb_centroids is missing");
  expect_load_error(rewrite(src, "m2.safetensors", drop(q + ".cb_outlier_cols")), "cb_outlier_cols is missing");
  expect_load_error(rewrite(src, "short.safetensors",
                            [&](Entries& es, Json&) {
                              SafetensorsEntry& e = entry(es, q + ".cb_indices");
                              e.shape[0] -= 1;
                              e.data.pop_back();
                            }),
                    "cb_indices has shape");
  expect_load_error(rewrite(src, "bits.safetensors", [&](Entries& es, Json&) { entry(es, q + ".cb_bits").data[3] = 9; }),
                    "outside 1..8");
  expect_load_error(rewrite(src, "bits0.safetensors", [&](Entries& es, Json&) { entry(es, q + ".cb_bits").data[0] = 0; }),
                    "outside 1..8");
  // A width change moves every size: the centroid table no longer fits.
  expect_load_error(rewrite(src, "bits2.safetensors", [&](Entries& es, Json&) { entry(es, q + ".cb_bits").data[0] = 5; }),
                    "cb_centroids has shape");
  expect_load_error(rewrite(src, "nan.safetensors",
                            [&](Entries& es, Json&) {
                              uint8_t* d = entry(es, q + ".cb_centroids").data.data();
                              d[2] = 0x00, d[3] = 0x7e;  // NaN
                            }),
                    "centroid 1 is not finite");
  expect_load_error(rewrite(src, "ocol.safetensors",
                            [&](Entries& es, Json&) {
                              uint8_t* d = entry(es, q + ".cb_outlier_cols").data.data();
                              d[0] = 0xff, d[1] = 0xff;
                            }),
                    "out of range");
  expect_load_error(rewrite(src, "optr.safetensors",
                            [&](Entries& es, Json&) {
                              uint8_t* d = entry(es, q + ".cb_outlier_row_ptr").data.data();
                              d[0] = 1;  // row_ptr[0] must be 0
                            }),
                    "row pointers");
  expect_load_error(rewrite(src, "ocount.safetensors", [&](Entries&, Json& m) { m["tensors"][q]["outliers"] = 1; }),
                    "cb_outlier_cols has shape");
  expect_load_error(rewrite(src, "ocount2.safetensors", [&](Entries&, Json& m) { m["tensors"][q]["outliers"] = -4; }),
                    "out of range");
  expect_load_error(rewrite(src, "mbits.safetensors", [&](Entries&, Json& m) { m["tensors"][q]["bits"] = 3; }),
                    "metadata says 3 bits");
  expect_load_error(rewrite(src, "stripe.safetensors", [&](Entries&, Json& m) { m["tensors"][q]["stripe_rows"] = 32; }),
                    "stripes of 32 rows");
  expect_load_error(rewrite(src, "nokey.safetensors", [&](Entries&, Json& m) { m["tensors"][q].erase("outliers"); }),
                    "malformed metadata");
  expect_load_error(rewrite(src, "shape.safetensors", [&](Entries&, Json& m) { m["tensors"][q]["shape"] = {64, 32}; }),
                    "expected [64, 64]");
  expect_load_error(rewrite(src, "embed.safetensors",
                            [&](Entries&, Json& m) { m["tensors"]["tok_embeddings"] = m["tensors"][q]; }),
                    "tok_embeddings cannot use encoding 'codebook'");
  expect_load_error(rewrite(src, "dtype.safetensors",
                            [&](Entries& es, Json&) { entry(es, q + ".cb_centroids").dtype = DType::kI16; }),
                    "expected F16");
  // Truncation anywhere in the data section is caught by the container.
  const std::vector<uint8_t> bytes = test::read_bytes(src);
  for (size_t cut : {size_t{100}, bytes.size() / 2}) {
    const std::string truncated = test::temp_dir() + "/t" + std::to_string(cut) + ".safetensors";
    test::write_bytes(truncated, std::vector<uint8_t>(bytes.begin(), bytes.end() - cut));
    EXPECT_THROW(load_quantized_model(truncated), Error);
  }
}

TEST(QuantizedModelCodebook, SaveRefusesInconsistentInput) {
  const Fixture f = make_fixture();
  const std::string dir = test::temp_dir();
  auto expect_save_error = [&](const std::map<std::string, WeightEncoding>& cb,
                               const std::map<std::string, QuantizedMatrix>& qw, const std::string& part) {
    try {
      save_quantized_model(dir + "/bad.safetensors", f.weights, qw, RuntimeRecipe{}, Json::object(), "{}", {}, cb);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect_save_error({{"layers.0.wv", f.encodings.at("layers.0.wq")}}, {}, "is 64x64, the model needs 32x64");
  expect_save_error({{"layers.9.wq", f.encodings.at("layers.0.wq")}}, {}, "not a linear of this model");
  expect_save_error({{"tok_embeddings", f.encodings.at("layers.0.wq")}}, {}, "not a linear of this model");
  std::vector<float> dense(64 * 64, 0.5f);
  expect_save_error({{"layers.0.wq", f32_weight(dense.data(), 64, 64)}}, {}, "has encoding f32");
  QuantizedMatrix qm;
  expect_save_error({{"layers.0.wq", f.encodings.at("layers.0.wq")}}, {{"layers.0.wq", qm}}, "both");
  EXPECT_FALSE(std::filesystem::exists(dir + "/bad.safetensors"));
}

}  // namespace
}  // namespace quarot
