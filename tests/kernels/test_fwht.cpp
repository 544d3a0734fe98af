#include "kernels/cpu/fwht.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/error.h"
#include "kernel_test_util.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/fwht_kernels.h"

namespace quarot {
namespace {

TEST(Fwht, MatchesExplicitSylvesterProduct) {
  for (int64_t n = 1; n <= 256; n *= 2) {
    const auto x = test::random_floats(n, 100 + n);
    const auto h = test::sylvester_matrix(n);
    std::vector<float> y = x;
    fwht(y.data(), n);
    for (int64_t r = 0; r < n; ++r) {
      double ref = 0.0;
      for (int64_t c = 0; c < n; ++c) ref += h[r * n + c] * x[c];
      EXPECT_NEAR(y[r], ref, 1e-5 * std::sqrt(static_cast<double>(n))) << "n=" << n << " row " << r;
    }
  }
}

// The contiguous transform (first three stages inside runs of 8, in registers) must
// perform, element by element, the very additions of the textbook stage loop in the
// same order: the integer path's rotation is bit-exact with the simulated one only
// if both do. Compared bit for bit against that loop, and against a strided view
// (inner > 1, the generic loop) holding the same data.
TEST(Fwht, ContiguousStagesAreBitIdenticalToTheStageLoop) {
  for (int64_t n = 1; n <= 2048; n *= 2) {
    const auto x = test::random_floats(n, 300 + n, -3.0, 3.0);
    std::vector<float> ref = x;
    for (int64_t h = 1; h < n; h *= 2) {
      for (int64_t i = 0; i < n; i += 2 * h) {
        for (int64_t j = i; j < i + h; ++j) {
          const float a = ref[j], b = ref[j + h];
          ref[j] = a + b;
          ref[j + h] = a - b;
        }
      }
    }
    std::vector<float> y = x;
    fwht(y.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[i], ref[i]) << "n=" << n << " element " << i;
    // Two interleaved copies as [p = n, inner = 2]: the generic path, same values.
    std::vector<float> pair(2 * n);
    for (int64_t i = 0; i < n; ++i) pair[2 * i] = pair[2 * i + 1] = x[i];
    OnlineRotation r{1, n, 2, {}};
    apply_online_rotation(r, pair.data(), 1, 2 * n);
    const float s = static_cast<float>(1.0 / std::sqrt(static_cast<double>(n)));
    for (int64_t i = 0; i < n && n > 1; ++i) ASSERT_EQ(pair[2 * i], ref[i] * s) << "n=" << n << " element " << i;
  }
}

// Both kernels behind fwht() (the scalar one and the AVX2 one, picked by the CPU)
// against the textbook stage loop, bit for bit (compared as bit patterns, so -0 and
// NaN count), on data with infinities, signed zeros and subnormals in it.
TEST(Fwht, EveryKernelIsBitIdenticalToTheStageLoop) {
  for (int64_t n = 8; n <= 4096; n *= 2) {
    auto x = test::random_floats(n, 500 + n, -3.0, 3.0);
    x[1] = -0.0f;
    x[n / 2] = 1e-40f;  // subnormal
    if (n >= 64) x[n - 3] = INFINITY;
    std::vector<float> ref = x;
    for (int64_t h = 1; h < n; h *= 2)
      for (int64_t i = 0; i < n; i += 2 * h)
        for (int64_t j = i; j < i + h; ++j) {
          const float a = ref[j], b = ref[j + h];
          ref[j] = a + b;
          ref[j + h] = a - b;
        }
    auto same_bits = [&](const std::vector<float>& y, const char* kernel) {
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(ref[i])) << kernel << " n=" << n << " element " << i;
    };
    // In place, and out of place (the input left as it was).
    const auto check = [&](void (*kernel)(const float*, float*, int64_t), const char* name) {
      std::vector<float> y = x;
      kernel(y.data(), y.data(), n);
      same_bits(y, name);
      std::vector<float> src = x, dst(n, -7.0f);
      kernel(src.data(), dst.data(), n);
      same_bits(dst, name);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(std::bit_cast<uint32_t>(src[i]), std::bit_cast<uint32_t>(x[i])) << name << " wrote its input";
    };
    check(&fwht_detail::fwht_contiguous_scalar, "scalar");
    if (!cpu_features().has_avx2_path()) GTEST_SKIP() << "this CPU has no AVX2 (the scalar kernel passed)";
    check(&fwht_detail::fwht_contiguous_avx2, "avx2");
    if (n >= 16 && cpu_features().has_avx512_path()) check(&fwht_detail::fwht_contiguous_avx512, "avx512");
  }
  if (!cpu_features().has_avx512_path()) GTEST_SKIP() << "this CPU has no AVX-512 (scalar and AVX2 passed)";
}

TEST(Fwht, NormalizedIsAnInvolution) {
  const int64_t n = 128;
  const auto x = test::random_floats(n, 7);
  std::vector<float> y = x;
  fwht_normalized(y.data(), n);
  double norm_x = 0.0, norm_y = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    norm_x += x[i] * x[i];
    norm_y += y[i] * y[i];
  }
  EXPECT_NEAR(norm_y, norm_x, 1e-5 * norm_x);
  fwht_normalized(y.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], x[i], 1e-6);
}

TEST(Fwht, RejectsNonPowerOfTwo) {
  std::vector<float> x(12);
  EXPECT_THROW(fwht(x.data(), 12), Error);
  EXPECT_THROW(fwht(x.data(), 0), Error);
}

// The rotation as an explicit matrix: R[(a,b,c), (a',b',c')] = M[a,a'] Hn[b,b'] [c == c'].
std::vector<double> kronecker_matrix(const OnlineRotation& r) {
  const int64_t n = r.size();
  const auto h = test::sylvester_matrix(r.p);
  const double hs = 1.0 / std::sqrt(static_cast<double>(r.p));
  std::vector<double> m(n * n, 0.0);
  for (int64_t a = 0; a < r.k; ++a)
    for (int64_t b = 0; b < r.p; ++b)
      for (int64_t c = 0; c < r.inner; ++c)
        for (int64_t a2 = 0; a2 < r.k; ++a2)
          for (int64_t b2 = 0; b2 < r.p; ++b2) {
            const double mv = r.m.empty() ? (a == a2 ? 1.0 : 0.0) : r.m[a * r.k + a2];
            m[((a * r.p + b) * r.inner + c) * n + (a2 * r.p + b2) * r.inner + c] = mv * h[b * r.p + b2] * hs;
          }
  return m;
}

OnlineRotation make_rotation(int64_t k, int64_t p, int64_t inner, uint64_t seed) {
  OnlineRotation r;
  r.k = k;
  r.p = p;
  r.inner = inner;
  if (k > 1) r.m = test::random_orthogonal(k, seed);
  return r;
}

TEST(OnlineRotation, MatchesKroneckerMatrixAndPreservesNorms) {
  const std::vector<OnlineRotation> rotations = {
      make_rotation(1, 64, 1, 1),  // per-head Hadamard (q/k)
      make_rotation(12, 8, 1, 2),  // down_proj style: M (x) H
      make_rotation(3, 1, 5, 3),   // o_proj style: mix heads, keep head_dim
      make_rotation(3, 4, 2, 4),   // all three axes at once
      make_rotation(1, 1, 7, 5),   // identity
  };
  for (const OnlineRotation& r : rotations) {
    const int64_t n = r.size();
    const int64_t rows = 3, stride = n + 5;
    const auto x = test::random_floats(rows * stride, 50 + n);
    std::vector<float> y = x;
    apply_online_rotation(r, y.data(), rows, stride);
    const auto matrix = kronecker_matrix(r);
    for (int64_t row = 0; row < rows; ++row) {
      double norm_in = 0.0, norm_out = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        double ref = 0.0;
        for (int64_t j = 0; j < n; ++j) ref += matrix[i * n + j] * x[row * stride + j];
        EXPECT_NEAR(y[row * stride + i], ref, 1e-5) << "k=" << r.k << " p=" << r.p << " inner=" << r.inner;
        norm_in += static_cast<double>(x[row * stride + i]) * x[row * stride + i];
        norm_out += static_cast<double>(y[row * stride + i]) * y[row * stride + i];
      }
      EXPECT_NEAR(norm_out, norm_in, 1e-5 * norm_in);
      for (int64_t i = n; i < stride; ++i) EXPECT_EQ(y[row * stride + i], x[row * stride + i]) << "gap touched";
    }
  }
}

TEST(OnlineRotation, RejectsMalformedRotations) {
  std::vector<float> x(64);
  OnlineRotation bad_p = make_rotation(1, 6, 1, 1);
  EXPECT_THROW(apply_online_rotation(bad_p, x.data(), 1, 6), Error);
  OnlineRotation r = make_rotation(2, 8, 1, 1);
  EXPECT_THROW(apply_online_rotation(r, x.data(), 2, 8), Error);  // stride shorter than the row
  EXPECT_THROW(validate_online_rotation(r, 15), Error);             // size mismatch
  OnlineRotation missing_m = r;
  missing_m.m.clear();
  EXPECT_THROW(validate_online_rotation(missing_m, 16), Error);
  OnlineRotation wrong_m = r;
  wrong_m.m.resize(3);
  EXPECT_THROW(validate_online_rotation(wrong_m, 16), Error);
  EXPECT_NO_THROW(validate_online_rotation(r, 16));
}

}  // namespace
}  // namespace quarot
