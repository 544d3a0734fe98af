// The packed quantized KV store: what it reads back must be exactly what the
// simulated path (fake_quant_rows on each appended row) computes, for every bit
// width, group size and mode, every dequantization ISA path, IntactKV's FP32 first
// position, appends in several pieces and rewinds; bad input throws quarot::Error.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/rng.h"
#include "kernel_test_util.h"
#include "kernels/cpu/fake_quant.h"
#include "kernels/cpu/kv_dequant.h"
#include "kernels/cpu/kv_store_q.h"

namespace quarot {
namespace {

// Rows shaped like real keys: Gaussian, a different scale per head, a few
// outlier channels (what makes the per-group range matter), and one all-zero head
// vector (scale 0, must read back as zeros).
std::vector<float> kv_rows(int64_t n, const QuantKvLayout& l, uint64_t seed) {
  Rng rng(seed);
  const int64_t kvd = l.row_dim();
  std::vector<float> x(static_cast<size_t>(n * kvd));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t c = 0; c < kvd; ++c) {
      const double head_scale = 0.5 + static_cast<double>(c / l.head_dim);
      const double outlier = (c % 17 == 3) ? 8.0 : 1.0;
      x[t * kvd + c] = static_cast<float>(rng.normal() * head_scale * outlier);
    }
  if (n > 2) std::fill_n(x.data() + 2 * kvd, l.head_dim, 0.0f);
  return x;
}

// What the runtime's simulated path stores: each row fake-quantized, IntactKV's
// position 0 untouched.
std::vector<float> simulated(std::vector<float> x, int64_t n, const QuantKvLayout& l, bool keep_first) {
  for (int64_t t = 0; t < n; ++t) {
    if (keep_first && t == 0) continue;
    fake_quant_rows(x.data() + t * l.row_dim(), l.n_kv_heads, l.head_dim, l.bits, l.clip_ratio, l.group, l.symmetric);
  }
  return x;
}

struct StoreCase {
  int64_t n_kv_heads, head_dim, group;
  int bits;
  bool symmetric;
  float clip;
  bool keep_first;
};

class KvStoreTest : public ::testing::TestWithParam<StoreCase> {};

TEST_P(KvStoreTest, ReadsBackExactlyTheSimulatedValues) {
  const StoreCase c = GetParam();
  const QuantKvLayout l{c.n_kv_heads, c.head_dim, c.group, c.bits, c.symmetric, c.clip};
  const int64_t n = 37, kvd = l.row_dim();
  const auto x = kv_rows(n, l, 11);
  const auto want = simulated(x, n, l, c.keep_first);
  QuantKvLayerStore store(l, 40);
  // In three pieces, as a prompt followed by decode steps.
  store.append(x.data(), 20, 0, c.keep_first);
  store.append(x.data() + 20 * kvd, 1, 20, c.keep_first);
  store.append(x.data() + 21 * kvd, n - 21, 21, c.keep_first);
  ASSERT_EQ(store.size(), n);
  EXPECT_EQ(store.first_fp_row() != nullptr, c.keep_first);
  std::vector<float> got(static_cast<size_t>(n * kvd), NAN);
  store.dequantize(0, n, got.data());
  int64_t mismatches = 0, changed = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    mismatches += got[i] != want[i];
    changed += want[i] != x[i];
  }
  EXPECT_EQ(mismatches, 0);
  // The simulated values really are quantized (else the comparison proves nothing).
  EXPECT_GT(changed, static_cast<int64_t>(got.size()) / 2);
  // A slice in the middle reads the same.
  std::vector<float> part(static_cast<size_t>(5 * kvd));
  store.dequantize(17, 5, part.data());
  for (int64_t i = 0; i < 5 * kvd; ++i) ASSERT_EQ(part[i], want[17 * kvd + i]) << i;
}

TEST_P(KvStoreTest, EveryDequantPathAgreesWithScalarBitForBit) {
  const StoreCase c = GetParam();
  const QuantKvLayout l{c.n_kv_heads, c.head_dim, c.group, c.bits, c.symmetric, c.clip};
  const int64_t n = 29;
  const auto x = kv_rows(n, l, 12);
  QuantKvLayerStore store(l, n);
  store.append(x.data(), n, 0, false);
  const int64_t hd = l.head_dim;
  for (Isa isa : test::supported_isas()) {
    const kv_detail::DequantRowsFn kernel = kv_detail::dequant_rows_for(isa, l.group_size());
    for (int64_t head = 0; head < l.n_kv_heads; ++head) {
      std::vector<float> ref(static_cast<size_t>(n * hd)), got(static_cast<size_t>(n * hd), NAN);
      kv_detail::dequant_rows_scalar(store.codes(head, 0), store.params(head, 0), n, hd, l.group_size(), l.packed(),
                                     ref.data());
      kernel(store.codes(head, 0), store.params(head, 0), n, hd, l.group_size(), l.packed(), got.data());
      ASSERT_EQ(std::memcmp(ref.data(), got.data(), ref.size() * sizeof(float)), 0)
          << isa_name(isa) << " head " << head;
    }
  }
}

// append() quantizes with the best_isa() kernels (QUAROT_ISA forces one): every path
// writes the same codes and parameters as the scalar one, byte for byte.
TEST_P(KvStoreTest, EveryQuantizePathStoresTheSameBytes) {
  const StoreCase c = GetParam();
  const QuantKvLayout l{c.n_kv_heads, c.head_dim, c.group, c.bits, c.symmetric, c.clip};
  const int64_t n = 300;  // enough values for the parallel loop
  const auto x = kv_rows(n, l, 13);
  auto store_with = [&](const char* isa) {
    const char* old = std::getenv("QUAROT_ISA");
    const std::string saved = old != nullptr ? old : "";
    setenv("QUAROT_ISA", isa, 1);
    QuantKvLayerStore store(l, n);
    store.append(x.data(), n, 0, false);
    if (old != nullptr)
      setenv("QUAROT_ISA", saved.c_str(), 1);
    else
      unsetenv("QUAROT_ISA");
    return store;
  };
  const QuantKvLayerStore ref = store_with("scalar");
  for (Isa isa : test::supported_isas()) {
    const QuantKvLayerStore got = store_with(isa_name(isa));
    for (int64_t head = 0; head < l.n_kv_heads; ++head) {
      ASSERT_EQ(std::memcmp(ref.codes(head, 0), got.codes(head, 0), n * l.code_bytes_per_head()), 0)
          << isa_name(isa) << " head " << head;
      ASSERT_EQ(std::memcmp(ref.params(head, 0), got.params(head, 0), n * 2 * l.groups_per_head() * sizeof(float)), 0)
          << isa_name(isa) << " head " << head;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, KvStoreTest,
    ::testing::Values(StoreCase{3, 64, 0, 4, false, 0.95f, true},    // SmolLM2 recipe: K4 asym, IntactKV
                      StoreCase{3, 64, 32, 4, false, 1.0f, false},   // groups of 32
                      StoreCase{8, 128, 0, 4, true, 0.9f, true},     // symmetric, wide heads
                      StoreCase{8, 128, 32, 8, false, 0.95f, false}, // 8 bits: one code per byte
                      StoreCase{2, 64, 8, 8, true, 1.0f, true},      // smallest vector group
                      StoreCase{2, 24, 8, 3, false, 1.0f, false},    // head_dim % 16 == 8 tail
                      StoreCase{2, 48, 16, 2, true, 1.0f, false},    // 2 bits
                      StoreCase{2, 64, 16, 5, false, 0.8f, false},   // 5 bits, unpacked
                      StoreCase{3, 15, 5, 4, false, 1.0f, true},     // odd head_dim and group: scalar path
                      StoreCase{1, 7, 0, 4, true, 1.0f, false}));    // odd, last nibble alone

TEST(KvStore, MemoryIsCodesPlusScalesAndZeros) {
  const QuantKvLayout smol{3, 64, 0, 4, false, 0.95f};
  EXPECT_EQ(smol.bytes_per_position(), 3 * (32 + 8));
  const QuantKvLayout wide{8, 128, 32, 4, false, 0.95f};
  EXPECT_EQ(wide.bytes_per_position(), 8 * (64 + 4 * 8));
  const QuantKvLayout eight{8, 128, 0, 8, true, 1.0f};
  EXPECT_EQ(eight.bytes_per_position(), 8 * (128 + 8));
  const QuantKvLayerStore store(smol, 1000);
  EXPECT_EQ(store.memory_bytes(), 1000 * smol.bytes_per_position() + 3 * 64 * 4);
  EXPECT_LT(store.memory_bytes(), 1000 * 3 * 64 * 4 / 6);  // vs an FP32 cache
}

TEST(KvStore, IntactKvKeepsThePositionZeroRowExactly) {
  const QuantKvLayout l{3, 64, 0, 4, false, 0.95f};
  const auto x = kv_rows(4, l, 13);
  QuantKvLayerStore store(l, 8);
  store.append(x.data(), 4, 0, true);
  std::vector<float> row(static_cast<size_t>(l.row_dim()));
  store.dequantize(0, 1, row.data());
  for (int64_t i = 0; i < l.row_dim(); ++i) ASSERT_EQ(row[i], x[i]);
  // Rewriting from position 0 without IntactKV quantizes it again.
  store.append(x.data(), 1, 0, false);
  EXPECT_EQ(store.size(), 1);
  EXPECT_EQ(store.first_fp_row(), nullptr);
  store.dequantize(0, 1, row.data());
  const auto want = simulated(x, 1, l, false);
  int64_t differs_from_raw = 0;
  for (int64_t i = 0; i < l.row_dim(); ++i) {
    ASSERT_EQ(row[i], want[i]);
    differs_from_raw += row[i] != x[i];
  }
  EXPECT_GT(differs_from_raw, l.row_dim() / 2);
  // Not at position 0, keep_first_fp changes nothing.
  store.append(x.data() + l.row_dim(), 1, 1, true);
  store.dequantize(1, 1, row.data());
  const auto want1 = simulated(std::vector<float>(x.begin() + l.row_dim(), x.begin() + 2 * l.row_dim()), 1, l, false);
  for (int64_t i = 0; i < l.row_dim(); ++i) ASSERT_EQ(row[i], want1[i]);
}

TEST(KvStore, RejectsBadInput) {
  const QuantKvLayout ok{3, 64, 0, 4, false, 0.95f};
  auto with = [&](auto change) {
    QuantKvLayout l = ok;
    change(l);
    return l;
  };
  EXPECT_THROW(QuantKvLayerStore(with([](auto& l) { l.group = 48; }), 4), Error);   // 48 does not divide 64
  EXPECT_THROW(QuantKvLayerStore(with([](auto& l) { l.group = 128; }), 4), Error);  // larger than a head
  EXPECT_THROW(QuantKvLayerStore(with([](auto& l) { l.group = -1; }), 4), Error);
  EXPECT_THROW(QuantKvLayerStore(with([](auto& l) { l.bits = 1; }), 4), Error);
  EXPECT_THROW(QuantKvLayerStore(with([](auto& l) { l.bits = 9; }), 4), Error);
  EXPECT_THROW(QuantKvLayerStore(with([](auto& l) { l.clip_ratio = 0.0f; }), 4), Error);
  EXPECT_THROW(QuantKvLayerStore(with([](auto& l) { l.clip_ratio = NAN; }), 4), Error);
  EXPECT_THROW(QuantKvLayerStore(with([](auto& l) { l.n_kv_heads = 0; }), 4), Error);
  EXPECT_THROW(QuantKvLayerStore(with([](auto& l) { l.head_dim = -64; }), 4), Error);
  EXPECT_THROW(QuantKvLayerStore(ok, -1), Error);

  QuantKvLayerStore store(ok, 4);
  const auto x = kv_rows(5, ok, 14);
  EXPECT_THROW(store.append(x.data(), 5, 0, false), Error);  // capacity exceeded
  store.append(x.data(), 2, 0, false);
  EXPECT_THROW(store.append(x.data(), 3, 2, false), Error);  // capacity exceeded later
  EXPECT_THROW(store.append(x.data(), 1, 3, false), Error);  // leaves position 2 unwritten
  EXPECT_THROW(store.append(x.data(), 1, -1, false), Error);
  auto bad = x;
  bad[5] = INFINITY;
  EXPECT_THROW(store.append(bad.data(), 1, 2, false), Error);
  bad[5] = NAN;
  EXPECT_THROW(store.append(bad.data(), 1, 2, false), Error);
  EXPECT_EQ(store.size(), 2);  // failed appends changed nothing
  std::vector<float> out(static_cast<size_t>(3 * ok.row_dim()));
  EXPECT_THROW(store.dequantize(0, 3, out.data()), Error);  // only 2 stored
  EXPECT_THROW(store.dequantize(-1, 1, out.data()), Error);
}

}  // namespace
}  // namespace quarot
