#pragma once
// The KV cache and causal attention of the CUDA backend (backend.h's
// make_kv_storage / attention, for device memory).
//
// make_cuda_kv_storage(spec, stream): a KvStorage whose rows live in device memory,
// all layers, spec.capacity positions each. Per side (K, V):
//   - bits 0 (or >= 16: not enabled): FP32 rows [capacity, kv_dim] per layer;
//   - bits 2..8: integer codes in kv_store_q.h's layout and formula -- per
//     (KV head, position, group of `group` values, 0 = head_dim) a {scale, zero}
//     float pair, value = (float(code) - zero) * scale; bits <= 4 two codes per byte
//     (element 2i in the low nibble of byte i), else one per byte; symmetric codes c
//     stored as c + 2^(b-1) with zero = 2^(b-1). The codes and pairs are bit-identical
//     to QuantKvLayerStore::append on the same rows (same clip, same rounding:
//     int_quant.h's quantize_sym / quantize_asym), so dequantized values equal the CPU
//     reference's fake-quantized rows.
//   - intact_kv: position 0 is also kept as an FP32 row and read in place of its codes.
//   - bits 1 or 9..15 throw quarot::Error (no packed layout), as does an invalid spec
//     (validate_kv_cache_spec).
// append(layer, pos0, n, k, v): k, v are device pointers [n, kv_dim] FP32; the
// quantization runs on the GPU on `stream`, asynchronously (the inputs must stay
// valid until the stream reaches it). Positions must lie within capacity. Non-finite
// inputs are not checked (the CPU store throws; here they give unspecified codes).
// clone(positions) deep-copies (device to device, on `stream`) the first
// `positions` positions of every layer; bytes_per_position() equals the CPU
// storages' (Fp32KvStorage for FP32 sides, QuantKvStorage's formula otherwise).
// The storage's memory is freed in its destructor (cudaFree, which waits for the device).
// step (optional): the owning backend's StepPositions (cuda_step.h); while it is
// active, append() checks pos0 and n against it and its kernels read the position
// from the device (a recorded step cannot start at position 0).
//
// cuda_attention(q, n, pos0, kv, layer, shape, scale, out, stream): causal
// grouped-query attention, exactly backend.h's Backend::attention:
//   out[t, h] = softmax_{j <= pos0 + t}(scale * q[t, h] . k[j, h / group]) . v[j, h / group]
// with group = n_heads / n_kv_heads, q and out [n, n_heads * head_dim] device FP32,
// rows of the storage at positions 0 .. pos0 + n - 1 already appended. kv must come
// from make_cuda_kv_storage (otherwise quarot::Error), shape must match its spec
// (n_kv_heads, head_dim; n_kv_heads divides n_heads). head_dim must be even and
// at most 256. Quantized sides are dequantized on the fly; the softmax is online, in
// FP32; results agree with the CPU backend's attention on the same rows to FP32
// rounding (not bit for bit: summation order differs). Asynchronous on `stream`.
// n <= 0 does nothing. Decode splits the positions into chunks whose partial results
// live in a scratch buffer owned by the storage: calls on one storage must use one
// stream and one host thread at a time.
// Inside a recorded step (the storage's StepPositions active) the kernels read pos0
// from the device (the host pos0 is checked against the step's); the launch is
// sized for any position up to the capacity and splits the positions exactly as a
// call with that pos0 would, so the results are bit-identical to it.
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>

#include "kernels/backend.h"
#include "kernels/cuda/cuda_step.h"

namespace quarot::cuda {

std::unique_ptr<KvStorage> make_cuda_kv_storage(const KvCacheSpec& spec, cudaStream_t stream,
                                               std::shared_ptr<const StepPositions> step = nullptr);

void cuda_attention(const float* q, int64_t n, int64_t pos0, const KvStorage& kv, int64_t layer,
                    const AttentionShape& shape, float scale, float* out, cudaStream_t stream);

}  // namespace quarot::cuda
