#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/error.h"
#include "common/threads.h"
#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/gemm.h"

namespace quarot {

namespace {

// Query rows per GEMM block. Causal blocks compute keys up to the block's last row,
// so smaller blocks waste less on masked scores but give the GEMM shorter panels.
constexpr int64_t kQueryBlock = 128;
// Below this many new rows the direct loop is faster than packing K and V.
constexpr int64_t kMinGemmRows = 16;

constexpr float kLog2e = 1.4426950408889634f;

// scores[0, len) -> softmax probabilities, in place. scores are already scaled.
void softmax_row(float* scores, int64_t len) {
  // A max reduction gives the same value in any order (scores are finite), so it
  // may run in vector lanes; std::max's NaN rule would keep it scalar.
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int64_t j = 0; j < len; ++j) mx = mx > scores[j] ? mx : scores[j];
  const float shift = mx * kLog2e;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < len; ++j) {
    // Clamped so the float-to-int step inside fast_exp2 stays defined for any input;
    // 2^-150 is already below the smallest result it returns (and a NaN maps to it).
    const float e = detail::fast_exp2(std::max(-150.0f, scores[j] * kLog2e - shift));
    scores[j] = e;
    sum += e;
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t j = 0; j < len; ++j) scores[j] *= inv;
}

void attention_direct(const float* q, int64_t n, int64_t pos0, const float* k, const float* v,
                      const AttentionShape& s, float scale, float* out) {
  const int64_t hd = s.head_dim, qd = s.n_heads * hd, kvd = s.n_kv_heads * hd;
  const int64_t group = s.n_heads / s.n_kv_heads;
#pragma omp parallel num_threads(num_threads()) if (n * s.n_heads > 1 && pos0 + n > 256)
  {
    std::vector<float> scores(static_cast<size_t>(pos0 + n));
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t h = 0; h < s.n_heads; ++h) {
        const int64_t len = pos0 + t + 1;
        const float* qv = q + t * qd + h * hd;
        const float* kh = k + (h / group) * hd;
        const float* vh = v + (h / group) * hd;
        for (int64_t j = 0; j < len; ++j) {
          const float* kr = kh + j * kvd;
          float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
          for (int64_t d = 0; d < hd; ++d) dot += qv[d] * kr[d];
          scores[j] = dot * scale;
        }
        softmax_row(scores.data(), len);
        float* o = out + t * qd + h * hd;
        std::fill_n(o, hd, 0.0f);
        for (int64_t j = 0; j < len; ++j) {
          const float* vr = vh + j * kvd;
          const float a = scores[j];
#pragma omp simd
          for (int64_t d = 0; d < hd; ++d) o[d] += a * vr[d];
        }
      }
    }
  }
}

void attention_blocked(const float* q, int64_t n, int64_t pos0, const float* k, const float* v,
                       const AttentionShape& s, float scale, float* out) {
  const int64_t hd = s.head_dim, qd = s.n_heads * hd, kvd = s.n_kv_heads * hd;
  const int64_t group = s.n_heads / s.n_kv_heads;
  const int64_t n_blocks = (n + kQueryBlock - 1) / kQueryBlock;
  const Isa isa = best_isa();
  // Blocks run in parallel; each block's GEMMs are single-threaded inside it
  // (nested OpenMP regions are inactive), so results do not depend on thread count.
#pragma omp parallel num_threads(num_threads())
  {
    // Per-thread buffers kept across calls (a prompt's layers reuse them instead of
    // faulting in fresh pages each time); each is fully written before it is read.
    thread_local std::vector<float> kh, vt, qb, scores, ob;
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int64_t b = n_blocks - 1; b >= 0; --b) {  // longest blocks first
      for (int64_t g = 0; g < s.n_kv_heads; ++g) {
        const int64_t t0 = b * kQueryBlock, rows = std::min(kQueryBlock, n - t0);
        const int64_t keys = pos0 + t0 + rows;  // keys the block's last row sees
        // K rows of this head [keys, hd] and V transposed [hd, keys], as GEMM weights.
        kh.resize(static_cast<size_t>(keys * hd));
        vt.resize(static_cast<size_t>(hd * keys));
        for (int64_t j = 0; j < keys; ++j) {
          std::copy_n(k + j * kvd + g * hd, hd, kh.data() + j * hd);
          const float* vr = v + j * kvd + g * hd;
          for (int64_t d = 0; d < hd; ++d) vt[d * keys + j] = vr[d];
        }
        const GemmWeight kw = pack_gemm_weight(kh.data(), keys, hd, isa, Placement::kHeap);
        const GemmWeight vw = pack_gemm_weight(vt.data(), hd, keys, isa, Placement::kHeap);
        qb.resize(static_cast<size_t>(rows * hd));
        scores.resize(static_cast<size_t>(rows * keys));
        ob.resize(static_cast<size_t>(rows * hd));
        for (int64_t h = g * group; h < (g + 1) * group; ++h) {
          for (int64_t t = 0; t < rows; ++t) std::copy_n(q + (t0 + t) * qd + h * hd, hd, qb.data() + t * hd);
          gemm(kw, qb.data(), rows, nullptr, scores.data());
          for (int64_t t = 0; t < rows; ++t) {
            float* row = scores.data() + t * keys;
            const int64_t len = pos0 + t0 + t + 1;
#pragma omp simd
            for (int64_t j = 0; j < len; ++j) row[j] *= scale;
            softmax_row(row, len);
            std::fill(row + len, row + keys, 0.0f);
          }
          gemm(vw, scores.data(), rows, nullptr, ob.data());
          for (int64_t t = 0; t < rows; ++t) std::copy_n(ob.data() + t * hd, hd, out + (t0 + t) * qd + h * hd);
        }
      }
    }
  }
}

}  // namespace

void causal_attention(const float* q, int64_t n, int64_t pos0, const float* k, const float* v,
                      const AttentionShape& shape, float scale, float* out) {
  if (shape.n_heads <= 0 || shape.n_kv_heads <= 0 || shape.head_dim <= 0 || shape.n_heads % shape.n_kv_heads != 0)
    fail("attention: {} query heads, {} KV heads, head_dim {}: need positive sizes with KV heads dividing heads",
         shape.n_heads, shape.n_kv_heads, shape.head_dim);
  if (n <= 0) return;
  if (pos0 < 0) fail("attention: negative start position {}", pos0);
  if (n < kMinGemmRows)
    attention_direct(q, n, pos0, k, v, shape, scale, out);
  else
    attention_blocked(q, n, pos0, k, v, shape, scale, out);
}

}  // namespace quarot
