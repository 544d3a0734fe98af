#include "kernels/cpu/fwht.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "common/threads.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/fwht_kernels.h"

namespace quarot {
namespace {

// Butterflies over the middle axis of x viewed as [outer, p, inner]: every
// "element" is a run of `inner` contiguous floats, so inner == 1 is the plain
// transform and inner > 1 transforms many interleaved vectors at once (the inner
// loop is then contiguous and vectorizes).
// inner == 1: the first three stages (h = 1, 2, 4) stay inside aligned runs of 8,
// so they run run by run in registers; the later stages pair contiguous runs of h
// values, a plain vector loop. Every element sees the same additions in the same
// order as the generic loop below, so the results are bit-identical.
void fwht_contiguous_scalar_impl(const float* src, float* x, int64_t p) {
  int64_t h = 1;
  if (p < 8 && src != x) std::memcpy(x, src, p * sizeof(float));
  if (p >= 8) {
    for (int64_t c = 0; c < p; c += 8) {
      float a[8];
      for (int i = 0; i < 8; ++i) a[i] = src[c + i];
      for (int s = 1; s < 8; s *= 2) {
        float b[8];
        for (int i = 0; i < 8; ++i) b[i] = (i & s) ? a[i - s] - a[i] : a[i] + a[i + s];
        for (int i = 0; i < 8; ++i) a[i] = b[i];
      }
      for (int i = 0; i < 8; ++i) x[c + i] = a[i];
    }
    h = 8;
  }
  for (; h < p; h *= 2) {
    for (int64_t block = 0; block < p; block += 2 * h) {
      float* u = x + block;
      float* v = x + block + h;
#pragma omp simd
      for (int64_t j = 0; j < h; ++j) {
        const float a = u[j];
        const float b = v[j];
        u[j] = a + b;
        v[j] = a - b;
      }
    }
  }
}

// The contiguous kernel for length p. Bit-identical kernels (fwht_kernels.h), so the CPU
// decides, once.
using ContiguousKernel = void (*)(const float* src, float* dst, int64_t p);
ContiguousKernel contiguous_kernel(int64_t p) {
  static const bool avx2 = cpu_features().has_avx2_path();
  static const bool avx512 = cpu_features().has_avx512_path();
  if (avx512 && p >= 16) return &fwht_detail::fwht_contiguous_avx512;
  if (avx2 && p >= 8) return &fwht_detail::fwht_contiguous_avx2;
  return &fwht_contiguous_scalar_impl;
}

void fwht_axis(float* x, int64_t p, int64_t inner) {
  if (inner == 1) return contiguous_kernel(p)(x, x, p);
  for (int64_t h = 1; h < p; h *= 2) {
    for (int64_t block = 0; block < p; block += 2 * h) {
      for (int64_t j = block; j < block + h; ++j) {
        float* u = x + j * inner;
        float* v = x + (j + h) * inner;
#pragma omp simd
        for (int64_t c = 0; c < inner; ++c) {
          const float a = u[c];
          const float b = v[c];
          u[c] = a + b;
          v[c] = a - b;
        }
      }
    }
  }
}

void scale(float* x, int64_t n, float s) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

}  // namespace

void fwht_detail::fwht_contiguous_scalar(const float* src, float* dst, int64_t p) {
  fwht_contiguous_scalar_impl(src, dst, p);
}

bool is_power_of_two(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

void fwht(float* x, int64_t n) {
  QUAROT_CHECK(is_power_of_two(n), "fwht: length {} is not a power of two", n);
  fwht_axis(x, n, 1);
}

void fwht(const float* src, float* dst, int64_t n, int64_t count) {
  QUAROT_CHECK(is_power_of_two(n), "fwht: length {} is not a power of two", n);
  QUAROT_CHECK(count >= 0, "fwht: negative count {}", count);
  const ContiguousKernel kernel = contiguous_kernel(n);
  for (int64_t i = 0; i < count; ++i) kernel(src + i * n, dst + i * n, n);
}

void fwht_normalized(float* x, int64_t n) {
  fwht(x, n);
  scale(x, n, static_cast<float>(1.0 / std::sqrt(static_cast<double>(n))));
}

void validate_online_rotation(const OnlineRotation& r, int64_t row_length) {
  QUAROT_CHECK(r.k > 0 && r.p > 0 && r.inner > 0, "online rotation: invalid shape k={} p={} inner={}", r.k, r.p,
               r.inner);
  QUAROT_CHECK(is_power_of_two(r.p), "online rotation: Hadamard order p={} is not a power of two", r.p);
  QUAROT_CHECK(r.size() == row_length, "online rotation: k*p*inner = {}*{}*{} = {} does not match row length {}", r.k,
               r.p, r.inner, r.size(), row_length);
  if (r.m.empty()) {
    QUAROT_CHECK(r.k == 1, "online rotation: k={} but the {}x{} matrix M is missing", r.k, r.k, r.k);
  } else {
    QUAROT_CHECK(static_cast<int64_t>(r.m.size()) == r.k * r.k,
                 "online rotation: M has {} values, expected k*k = {}", r.m.size(), r.k * r.k);
  }
}

void apply_online_rotation(const OnlineRotation& r, float* rows, int64_t n_rows, int64_t row_stride) {
  // The default rotation {k=1, p=1, no M} is the identity for rows of any length.
  if (r.is_identity() && r.m.empty()) return;
  const int64_t n = r.size();
  validate_online_rotation(r, n);
  QUAROT_CHECK(n_rows >= 0 && (n_rows <= 1 || row_stride >= n),
               "online rotation: row stride {} is shorter than the row length {}", row_stride, n);
  const bool has_m = !r.m.empty();
  if ((r.p == 1 && !has_m) || n_rows == 0) return;

  // Decode rotates a handful of short rows (e.g. 9 query heads of 64): waking the other
  // threads costs more than the transform, so only larger batches run in parallel.
  // Rows are independent, so the results do not depend on this choice.
  constexpr int64_t kParallelValues = 16384;
  parallel_region_if(n_rows > 1 && n_rows * n >= kParallelValues, [&] {
    std::vector<float> mixed(has_m ? n : 0);
#pragma omp for schedule(static)
    for (int64_t row = 0; row < n_rows; ++row) apply_online_rotation_row(r, rows + row * row_stride, mixed.data());
  });
}

void apply_online_rotation_row(const OnlineRotation& r, float* x, float* mixed) {
  const int64_t n = r.size();
  const int64_t block = r.p * r.inner;  // one slice x[a', :, :]
  if (r.p > 1) {
    const float hadamard_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(r.p)));
    for (int64_t a = 0; a < r.k; ++a) fwht_axis(x + a * block, r.p, r.inner);
    scale(x, n, hadamard_scale);
  }
  if (!r.m.empty()) {
    // y[a, :] = sum_a' M[a, a'] * x[a', :]; the Hadamard on b commutes with it.
    for (int64_t a = 0; a < r.k; ++a) {
      float* dst = mixed + a * block;
      for (int64_t c = 0; c < block; ++c) dst[c] = 0.0f;
      for (int64_t a2 = 0; a2 < r.k; ++a2) {
        const float coef = r.m[a * r.k + a2];
        const float* src = x + a2 * block;
#pragma omp simd
        for (int64_t c = 0; c < block; ++c) dst[c] += coef * src[c];
      }
    }
    for (int64_t c = 0; c < n; ++c) x[c] = mixed[c];
  }
}

}  // namespace quarot
