// QuantKvStorage appends K and V in one parallel region (finiteness checks first, then
// each position's codes): it must store exactly what each side's QuantKvLayerStore
// stores on its own, keep an FP32 side as given, and change nothing when a value on
// either side is not finite.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "kernel_test_util.h"
#include "kernels/cpu/quant_kv_storage.h"

namespace quarot {
namespace {

KvCacheSpec spec_for(int v_bits) {
  KvCacheSpec s;
  s.n_layers = 2;
  s.n_kv_heads = 3;
  s.head_dim = 64;
  s.capacity = 600;
  s.k = KvQuantSpec{4, 0.95f, 64, false};
  s.v = KvQuantSpec{v_bits, 0.9f, 32, false};
  return s;
}

void expect_same_store(const QuantKvLayerStore& a, const QuantKvLayerStore& b, const char* side) {
  ASSERT_EQ(a.size(), b.size()) << side;
  const QuantKvLayout& l = a.layout();
  for (int64_t head = 0; head < l.n_kv_heads; ++head) {
    ASSERT_EQ(std::memcmp(a.codes(head, 0), b.codes(head, 0), a.size() * l.code_bytes_per_head()), 0)
        << side << " codes, head " << head;
    ASSERT_EQ(std::memcmp(a.params(head, 0), b.params(head, 0), a.size() * 2 * l.groups_per_head() * sizeof(float)),
              0)
        << side << " scales and zeros, head " << head;
  }
}

TEST(QuantKvStorage, BothSidesStoreWhatTheirLayerStoresStore) {
  const KvCacheSpec s = spec_for(4);
  QuantKvStorage storage(s);
  QuantKvLayerStore k_ref(kv_layout(s, s.k), s.capacity), v_ref(kv_layout(s, s.v), s.capacity);
  const int64_t kvd = s.kv_dim();
  const auto k = test::random_floats(520 * kvd, 1, -2.0, 2.0);
  const auto v = test::random_floats(520 * kvd, 2, -1.0, 3.0);
  // A prompt (the parallel path), one decode step, a few more; layer 1 only.
  const int64_t pieces[][2] = {{0, 512}, {512, 1}, {513, 7}};
  for (const auto& [pos0, n] : pieces) {
    storage.append(1, pos0, n, k.data() + pos0 * kvd, v.data() + pos0 * kvd);
    k_ref.append(k.data() + pos0 * kvd, n, pos0, false);
    v_ref.append(v.data() + pos0 * kvd, n, pos0, false);
  }
  expect_same_store(*storage.k(1).quant, k_ref, "K");
  expect_same_store(*storage.v(1).quant, v_ref, "V");
  EXPECT_EQ(storage.k(0).quant->size(), 0);  // the other layer untouched
}

TEST(QuantKvStorage, FullPrecisionSideKeepsTheRows) {
  const KvCacheSpec s = spec_for(0);  // V in FP32
  QuantKvStorage storage(s);
  const int64_t kvd = s.kv_dim();
  const auto k = test::random_floats(300 * kvd, 3, -2.0, 2.0);
  const auto v = test::random_floats(300 * kvd, 4, -2.0, 2.0);
  storage.append(0, 0, 300, k.data(), v.data());
  ASSERT_NE(storage.v(0).fp, nullptr);
  EXPECT_EQ(std::memcmp(storage.v(0).fp, v.data(), v.size() * sizeof(float)), 0);
  EXPECT_EQ(storage.k(0).quant->size(), 300);
}

TEST(QuantKvStorage, NonFiniteValueOnEitherSideChangesNothing) {
  const KvCacheSpec s = spec_for(4);
  const int64_t kvd = s.kv_dim();
  const auto k = test::random_floats(512 * kvd, 5, -2.0, 2.0);
  const auto v = test::random_floats(512 * kvd, 6, -2.0, 2.0);
  for (int side = 0; side < 2; ++side) {
    for (float bad : {NAN, INFINITY}) {
      QuantKvStorage storage(s);
      storage.append(0, 0, 4, k.data(), v.data());
      const QuantKvLayerStore before_k = *storage.k(0).quant, before_v = *storage.v(0).quant;
      auto k_bad = k, v_bad = v;
      (side == 0 ? k_bad : v_bad)[300 * kvd + 17] = bad;
      try {
        storage.append(0, 2, 400, k_bad.data() + 2 * kvd, v_bad.data() + 2 * kvd);
        FAIL() << "no error for a non-finite value on side " << side;
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("position 300"), std::string::npos) << e.what();
      }
      expect_same_store(*storage.k(0).quant, before_k, "K after the failed append");
      expect_same_store(*storage.v(0).quant, before_v, "V after the failed append");
    }
  }
}

}  // namespace
}  // namespace quarot
