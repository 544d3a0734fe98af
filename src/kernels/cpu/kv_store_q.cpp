#include "kernels/cpu/kv_store_q.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "common/threads.h"
#include "kernels/cpu/kv_dequant.h"

namespace quarot {

void validate(const QuantKvLayout& l) {
  QUAROT_CHECK(l.n_kv_heads > 0 && l.head_dim > 0, "quantized KV cache: {} KV heads of dimension {}: need positive sizes",
               l.n_kv_heads, l.head_dim);
  QUAROT_CHECK(l.bits >= 2 && l.bits <= 8, "quantized KV cache: bit width {} is outside 2..8", l.bits);
  QUAROT_CHECK(l.group >= 0 && l.group <= l.head_dim && (l.group == 0 || l.head_dim % l.group == 0),
               "quantized KV cache: group size {} does not divide the head dimension {}", l.group, l.head_dim);
  QUAROT_CHECK(std::isfinite(l.clip_ratio) && l.clip_ratio > 0.0f, "quantized KV cache: clip ratio {} is not positive",
               l.clip_ratio);
}

QuantKvLayerStore::QuantKvLayerStore(const QuantKvLayout& layout, int64_t capacity)
    : layout_(layout), capacity_(capacity) {
  validate(layout);
  QUAROT_CHECK(capacity >= 0, "quantized KV cache: negative capacity {}", capacity);
  codes_.assign(static_cast<size_t>(layout.n_kv_heads * capacity * layout.code_bytes_per_head()), 0);
  params_.assign(static_cast<size_t>(layout.n_kv_heads * capacity * 2 * layout.groups_per_head()), 0.0f);
  first_row_.assign(static_cast<size_t>(layout.row_dim()), 0.0f);
}

int64_t QuantKvLayerStore::memory_bytes() const {
  return static_cast<int64_t>(codes_.size() + 4 * params_.size() + 4 * first_row_.size());
}

void QuantKvLayerStore::begin_append(int64_t n, int64_t pos0) {
  QUAROT_CHECK(n >= 0 && pos0 >= 0 && pos0 <= size_,
               "quantized KV cache: cannot write {} positions at {} when {} are stored", n, pos0, size_);
  QUAROT_CHECK(pos0 + n <= capacity_, "quantized KV cache: positions {}..{} exceed the capacity of {}", pos0,
               pos0 + n - 1, capacity_);
  kernels_ = &act_quant_detail::act_quant_kernels_for(best_isa());  // QUAROT_ISA read once per append
}

void QuantKvLayerStore::store_rows(const float* rows, int64_t t0, int64_t t1, int64_t pos0) {
  const act_quant_detail::ActQuantKernels& k = *kernels_;
  const int64_t kvd = layout_.row_dim();
  for (int64_t t = t0; t < t1; ++t) {
    for (int64_t head = 0; head < layout_.n_kv_heads; ++head)
      quantize_head(k, rows + t * kvd + head * layout_.head_dim, head, pos0 + t);
  }
}

void QuantKvLayerStore::end_append(const float* rows, int64_t n, int64_t pos0, bool keep_first_fp) {
  if (n > 0 && pos0 == 0) {
    first_fp_ = keep_first_fp;
    if (keep_first_fp) std::copy_n(rows, layout_.row_dim(), first_row_.data());
  }
  size_ = pos0 + n;
}

void QuantKvLayerStore::append(const float* rows, int64_t n, int64_t pos0, bool keep_first_fp) {
  begin_append(n, pos0);
  const int64_t kvd = layout_.row_dim();
  // Non-finite values are rejected before anything is written, so a throw leaves the
  // store unchanged and none happens inside the parallel region.
  if (n > 0 && !kernels_->all_finite(rows, n * kvd)) {
    for (int64_t i = 0; i < n * kvd; ++i)
      QUAROT_CHECK(std::isfinite(rows[i]), "quantized KV cache: non-finite value {} at position {}", rows[i],
                   pos0 + i / kvd);
  }
  parallel_region_if(n * kvd >= kParallelValues, [&] {
#pragma omp for schedule(static)
    for (int64_t t = 0; t < n; ++t) store_rows(rows, t, t + 1, pos0);
  });
  end_append(rows, n, pos0, keep_first_fp);
}

void QuantKvLayerStore::quantize_head(const act_quant_detail::ActQuantKernels& k, const float* x, int64_t head,
                                      int64_t pos) {
  const QuantKvLayout& l = layout_;
  const int64_t hd = l.head_dim, gs = l.group_size(), groups = l.groups_per_head();
  uint8_t* c = codes_.data() + (head * capacity_ + pos) * l.code_bytes_per_head();
  float* p = params_.data() + (head * capacity_ + pos) * 2 * groups;
  // One code per byte first (the encode kernel's output), packed to nibbles below.
  alignas(64) uint8_t q[kMaxHeadDim];
  uint8_t* codes = l.packed() ? q : c;
  if (hd > kMaxHeadDim && l.packed()) {
    thread_local std::vector<uint8_t> wide;
    wide.resize(static_cast<size_t>(hd));
    codes = wide.data();
  }
  for (int64_t g = 0; g < groups; ++g) {
    const float* src = x + g * gs;
    uint8_t* dst = codes + g * gs;
    // int_quant.cpp's quantize_sym / quantize_asym, the same expressions: the scale and
    // zero point below, codes clamp(nearbyint(x / s) + z, lo, hi) from the kernel.
    if (l.symmetric) {
      const int offset = 1 << (l.bits - 1);  // symmetric code c is stored as c + 2^(b-1)
      const float qmax = static_cast<float>(offset - 1);
      const float s = l.clip_ratio * k.abs_max(src, gs) / qmax;
      p[2 * g] = s;
      p[2 * g + 1] = static_cast<float>(offset);
      if (s == 0.0f)
        std::fill_n(dst, gs, static_cast<uint8_t>(offset));
      else
        k.encode(src, gs, s, 0.0f, -qmax - 1.0f, qmax, offset, dst);
    } else {
      float lo = 0.0f, hi = 0.0f;
      k.min_max(src, gs, &lo, &hi);
      lo *= l.clip_ratio;
      hi *= l.clip_ratio;
      const float qmax = static_cast<float>((1 << l.bits) - 1);
      const float s = (hi - lo) / qmax;
      p[2 * g] = s;
      if (s == 0.0f) {
        p[2 * g + 1] = 0.0f;
        std::fill_n(dst, gs, uint8_t{0});
        continue;
      }
      const float z = std::nearbyint(-lo / s);
      p[2 * g + 1] = static_cast<float>(static_cast<int32_t>(z));  // +0, never -0, as before
      k.encode(src, gs, s, z, 0.0f, qmax, 0, dst);
    }
  }
  if (l.packed()) {
    // Element 2i in the low nibble of byte i; an odd head_dim leaves the last high nibble 0.
    for (int64_t i = 0; i < hd / 2; ++i) c[i] = static_cast<uint8_t>(codes[2 * i] | (codes[2 * i + 1] << 4));
    if (hd % 2 != 0) c[hd / 2] = codes[hd - 1];
  }
}

void QuantKvLayerStore::dequantize(int64_t pos0, int64_t n, float* out) const {
  QUAROT_CHECK(pos0 >= 0 && n >= 0 && pos0 + n <= size_,
               "quantized KV cache: positions {}..{} are not all stored ({} are)", pos0, pos0 + n - 1, size_);
  const QuantKvLayout& l = layout_;
  const int64_t hd = l.head_dim, kvd = l.row_dim();
  const kv_detail::DequantRowsFn kernel = kv_detail::dequant_rows_for(best_isa(), l.group_size());
  std::vector<float> tmp(static_cast<size_t>(n * hd));
  for (int64_t head = 0; head < l.n_kv_heads; ++head) {
    kernel(codes(head, pos0), params(head, pos0), n, hd, l.group_size(), l.packed(), tmp.data());
    for (int64_t t = 0; t < n; ++t) std::copy_n(tmp.data() + t * hd, hd, out + t * kvd + head * hd);
  }
  if (first_fp_ && pos0 == 0 && n > 0) std::copy_n(first_row_.data(), kvd, out);
}

}  // namespace quarot
