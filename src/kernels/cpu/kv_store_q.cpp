#include "kernels/cpu/kv_store_q.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "kernels/cpu/int_quant.h"
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

void QuantKvLayerStore::append(const float* rows, int64_t n, int64_t pos0, bool keep_first_fp) {
  QUAROT_CHECK(n >= 0 && pos0 >= 0 && pos0 <= size_,
               "quantized KV cache: cannot write {} positions at {} when {} are stored", n, pos0, size_);
  QUAROT_CHECK(pos0 + n <= capacity_, "quantized KV cache: positions {}..{} exceed the capacity of {}", pos0,
               pos0 + n - 1, capacity_);
  if (n == 0) {
    size_ = pos0;
    return;
  }
  const QuantKvLayout& l = layout_;
  const int64_t hd = l.head_dim, gs = l.group_size(), groups = l.groups_per_head(), kvd = l.row_dim();
  const int64_t code_bytes = l.code_bytes_per_head();
  const int offset = 1 << (l.bits - 1);  // symmetric code c is stored as c + 2^(b-1)
  if (pos0 == 0) first_fp_ = false;
  // Scan for non-finite values first, so a throw leaves the store unchanged and
  // none happens inside the parallel region.
  for (int64_t i = 0; i < n * kvd; ++i)
    QUAROT_CHECK(std::isfinite(rows[i]), "quantized KV cache: non-finite value {} at position {}", rows[i],
                 pos0 + i / kvd);
#pragma omp parallel if (n * kvd > 65536)
  {
    std::vector<uint8_t> q(static_cast<size_t>(gs));
    std::vector<int8_t> qs(static_cast<size_t>(gs));
#pragma omp for schedule(static)
    for (int64_t idx = 0; idx < n * l.n_kv_heads; ++idx) {
      const int64_t t = idx / l.n_kv_heads, head = idx % l.n_kv_heads, pos = pos0 + t;
      const float* x = rows + t * kvd + head * hd;
      uint8_t* c = codes_.data() + (head * capacity_ + pos) * code_bytes;
      float* p = params_.data() + (head * capacity_ + pos) * 2 * groups;
      std::fill_n(c, code_bytes, uint8_t{0});
      for (int64_t g = 0; g < groups; ++g) {
        if (l.symmetric) {
          p[2 * g] = quantize_sym(x + g * gs, gs, l.bits, l.clip_ratio, qs.data());
          p[2 * g + 1] = static_cast<float>(offset);
          for (int64_t i = 0; i < gs; ++i) q[i] = static_cast<uint8_t>(qs[i] + offset);
        } else {
          const AsymQuantParams a = quantize_asym(x + g * gs, gs, l.bits, l.clip_ratio, q.data());
          p[2 * g] = a.scale;
          p[2 * g + 1] = static_cast<float>(a.zero);
        }
        for (int64_t i = 0; i < gs; ++i) {
          const int64_t d = g * gs + i;
          if (l.packed())
            c[d / 2] |= static_cast<uint8_t>(q[i] << (4 * (d % 2)));
          else
            c[d] = q[i];
        }
      }
    }
  }
  if (pos0 == 0 && keep_first_fp) {
    std::copy_n(rows, kvd, first_row_.data());
    first_fp_ = true;
  }
  size_ = pos0 + n;
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
