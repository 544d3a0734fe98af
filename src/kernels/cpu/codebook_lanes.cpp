#include "kernels/cpu/codebook_lanes.h"

#include <cstring>

#include "common/half.h"

namespace quarot {

CodebookLanes make_codebook_lanes(const WeightEncoding& w, const CodebookLayout& layout) {
  CodebookLanes l;
  int64_t groups = 0, slots = 0, floats = 0;
  for (int b = 1; b <= kCodebookLaneMaxBits; ++b) {
    l.group_start[b] = groups;
    l.slot_start[b] = slots;
    l.table_start[b] = floats;
    const int64_t g = (layout.width_count[b] + codebook_lane_fields(b) - 1) / codebook_lane_fields(b);
    groups += g;
    slots += g * codebook_lane_fields(b);
    floats += g * codebook_lane_fields(b) * codebook_lane_table_stride(b);
  }
  l.group_start[kCodebookLaneMaxBits + 1] = groups;
  l.slot_start[kCodebookLaneMaxBits + 1] = slots;
  l.table_start[kCodebookLaneMaxBits + 1] = floats;
  l.groups_per_stripe = groups;
  l.slots = slots;

  l.slot_position.assign(slots, -1);
  l.tables = AlignedFloats(floats, Placement::kWeights);
  std::memset(l.tables.data(), 0, sizeof(float) * floats);
  for (int b = 1; b <= kCodebookLaneMaxBits; ++b) {
    const int stride = codebook_lane_table_stride(b);
    for (int64_t i = 0; i < layout.width_count[b]; ++i) {
      const int64_t k = layout.width_start[b] + i;
      l.slot_position[l.slot_start[b] + i] = static_cast<int32_t>(k);
      const uint16_t* t = w.centroids + layout.centroid_offset(k);
      float* dst = l.tables.data() + l.table_start[b] + i * stride;
      for (int m = 0; m < stride; ++m) dst[m] = fp16_to_fp32(t[m % (1 << b)]);
    }
  }

  const int64_t count = layout.stripes * groups * kCodebookStripeRows + kCodebookLanePadWords;
  l.words = AlignedArray<uint32_t>(count, Placement::kWeights);
  std::memset(l.words.data(), 0, sizeof(uint32_t) * count);
  const auto* stream = static_cast<const uint8_t*>(w.data);
  for (int64_t s = 0; s < layout.stripes; ++s) {
    const uint8_t* base = stream + s * layout.stripe_bytes;
    for (int b = 1; b <= kCodebookLaneMaxBits; ++b) {
      const int fields = codebook_lane_fields(b);
      for (int64_t i = 0; i < layout.width_count[b]; ++i) {
        const int64_t k = layout.width_start[b] + i;
        const uint8_t* slice = base + layout.slice_offset(k);
        const int64_t g = l.group_start[b] + i / fields;
        const int shift = b * static_cast<int>(i % fields);
        uint32_t* block = l.words.data() + (s * groups + g) * kCodebookStripeRows;
        // Row j's index: bits [j b, j b + b) of the slice (the stream is padded, so
        // the second byte always exists).
        for (int64_t j = 0; j < kCodebookStripeRows; ++j) {
          const int64_t bit = j * b;
          const unsigned v = slice[bit / 8] | (static_cast<unsigned>(slice[bit / 8 + 1]) << 8);
          block[j] |= ((v >> (bit % 8)) & ((1u << b) - 1)) << shift;
        }
      }
    }
  }
  return l;
}

}  // namespace quarot
