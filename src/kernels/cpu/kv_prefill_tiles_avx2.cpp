// AVX2 + FMA prefill attention products (kv_prefill_tiles.h): blocks of up to six
// query vectors x 16 lanes in twelve accumulators (plus two loaded strips and one
// broadcast: 15 of the 16 ymm registers), so each FMA costs under one load and the
// loop runs at the FMA ports' rate. Every lane sums in the reference's order with one
// fma per step, so results equal the scalar kernels bit for bit. Internal linkage
// except the table (ODR).
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/kv_prefill_tiles.h"

namespace quarot::kv_detail {
namespace {

constexpr int kRows = 6;

// Twelve named accumulators (rows 0..5 x two strips): GCC keeps a local __m256 array
// in memory and stores it back on every step, which halved the loop's rate.
#define QUAROT_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define QUAROT_DECLARE(r) __m256 c##r##0 = _mm256_setzero_ps(), c##r##1 = _mm256_setzero_ps();

// Not inlined: inlined into the strip loop, the hoisted scale took a register and
// pushed one key strip to the stack (a store and six reloads per step).
template <int R>
__attribute__((noinline)) void scores_block(const float* q, int64_t hd, const float* kt, float scale, float* s, int64_t ld) {
  QUAROT_ROWS(QUAROT_DECLARE)
  for (int64_t d = 0; d < hd; ++d) {
    const __m256 k0 = _mm256_loadu_ps(kt + d * kPrefillKeys), k1 = _mm256_loadu_ps(kt + d * kPrefillKeys + 8);
#define QUAROT_STEP(r)                                          \
  if constexpr (R > r) {                                        \
    const __m256 b = _mm256_broadcast_ss(q + r * hd + d);       \
    c##r##0 = _mm256_fmadd_ps(b, k0, c##r##0);                  \
    c##r##1 = _mm256_fmadd_ps(b, k1, c##r##1);                  \
  }
    QUAROT_ROWS(QUAROT_STEP)
#undef QUAROT_STEP
  }
  const __m256 vs = _mm256_set1_ps(scale);
#define QUAROT_STORE(r)                                           \
  if constexpr (R > r) {                                          \
    _mm256_storeu_ps(s + r * ld, _mm256_mul_ps(c##r##0, vs));     \
    _mm256_storeu_ps(s + r * ld + 8, _mm256_mul_ps(c##r##1, vs)); \
  }
  QUAROT_ROWS(QUAROT_STORE)
#undef QUAROT_STORE
}

template <int R>
void scores_rows(const float* q, int64_t hd, const float* kt, int64_t keys, float scale, float* s, int64_t ld) {
  for (int64_t j = 0; j < keys && j < kPrefillKeys; j += 16) scores_block<R>(q, hd, kt + j, scale, s + j, ld);
}

void scores(const float* q, int64_t nq, int64_t hd, const float* kt, int64_t keys, float scale, float* s,
            int64_t ld) {
  int64_t i = 0;
  for (; i + kRows <= nq; i += kRows) scores_rows<kRows>(q + i * hd, hd, kt, keys, scale, s + i * ld, ld);
  switch (nq - i) {
    case 5: scores_rows<5>(q + i * hd, hd, kt, keys, scale, s + i * ld, ld); break;
    case 4: scores_rows<4>(q + i * hd, hd, kt, keys, scale, s + i * ld, ld); break;
    case 3: scores_rows<3>(q + i * hd, hd, kt, keys, scale, s + i * ld, ld); break;
    case 2: scores_rows<2>(q + i * hd, hd, kt, keys, scale, s + i * ld, ld); break;
    case 1: scores_rows<1>(q + i * hd, hd, kt, keys, scale, s + i * ld, ld); break;
    default: break;
  }
}

template <int R>
__attribute__((noinline)) void weighted_block(const float* p, int64_t ld, const float* v, int64_t keys, int64_t hd, float* o) {
  QUAROT_ROWS(QUAROT_DECLARE)
#define QUAROT_LOAD(r)                            \
  if constexpr (R > r) {                          \
    c##r##0 = _mm256_loadu_ps(o + r * hd);        \
    c##r##1 = _mm256_loadu_ps(o + r * hd + 8);    \
  }
  QUAROT_ROWS(QUAROT_LOAD)
#undef QUAROT_LOAD
  for (int64_t j = 0; j < keys; ++j) {
    const __m256 v0 = _mm256_loadu_ps(v + j * hd), v1 = _mm256_loadu_ps(v + j * hd + 8);
#define QUAROT_STEP(r)                                     \
  if constexpr (R > r) {                                   \
    const __m256 b = _mm256_broadcast_ss(p + r * ld + j);  \
    c##r##0 = _mm256_fmadd_ps(b, v0, c##r##0);             \
    c##r##1 = _mm256_fmadd_ps(b, v1, c##r##1);             \
  }
    QUAROT_ROWS(QUAROT_STEP)
#undef QUAROT_STEP
  }
#define QUAROT_STORE(r)                           \
  if constexpr (R > r) {                          \
    _mm256_storeu_ps(o + r * hd, c##r##0);        \
    _mm256_storeu_ps(o + r * hd + 8, c##r##1);    \
  }
  QUAROT_ROWS(QUAROT_STORE)
#undef QUAROT_STORE
}
#undef QUAROT_DECLARE
#undef QUAROT_ROWS

template <int R>
void weighted_rows(const float* p, int64_t ld, const float* v, int64_t keys, int64_t hd, float* o) {
  for (int64_t d = 0; d < hd; d += 16) weighted_block<R>(p, ld, v + d, keys, hd, o + d);
}

void weighted_sum(const float* p, int64_t nq, int64_t ld, const float* v, int64_t keys, int64_t hd, float* o) {
  int64_t i = 0;
  for (; i + kRows <= nq; i += kRows) weighted_rows<kRows>(p + i * ld, ld, v, keys, hd, o + i * hd);
  switch (nq - i) {
    case 5: weighted_rows<5>(p + i * ld, ld, v, keys, hd, o + i * hd); break;
    case 4: weighted_rows<4>(p + i * ld, ld, v, keys, hd, o + i * hd); break;
    case 3: weighted_rows<3>(p + i * ld, ld, v, keys, hd, o + i * hd); break;
    case 2: weighted_rows<2>(p + i * ld, ld, v, keys, hd, o + i * hd); break;
    case 1: weighted_rows<1>(p + i * ld, ld, v, keys, hd, o + i * hd); break;
    default: break;
  }
}

}  // namespace

const PrefillKernels& prefill_kernels_avx2() {
  static const PrefillKernels k{scores, weighted_sum};
  return k;
}

}  // namespace quarot::kv_detail
