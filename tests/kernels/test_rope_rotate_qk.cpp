// The CPU backend's one-pass rope_rotate_qk must give the bits of the four separate
// calls the Backend default makes (rope q, rope k, rotate q, rotate k).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/backend.h"
#include "common/error.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/cpu_features.h"

namespace quarot {
namespace {

TEST(RopeRotateQk, OnePassEqualsTheSeparateCallsBitForBit) {
  const auto be = make_cpu_backend(best_isa());
  const AttentionShape shape{9, 3, 64};
  std::vector<float> inv_freq(32);
  for (int i = 0; i < 32; ++i) inv_freq[i] = static_cast<float>(std::pow(10000.0, -i / 32.0));
  const OnlineRotation hadamard{1, 64, 1, {}};
  const OnlineRotation none{};
  for (const OnlineRotation* r : {&hadamard, &none}) {
    for (int64_t n : {1, 7, 300}) {
      const int64_t pos0 = n == 1 ? 511 : 3;
      const auto q0 = test::random_floats(n * 9 * 64, 10 + n, -3.0, 3.0);
      const auto k0 = test::random_floats(n * 3 * 64, 20 + n, -3.0, 3.0);
      auto q = q0, k = k0, q_ref = q0, k_ref = k0;
      be->rope_rotate_qk(q.data(), k.data(), n, shape, pos0, inv_freq.data(), *r);
      be->Backend::rope_rotate_qk(q_ref.data(), k_ref.data(), n, shape, pos0, inv_freq.data(), *r);
      EXPECT_EQ(std::memcmp(q.data(), q_ref.data(), q.size() * sizeof(float)), 0) << "q, n=" << n;
      EXPECT_EQ(std::memcmp(k.data(), k_ref.data(), k.size() * sizeof(float)), 0) << "k, n=" << n;
      EXPECT_NE(std::memcmp(q.data(), q0.data(), q.size() * sizeof(float)), 0) << "q unchanged, n=" << n;
    }
  }
}

TEST(RopeRotateQk, RotationOfTheWrongWidthThrows) {
  const auto be = make_cpu_backend(best_isa());
  std::vector<float> inv_freq(32, 1.0f), q(9 * 64), k(3 * 64);
  const OnlineRotation wrong{1, 32, 1, {}};
  EXPECT_THROW(be->rope_rotate_qk(q.data(), k.data(), 1, {9, 3, 64}, 0, inv_freq.data(), wrong), Error);
}

}  // namespace
}  // namespace quarot
