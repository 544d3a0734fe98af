#include "transform/hadamard_transform.h"

#include <cmath>

#include <fmt/format.h>

#include "common/error.h"
#include "transform/hadamard_matrices.h"
#include "transform/random_orthogonal.h"

namespace quarot {

namespace {

// The largest dense factor worth applying online (cost per element is K multiply-adds).
constexpr int64_t kMaxDenseFactor = 4096;

int trailing_zero_bits(int64_t n) {
  int m = 0;
  while (n % 2 == 0) {
    n /= 2;
    ++m;
  }
  return m;
}

// In-place unnormalized Walsh-Hadamard transform of `count` elements spaced `stride` apart.
void fwht_strided(double* x, int64_t count, int64_t stride) {
  for (int64_t half = 1; half < count; half *= 2) {
    for (int64_t block = 0; block < count; block += 2 * half) {
      for (int64_t i = block; i < block + half; ++i) {
        const double a = x[i * stride], b = x[(i + half) * stride];
        x[i * stride] = a + b;
        x[(i + half) * stride] = a - b;
      }
    }
  }
}

}  // namespace

HadamardPlan plan_hadamard(int64_t n, uint64_t fallback_seed) {
  if (n < 1) fail("plan_hadamard: dimension must be positive, got {}", n);
  const int max_m = trailing_zero_bits(n);
  HadamardPlan plan;
  // Prefer the largest power of two (cheapest: the dense K x K factor costs K per element).
  for (int m = max_m; m >= 0; --m) {
    const int64_t k = n >> m;
    if (k > kMaxDenseFactor) break;
    const auto h = find_hadamard(k, kMaxDenseFactor);
    if (!h) continue;
    plan.rotation.k = k;
    plan.rotation.p = int64_t{1} << m;
    plan.rotation.inner = 1;
    if (k > 1) {
      const double scale = 1.0 / std::sqrt(static_cast<double>(k));
      plan.rotation.m.resize(k * k);
      for (int64_t i = 0; i < k * k; ++i) plan.rotation.m[i] = static_cast<float>(h->entries[i] * scale);
    }
    plan.exact_hadamard = true;
    plan.description = k == 1 ? fmt::format("hadamard 2^{}", m)
                              : fmt::format("hadamard {} x 2^{} ({})", k, m, h->construction);
    return plan;
  }
  // No Hadamard for any K: keep all the powers of two in the fast part, the odd part
  // (or the part = 2 mod 4) becomes a random orthogonal factor.
  const int64_t k = n >> max_m;
  if (k > kMaxDenseFactor)
    fail("plan_hadamard: cannot rotate dimension {}: no Hadamard matrix of order {} x 2^k and the odd part {} "
         "is too large for a dense random rotation",
         n, k, k);
  const auto q = random_orthogonal(k, fallback_seed ^ static_cast<uint64_t>(n));
  plan.rotation.k = k;
  plan.rotation.p = int64_t{1} << max_m;
  plan.rotation.inner = 1;
  plan.rotation.m.assign(q.begin(), q.end());
  plan.exact_hadamard = false;
  plan.description = fmt::format("random orthogonal {} (no Hadamard of order {} exists) x 2^{}", k, k, max_m);
  return plan;
}

void apply_rotation_rows(const OnlineRotation& rot, double* rows, int64_t n_rows, bool transpose) {
  const int64_t k = rot.k, p = rot.p, inner = rot.inner, n = rot.size();
  if (k < 1 || p < 1 || inner < 1 || (p & (p - 1)) != 0)
    fail("rotation: invalid shape k={} p={} inner={}", k, p, inner);
  if (k > 1 && static_cast<int64_t>(rot.m.size()) != k * k)
    fail("rotation: dense factor has {} entries, expected {} x {}", rot.m.size(), k, k);
  const double p_scale = 1.0 / std::sqrt(static_cast<double>(p));
  // Small jobs (tests, one bias vector) run serially: a thread team costs more than them.
  const bool parallel = n_rows > 1 && n_rows * n * (k + 8) > (int64_t{1} << 18);
#pragma omp parallel if (parallel)
  {
    std::vector<double> column(k);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < n_rows; ++r) {
      double* x = rows + r * n;
      if (p > 1) {
        // Hn acts on the b axis (stride inner) of each [a, :, c] fibre; it is symmetric.
        for (int64_t a = 0; a < k; ++a)
          for (int64_t c = 0; c < inner; ++c) fwht_strided(x + a * p * inner + c, p, inner);
        for (int64_t i = 0; i < n; ++i) x[i] *= p_scale;
      }
      if (k > 1) {
        const int64_t stride = p * inner;
        for (int64_t bc = 0; bc < stride; ++bc) {
          for (int64_t a = 0; a < k; ++a) column[a] = x[a * stride + bc];
          for (int64_t a = 0; a < k; ++a) {
            double sum = 0.0;
            for (int64_t a2 = 0; a2 < k; ++a2) {
              const float m = transpose ? rot.m[a2 * k + a] : rot.m[a * k + a2];
              sum += static_cast<double>(m) * column[a2];
            }
            x[a * stride + bc] = sum;
          }
        }
      }
    }
  }
}

std::vector<double> materialize_double(const OnlineRotation& rotation) {
  const int64_t n = rotation.size();
  // Column j of A is A e_j; rows of the identity transformed give A^T's rows = A's columns.
  std::vector<double> eye(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i) eye[i * n + i] = 1.0;
  apply_rotation_rows(rotation, eye.data(), n, /*transpose=*/false);
  // eye row j now holds A e_j = column j of A: transpose into row-major A.
  std::vector<double> a(n * n);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < n; ++i) a[i * n + j] = eye[j * n + i];
  return a;
}

Tensor materialize(const OnlineRotation& rotation) {
  const auto a = materialize_double(rotation);
  const int64_t n = rotation.size();
  Tensor t({n, n});
  for (int64_t i = 0; i < n * n; ++i) t.data[i] = static_cast<float>(a[i]);
  return t;
}

double orthogonality_error(const OnlineRotation& rotation) {
  const int64_t k = rotation.k;
  if (k <= 1) return 0.0;
  double worst = 0.0;
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = 0; j < k; ++j) {
      double dot = 0.0;
      for (int64_t c = 0; c < k; ++c)
        dot += static_cast<double>(rotation.m[i * k + c]) * static_cast<double>(rotation.m[j * k + c]);
      worst = std::max(worst, std::abs(dot - (i == j ? 1.0 : 0.0)));
    }
  }
  return worst;
}

}  // namespace quarot
