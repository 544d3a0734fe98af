#pragma once
// Rotary position embedding (LLaMA's rotate-half form) applied in place to the Q and
// K heads of a packed QKV matrix, optionally followed by the normalized Hadamard
// transform H_d / sqrt(d) of each head (QuaRot's online rotation of Q and K, which
// cannot be folded into the weights because RoPE sits between them).
//
// Row r (token r % seq of sequence r / seq, position pos0 + r % seq) holds heads_q
// Q heads at columns [0, heads_q * d) and heads_kv K heads right after them; V (and
// anything else past them, up to `stride` columns) is untouched. For i < d / 2 and
// angle a = pos * theta^(-2i / d):
//   x'[i] = x[i] cos a - x[i + d/2] sin a,   x'[i + d/2] = x[i + d/2] cos a + x[i] sin a
// in FP32 (sincosf of the FP32 angle), then the Hadamard butterflies (h = 1, 2, .., d/2)
// in FP32, one round to FP16 at the end.
// Shapes (cudaErrorInvalidValue otherwise): d 64 or 128, rows >= 0, seq >= 1, pos0 >= 0,
// stride >= (heads_q + heads_kv) * d, theta > 1.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace quarot::cuda {

cudaError_t rope_qk(__half* qkv, int64_t rows, int64_t stride, int seq, int pos0, int heads_q, int heads_kv,
                    int head_dim, float theta, bool hadamard, cudaStream_t stream);

}  // namespace quarot::cuda
