// Scalar reference kernels for codebook_gemm: one index at a time, read exactly as the
// layout contracts state (the GEMV from the repacked words of kernels/cpu/codebook_lanes.h
// for widths 1..4, everything else from the file's bit stream).
#include <cstring>

#include "common/half.h"
#include "kernels/cpu/codebook_gemm_kernels.h"

namespace quarot::codebook_detail {
namespace {

constexpr int64_t kStripe = 64;

// Index of row j (0..63) in a slice of width b.
inline unsigned index_in_slice(const uint8_t* slice, int64_t j, int b) {
  const int64_t bit = j * b;
  const unsigned v = slice[bit / 8] | (static_cast<unsigned>(slice[bit / 8 + 1]) << 8);  // the stream is padded
  return (v >> (bit % 8)) & ((1u << b) - 1);
}

void gemv_stripe(const CodebookView& w, int64_t stripe, int half, const float* xs, int64_t n, float* out) {
  const int64_t j0 = half * (kStripe / 2), j1 = j0 + kStripe / 2;
  for (int64_t i = 0; i < n; ++i) std::memset(out + i * kStripe + j0, 0, sizeof(float) * (kStripe / 2));
  // Widths 1..4 from the repacked words, slot by slot (position order).
  for (int b = 1; b <= 4; ++b) {
    const int fields = 32 / b, stride = b == 4 ? 16 : 8;
    for (int64_t slot = w.slot_start[b]; slot < w.slot_start[b + 1]; ++slot) {
      const int64_t rel = slot - w.slot_start[b];
      const uint32_t* block =
          w.words + (stripe * w.groups_per_stripe + w.group_start[b] + rel / fields) * kStripe;
      const int shift = b * static_cast<int>(rel % fields);
      const float* table = w.tables + w.table_start[b] + rel * stride;
      for (int64_t j = j0; j < j1; ++j) {
        const float v = table[(block[j] >> shift) & ((1u << b) - 1)];
        for (int64_t i = 0; i < n; ++i) out[i * kStripe + j] += v * xs[i * w.x_stride + slot];
      }
    }
  }
  // Widths 5..8 (not produced by CLAQ) from the stream.
  const uint8_t* base = w.indices + stripe * w.stripe_bytes;
  for (int b = 5; b <= 8; ++b) {
    for (int64_t k = w.width_start[b]; k < w.width_start[b + 1]; ++k) {
      const int64_t rel = k - w.width_start[b];
      const uint8_t* slice = base + w.slice_start[b] + 8 * b * rel;
      const uint16_t* table = w.centroids + w.centroid_start[b] + (int64_t{1} << b) * rel;
      const float* x = xs + w.wide_x + (k - w.width_start[5]);
      for (int64_t j = j0; j < j1; ++j) {
        const float v = fp16_to_fp32(table[index_in_slice(slice, j, b)]);
        for (int64_t i = 0; i < n; ++i) out[i * kStripe + j] += v * x[i * w.x_stride];
      }
    }
  }
}

void decode16(const CodebookView& w, int64_t r0, const int32_t* order, float* dst, int64_t ld) {
  const uint8_t* base = w.indices + (r0 / kStripe) * w.stripe_bytes;
  const int64_t j0 = r0 % kStripe;
  for (int b = 1; b <= 8; ++b) {
    for (int64_t k = w.width_start[b]; k < w.width_start[b + 1]; ++k) {
      const int64_t rel = k - w.width_start[b];
      const uint8_t* slice = base + w.slice_start[b] + 8 * b * rel;
      const uint16_t* table = w.centroids + w.centroid_start[b] + (int64_t{1} << b) * rel;
      float* d = dst + order[k] * ld;
      for (int64_t j = 0; j < 16; ++j) d[j] = fp16_to_fp32(table[index_in_slice(slice, j0 + j, b)]);
    }
  }
}

}  // namespace

const CodebookKernels& codebook_kernels_scalar() {
  static const CodebookKernels k{&gemv_stripe, &decode16, nullptr};
  return k;
}

}  // namespace quarot::codebook_detail
