#pragma once
// Writes the K and V heads of a packed QKV matrix into a KV cache, either as FP16
// or as QuaRot's int4 (asymmetric, per token and head, with a clip ratio).
//
// Row r of qkv is token r % seq of sequence b = r / seq, stored at position
// pos0 + r % seq; its K heads start at column k_col, its V heads at v_col (head h at
// + h * head_dim). Cache layout, per cache (K and V alike), for sequence b, head h,
// position t: entry ((b * heads + h) * max_ctx + t).
//   FP16: head_dim halves per entry.
//   int4: head_dim / 2 bytes per entry (two codes per byte, low nibble first) plus a
//         half2 (scale, zero) per entry in *_sz.
// int4 quantization of a head x[0..d) (QuaRot's asymmetric quantizer, codes 0..15):
//   hi = clip * max(max x, 0), lo = clip * min(min x, 0), s = fp16((hi - lo) / 15)
//   (s = 1 when hi == lo), z = rint(-lo / s), q = clamp(rint(x / s) + z, 0, 15),
//   dequantized value (q - z) * s in FP32.
// With writeback, the dequantized values also replace the K and V columns of qkv
// (rounded to FP16), so attention run on qkv afterwards sees what the int4 cache holds.
// Shapes (cudaErrorInvalidValue otherwise): head_dim 64 or 128, seq >= 1, pos0 >= 0,
// pos0 + seq <= max_ctx, clip in (0, 1], columns and stride multiples of 8, qkv and
// the caches 16-byte aligned.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace quarot::cuda {

struct KvCacheView {
  int batch = 0, heads = 0, head_dim = 0, max_ctx = 0;
  bool int4 = false;
  void* k = nullptr;         // FP16 entries or int4 codes
  void* v = nullptr;
  __half2* k_sz = nullptr;   // int4 only: (scale, zero) per entry
  __half2* v_sz = nullptr;
};

cudaError_t kv_cache_store(__half* qkv, int64_t rows, int64_t stride, int64_t k_col, int64_t v_col, int seq,
                           int pos0, const KvCacheView& cache, float clip, bool writeback, cudaStream_t stream);

}  // namespace quarot::cuda
