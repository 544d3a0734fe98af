// Hadamard constructions: every order QuaRot needs must satisfy H H^T = K I exactly
// (integer arithmetic), and the finite fields behind Paley must really be fields.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "common/rng.h"
#include "transform/galois_field.h"
#include "transform/hadamard_matrices.h"
#include "transform/hadamard_transform.h"
// The activation quantizer's compile-time copy of H_12's signs (internal header).
#include "kernels/cpu/act_quant_mix.h"

namespace quarot {
namespace {

TEST(PrimePower, RecognizesPrimePowersOnly) {
  EXPECT_EQ(as_prime_power(27)->prime, 3);
  EXPECT_EQ(as_prime_power(27)->exponent, 3);
  EXPECT_EQ(as_prime_power(343)->prime, 7);
  EXPECT_EQ(as_prime_power(343)->exponent, 3);
  EXPECT_EQ(as_prime_power(311)->exponent, 1);
  EXPECT_FALSE(as_prime_power(155));
  EXPECT_FALSE(as_prime_power(171));
  EXPECT_FALSE(as_prime_power(1));
  EXPECT_FALSE(as_prime_power(0));
}

// Field axioms: every nonzero element is invertible (fails if the reduction polynomial
// were reducible), multiplication distributes over addition,
// and chi agrees with Euler's criterion a^((q-1)/2) = +-1.
TEST(GaloisField, IsAFieldAndChiFollowsEuler) {
  for (int64_t q : {3, 4, 7, 8, 9, 11, 25, 27, 49, 81, 125, 243, 343}) {
    SCOPED_TRACE(q);
    const GaloisField f(q);
    // a^(q-1) = 1 for every nonzero a means a * a^(q-2) = 1: every element is
    // invertible (a zero divisor of a reducible quotient ring would fail this).
    for (int64_t a = 1; a < q; ++a) ASSERT_EQ(f.pow(a, q - 1), 1) << "element " << a;
    Rng rng(q);
    for (int t = 0; t < 500; ++t) {
      const int64_t a = rng.below(q), b = rng.below(q), c = rng.below(q);
      ASSERT_EQ(f.mul(a, f.add(b, c)), f.add(f.mul(a, b), f.mul(a, c)));
      ASSERT_EQ(f.mul(f.mul(a, b), c), f.mul(a, f.mul(b, c)));
      ASSERT_EQ(f.sub(f.add(a, b), b), a);
    }
    if (q % 2 == 1) {
      int squares = 0;
      for (int64_t a = 1; a < q; ++a) {
        const int64_t e = f.pow(a, (q - 1) / 2);
        ASSERT_TRUE(e == 1 || e == f.sub(0, 1));
        EXPECT_EQ(f.quadratic_character(a), e == 1 ? 1 : -1);
        squares += f.quadratic_character(a) == 1;
      }
      EXPECT_EQ(squares, (q - 1) / 2);
    }
  }
  EXPECT_THROW(GaloisField(12), Error);
}

struct ExpectedOrder {
  int64_t order;
  const char* construction;
};

// Constructions derived by hand from the rules in hadamard_matrices.h.
TEST(FindHadamard, EveryListedOrderIsAnExactHadamardMatrix) {
  const ExpectedOrder cases[] = {
      {1, "trivial(1)"},
      {2, "sylvester(2)"},
      {4, "sylvester(4)"},
      {12, "paley1(q=11)"},
      {20, "paley1(q=19)"},
      {28, "paley1(q=27=3^3)"},
      {36, "paley2(q=17)"},
      {40, "sylvester(2) x paley1(q=19)"},
      {44, "paley1(q=43)"},
      {52, "paley2(q=25=5^2)"},
      {60, "paley1(q=59)"},
      {108, "paley1(q=107)"},
      {140, "paley1(q=139)"},
      {312, "paley1(q=311)"},        // stands in for 156 (x 2)
      {344, "paley1(q=343=7^3)"},    // stands in for 172 (x 2)
      {256, "sylvester(256)"},
      {576, nullptr},  // a Kronecker product; only the defect matters
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.order);
    const auto h = find_hadamard(c.order);
    ASSERT_TRUE(h.has_value());
    ASSERT_EQ(h->order, c.order);
    ASSERT_EQ(h->entries.size(), static_cast<size_t>(c.order * c.order));
    EXPECT_EQ(hadamard_defect(*h), 0);
    if (c.construction != nullptr) {
      EXPECT_EQ(h->construction, c.construction);
    }
  }
}

TEST(FindHadamard, OrdersWithoutAConstructionAreReported) {
  // No Hadamard matrix exists for these orders at all.
  for (int64_t k : {3, 5, 6, 9, 10, 18, 39, 43, 86}) EXPECT_FALSE(find_hadamard(k).has_value()) << k;
  // These exist (Williamson / Baumert-Hall) but are not built here: documented fallback.
  EXPECT_FALSE(find_hadamard(156).has_value());
  EXPECT_FALSE(find_hadamard(172).has_value());
  EXPECT_FALSE(find_hadamard(0).has_value());
  EXPECT_FALSE(find_hadamard(8192, 4096).has_value());
}

TEST(Paley, AllSmallPrimePowersGiveHadamardMatrices) {
  std::vector<int64_t> qs = {243};  // 3^5: a degree-5 field
  for (int64_t q = 3; q < 140; ++q)
    if (as_prime_power(q) && q % 2 == 1) qs.push_back(q);
  for (int64_t q : qs) {
    SCOPED_TRACE(q);
    const HadamardMatrix h = q % 4 == 3 ? paley1_hadamard(q) : paley2_hadamard(q);
    EXPECT_EQ(h.order, q % 4 == 3 ? q + 1 : 2 * (q + 1));
    EXPECT_EQ(hadamard_defect(h), 0);
  }
  EXPECT_THROW(paley1_hadamard(13), Error);  // 13 = 1 mod 4
  EXPECT_THROW(paley2_hadamard(15), Error);  // not a prime power
  EXPECT_THROW(sylvester_hadamard(12), Error);
}

TEST(Hadamard, DefectDetectsABrokenMatrix) {
  HadamardMatrix h = *find_hadamard(12);
  h.entries[5] = static_cast<int8_t>(-h.entries[5]);
  EXPECT_GT(hadamard_defect(h), 0);
}

TEST(Sylvester, MatchesBitParityFormula) {
  const HadamardMatrix h = sylvester_hadamard(16);
  // Doubling rule checked directly: H_16 = [[H_8, H_8], [H_8, -H_8]].
  const HadamardMatrix h8 = sylvester_hadamard(8);
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 16; ++c) EXPECT_EQ(h.at(r, c), h8.at(r % 8, c % 8) * ((r >= 8 && c >= 8) ? -1 : 1));
}

// act_quant_mix.h keeps H_12's signs at compile time for down_proj's 12 x 128 online
// rotation; if this construction changed, that kernel would silently stop being used
// (the quantizer compares the signs at run time), so both must stay the same matrix.
TEST(FindHadamard, Order12IsTheActivationMixersCompileTimeTable) {
  const auto h = find_hadamard(12);
  ASSERT_TRUE(h.has_value());
  for (int r = 0; r < 12; ++r)
    for (int c = 0; c < 12; ++c) EXPECT_EQ(h->at(r, c), act_quant_detail::kPaley12.s[r][c]) << r << "," << c;
  // The plan for 1536 (SmolLM2's intermediate size) mixes with exactly this matrix.
  const HadamardPlan plan = plan_hadamard(1536);
  ASSERT_EQ(plan.rotation.k, 12);
  const float c = static_cast<float>(1.0 / std::sqrt(12.0));
  for (int i = 0; i < 144; ++i)
    EXPECT_EQ(plan.rotation.m[i], static_cast<float>(act_quant_detail::kPaley12.s[i / 12][i % 12]) * c) << i;
}

}  // namespace
}  // namespace quarot
