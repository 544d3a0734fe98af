#pragma once
// One layer's K (or V) cache stored as integer codes: what the simulated KV
// quantization of the runtime (fake_quant_rows on each appended row) computes, kept
// packed instead of dequantized. Per (position, KV head, group of `group` values):
//   codes: bits <= 4 two per byte (element 2i in the low nibble of byte i), else one
//          per byte; unsigned in [0, 2^bits - 1];
//   scale, zero (floats):  value = scale * (code - zero).
// Symmetric codes c in [-2^(b-1), 2^(b-1) - 1] are stored as c + 2^(b-1) with
// zero = 2^(b-1), so every reader has one formula. Dequantized values equal
// fake_quant_rows(row, n_kv_heads, head_dim, bits, clip_ratio, group, symmetric)
// exactly (as values: a symmetric code 0 reads +0 where fake_quant may give -0).
// One documented gap: a group whose scale underflows to 0 (every |x| below ~1e-44)
// reads as zeros, where fake_quant leaves those subnormals unchanged.
//
// Memory per position (bytes) = n_kv_heads * (code bytes per head + 8 * groups per head),
// e.g. 4-bit, head_dim 64, one group per head: 3 KV heads * (32 + 8) = 120 bytes
// vs 768 for FP32 (SmolLM2-135M); head_dim 128, 8 KV heads: 8 * 72 = 576 vs 4096.
// IntactKV adds one FP32 row for position 0 (n_kv_heads * head_dim * 4 bytes).
//
// Storage is head-major (head, position): a decode step streams each KV head's
// codes and scales as contiguous memory.
#include <cstdint>
#include <vector>

#include "kernels/cpu/act_quant_kernels.h"

namespace quarot {

struct QuantKvLayout {
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t group = 0;  // values per scale; 0 = head_dim; divides head_dim
  int bits = 4;       // 2..8
  bool symmetric = false;
  float clip_ratio = 1.0f;  // finite, > 0

  int64_t group_size() const { return group == 0 ? head_dim : group; }
  int64_t groups_per_head() const { return head_dim / group_size(); }
  bool packed() const { return bits <= 4; }
  int64_t code_bytes_per_head() const { return packed() ? (head_dim + 1) / 2 : head_dim; }
  int64_t row_dim() const { return n_kv_heads * head_dim; }
  // Codes plus scales and zeros of one position (all heads).
  int64_t bytes_per_position() const { return n_kv_heads * (code_bytes_per_head() + 8 * groups_per_head()); }
};

// Throws quarot::Error naming the problem when the layout is unusable.
void validate(const QuantKvLayout& layout);

class QuantKvLayerStore {
 public:
  QuantKvLayerStore() = default;
  // Throws quarot::Error on a bad layout or a negative capacity.
  QuantKvLayerStore(const QuantKvLayout& layout, int64_t capacity);

  const QuantKvLayout& layout() const { return layout_; }
  int64_t capacity() const { return capacity_; }
  // Positions 0 .. size() - 1 hold values.
  int64_t size() const { return size_; }
  void clear() { size_ = 0; first_fp_ = false; }

  // Quantizes rows [n, n_kv_heads * head_dim] into positions pos0 .. pos0 + n - 1;
  // afterwards size() == pos0 + n (a pos0 below size() rewinds, as regenerating from
  // an earlier point). Needs 0 <= pos0 <= size() and pos0 + n <= capacity().
  // keep_first_fp (IntactKV): position 0, when among the rows, is stored as FP32.
  // A non-finite value throws quarot::Error (integer codes cannot carry it).
  void append(const float* rows, int64_t n, int64_t pos0, bool keep_first_fp);

  // Rows x values from which append() quantizes in parallel: a head vector costs tens
  // of nanoseconds, so a prompt's rows are worth a parallel loop, a decode step's few
  // are not. Each vector is quantized alone, so the split does not change the codes.
  static constexpr int64_t kParallelValues = 32768;

  // append() in phases, for a caller that fills several stores in one parallel region
  // (QuantKvStorage: K and V together). begin_append checks the positions; store_rows
  // quantizes rows t0 .. t1 - 1 of `rows` (finite, checked by the caller) into
  // positions pos0 + t0 .. and may run concurrently for disjoint ranges; end_append
  // publishes them (size, IntactKV row). Same codes as append().
  void begin_append(int64_t n, int64_t pos0);
  void store_rows(const float* rows, int64_t t0, int64_t t1, int64_t pos0);
  void end_append(const float* rows, int64_t n, int64_t pos0, bool keep_first_fp);

  // out[n, n_kv_heads * head_dim] = the values at positions pos0 .. pos0 + n - 1.
  void dequantize(int64_t pos0, int64_t n, float* out) const;

  // Raw access for attention kernels. Position `pos` of KV head `head`:
  const uint8_t* codes(int64_t head, int64_t pos) const {
    return codes_.data() + (head * capacity_ + pos) * layout_.code_bytes_per_head();
  }
  // groups_per_head() pairs {scale, zero}.
  const float* params(int64_t head, int64_t pos) const {
    return params_.data() + (head * capacity_ + pos) * 2 * layout_.groups_per_head();
  }
  // Position 0 in FP32 ([n_kv_heads * head_dim]) when IntactKV kept it, else null.
  const float* first_fp_row() const { return first_fp_ ? first_row_.data() : nullptr; }

  // Bytes allocated for codes, scales/zeros and the FP32 first row.
  int64_t memory_bytes() const;

 private:
  // Head vectors up to this size are staged on the stack before nibble packing.
  static constexpr int64_t kMaxHeadDim = 256;
  // Quantizes x[head_dim] (finite) into position `pos` of KV head `head`.
  void quantize_head(const act_quant_detail::ActQuantKernels& k, const float* x, int64_t head, int64_t pos);

  QuantKvLayout layout_;
  int64_t capacity_ = 0, size_ = 0;
  bool first_fp_ = false;
  const act_quant_detail::ActQuantKernels* kernels_ = nullptr;  // chosen by begin_append
  std::vector<uint8_t> codes_;   // [n_kv_heads, capacity, code_bytes_per_head]
  std::vector<float> params_;    // [n_kv_heads, capacity, groups_per_head, 2]
  std::vector<float> first_row_;  // [n_kv_heads * head_dim]
};

}  // namespace quarot
