#pragma once
// Small vector primitives for the model's norm / attention / MLP code. They are
// memory-bound one-pass loops, so `#pragma omp simd` plus -O3 is as fast as
// hand-written intrinsics; reductions accumulate in float across SIMD lanes.
#include <cstdint>

namespace quarot {

// out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]  (w == null means all ones).
// out may alias x.
void rmsnorm(const float* x, const float* w, int64_t n, float eps, float* out);

// NLL (nats) of `target` under one row of logits: logsumexp(row) - row[target], in double.
double token_nll(const float* logits_row, int64_t vocab, int32_t target);
// x <- exp(x - max x) / sum exp(x - max x), in place. n >= 1.
void softmax_inplace(float* x, int64_t n);
// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). out may alias gate or up.
void silu_mul(const float* gate, const float* up, int64_t n, float* out);
// silu_mul on AVX2 + FMA (silu_avx2.cpp; callers check the CPU): exp within 2 ulp
// instead of libm's (which does not vectorize), so results may differ from
// silu_mul's in the last bits. Measured 5-9% of a W4A4 prefill in silu_mul.
void silu_mul_avx2(const float* gate, const float* up, int64_t n, float* out);
float dot(const float* a, const float* b, int64_t n);
// y += a * x
void axpy(float a, const float* x, int64_t n, float* y);
// x *= a
void scale(float* x, int64_t n, float a);
// y += x (the residual add)
void add_to(float* y, const float* x, int64_t n);

}  // namespace quarot
