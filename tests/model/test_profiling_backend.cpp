// The profiling backend (kernels/profiling_backend.h) on a real forward pass: it must
// not change a single logit, and it must see every op the model issues, products by
// their names.
#include <gtest/gtest.h>

#include <map>

#include "common/error.h"
#include "kernels/profiling_backend.h"
#include "model/llama_model.h"

namespace quarot {
namespace {

std::vector<int32_t> some_tokens(int64_t n, int64_t vocab) {
  std::vector<int32_t> t(n);
  for (int64_t i = 0; i < n; ++i) t[i] = static_cast<int32_t>((i * 31 + 5) % vocab);
  return t;
}

TEST(ProfilingBackend, SameLogitsAndEveryOpCountedByName) {
  const LlamaConfig c = tiny_test_config();
  const ModelWeights w = make_synthetic_model(c, 11);
  RuntimeRecipe recipe;
  recipe.k_cache.bits = recipe.v_cache.bits = 4;  // a quantized cache: appends and attention go through the wrapper
  LlamaModel plain(w, recipe, make_cpu_backend());
  auto profile = std::make_shared<OpProfile>();
  LlamaModel profiled(w, recipe, make_profiling_backend(make_cpu_backend(), profile));

  const int64_t n = 9;
  const auto tokens = some_tokens(n, c.vocab_size);
  std::vector<float> a, b;
  KvCache ca = plain.make_cache(16), cb = profiled.make_cache(16);
  plain.forward(tokens.data(), n, ca, a, true);
  profiled.forward(tokens.data(), n, cb, b, true);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "logit " << i;

  std::map<std::string, OpProfile::Entry> by_op;
  for (const auto& e : profile->entries()) by_op[e.op] = e;
  // The fused ops (rmsnorm_linears, swiglu_linear, rope_rotate_qk) are timed as one entry each.
  for (const char* name : {"rmsnorm+linear q_proj+k_proj+v_proj", "linear o_proj", "rmsnorm+linear gate_proj+up_proj",
                           "swiglu+linear down_proj", "rope+rotate q/k", "attention", "kv append"}) {
    ASSERT_TRUE(by_op.count(name)) << name;
    EXPECT_EQ(by_op[name].calls, c.n_layers) << name;
    EXPECT_EQ(by_op[name].rows, static_cast<double>(n * c.n_layers)) << name;
  }
  ASSERT_TRUE(by_op.count("linear lm_head"));
  EXPECT_EQ(by_op["linear lm_head"].calls, 1);
  EXPECT_GT(by_op["linear lm_head"].weight_bytes, 0.0);
  EXPECT_EQ(by_op["rmsnorm"].calls, 1);  // the final norm (the layers' run inside rmsnorm+linear)
  EXPECT_EQ(by_op["embed"].calls, 1);
  double sum = 0;
  for (const auto& e : profile->entries()) {
    EXPECT_GE(e.seconds, 0.0);
    sum += e.seconds;
  }
  EXPECT_DOUBLE_EQ(sum, profile->total_seconds());
  // Sorted by time, largest first.
  const auto entries = profile->entries();
  for (size_t i = 1; i < entries.size(); ++i) EXPECT_GE(entries[i - 1].seconds, entries[i].seconds);

  profile->reset();
  EXPECT_TRUE(profile->entries().empty());
  // A copied cache (as HellaSwag scoring makes) stays wrapped and keeps working.
  KvCache copy = cb;
  std::vector<float> next_a, next_b;
  KvCache ca2 = ca;
  plain.forward(tokens.data(), 1, ca2, next_a, false);
  profiled.forward(tokens.data(), 1, copy, next_b, false);
  ASSERT_EQ(next_a.size(), next_b.size());
  for (size_t i = 0; i < next_a.size(); ++i) ASSERT_EQ(next_a[i], next_b[i]) << "logit " << i;
}

// With quantized activations the products report their quantization phase (here the
// simulated backend's rotate + fake-quantize), inside the op's own time; ops without
// one report none.
TEST(ProfilingBackend, ProductsReportTheirActivationQuantizationPhase) {
  const LlamaConfig c = tiny_test_config();
  const ModelWeights w = make_synthetic_model(c, 12);
  RuntimeRecipe recipe;
  recipe.act = ActQuantSpec{4, 1.0f, 0, true};
  auto profile = std::make_shared<OpProfile>();
  LlamaModel profiled(w, recipe, make_profiling_backend(make_cpu_backend(), profile));
  const auto tokens = some_tokens(7, c.vocab_size);
  std::vector<float> logits;
  KvCache cache = profiled.make_cache(8);
  profiled.forward(tokens.data(), 7, cache, logits, true);
  constexpr std::size_t kQuantize = op_phase_index(OpPhase::kActivationQuantize);
  std::map<std::string, OpProfile::Entry> by_op;
  for (const auto& e : profile->entries()) by_op[e.op] = e;
  for (const char* name : {"rmsnorm+linear q_proj+k_proj+v_proj", "linear o_proj", "rmsnorm+linear gate_proj+up_proj",
                           "swiglu+linear down_proj"}) {
    ASSERT_TRUE(by_op.count(name)) << name;
    EXPECT_GT(by_op[name].phases.seconds[kQuantize], 0.0) << name;
    EXPECT_LE(by_op[name].phases.seconds[kQuantize], by_op[name].seconds) << name;
  }
  for (const char* name : {"attention", "kv append", "embed", "linear lm_head"}) {
    ASSERT_TRUE(by_op.count(name)) << name;
    for (const double s : by_op[name].phases.seconds) EXPECT_EQ(s, 0.0) << name;
  }
}

TEST(ProfilingBackend, RejectsAForeignKvCache) {
  const LlamaConfig c = tiny_test_config();
  auto inner = std::shared_ptr<const Backend>(make_cpu_backend());
  auto wrapped = make_profiling_backend(inner, std::make_shared<OpProfile>());
  KvCacheSpec spec;
  spec.n_layers = 1;
  spec.n_kv_heads = c.n_kv_heads;
  spec.head_dim = c.head_dim;
  spec.capacity = 4;
  auto foreign = inner->make_kv_storage(spec);
  std::vector<float> q(c.n_heads * c.head_dim), out(q.size());
  AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim};
  EXPECT_THROW(wrapped->attention(q.data(), 1, 0, *foreign, 0, shape, 1.0f, out.data()), Error);
  EXPECT_THROW(make_profiling_backend(nullptr, std::make_shared<OpProfile>()), Error);
}

}  // namespace
}  // namespace quarot
