#include "kernels/cpu/quant_kv_storage.h"

#include <algorithm>

#include "common/error.h"
#include "kernels/cpu/fp32_kv_storage.h"

namespace quarot {
namespace {
bool side_quantized(const KvQuantSpec& q) { return q.enabled() && q.bits >= 2 && q.bits <= 8; }
}  // namespace

bool QuantKvStorage::supports(const KvCacheSpec& spec) {
  const bool k_ok = !spec.k.enabled() || side_quantized(spec.k);
  const bool v_ok = !spec.v.enabled() || side_quantized(spec.v);
  return k_ok && v_ok && (side_quantized(spec.k) || side_quantized(spec.v));
}

QuantKvStorage::Side QuantKvStorage::make_side(const KvQuantSpec& q) const {
  Side s;
  s.quantized = side_quantized(q);
  if (s.quantized) {
    QuantKvLayout l;
    l.n_kv_heads = spec_.n_kv_heads;
    l.head_dim = spec_.head_dim;
    l.group = q.group;
    l.bits = q.bits;
    l.symmetric = q.symmetric;
    l.clip_ratio = q.clip_ratio;
    s.quant = QuantKvLayerStore(l, spec_.capacity);
  } else {
    s.fp.assign(static_cast<size_t>(spec_.capacity * spec_.kv_dim()), 0.0f);
  }
  return s;
}

QuantKvStorage::QuantKvStorage(const KvCacheSpec& spec) : KvStorage(spec) {
  validate_kv_cache_spec(spec);
  QUAROT_CHECK(supports(spec), "KV cache: the integer cache holds 2..8-bit codes, got K {} bits, V {} bits",
               spec.k.bits, spec.v.bits);
  for (int64_t l = 0; l < spec.n_layers; ++l) {
    k_.push_back(make_side(spec.k));
    v_.push_back(make_side(spec.v));
  }
}

void QuantKvStorage::append_side(Side& s, int64_t pos0, int64_t n, const float* rows) const {
  if (s.quantized) {
    s.quant.append(rows, n, pos0, spec_.intact_kv);
  } else {
    std::copy_n(rows, n * spec_.kv_dim(), s.fp.data() + pos0 * spec_.kv_dim());
  }
}

void QuantKvStorage::append(int64_t layer, int64_t pos0, int64_t n, const float* k, const float* v) {
  QUAROT_CHECK(layer >= 0 && layer < spec_.n_layers, "KV cache: layer {} out of range", layer);
  QUAROT_CHECK(pos0 >= 0 && pos0 + n <= spec_.capacity, "KV cache: positions {}..{} exceed its {} positions", pos0,
               pos0 + n - 1, spec_.capacity);
  append_side(k_[layer], pos0, n, k);
  append_side(v_[layer], pos0, n, v);
}

std::unique_ptr<KvStorage> QuantKvStorage::clone(int64_t positions) const {
  // A whole copy: the stores are sized by capacity and positions past `positions`
  // are rewritten before they are read again.
  (void)positions;
  return std::make_unique<QuantKvStorage>(*this);
}

int64_t QuantKvStorage::bytes_per_position() const {
  auto side = [&](const KvQuantSpec& q) {
    if (!side_quantized(q)) return spec_.kv_dim() * 4;
    const int64_t gs = q.group == 0 ? spec_.head_dim : q.group;
    const int64_t code_bytes = q.bits <= 4 ? (spec_.head_dim + 1) / 2 : spec_.head_dim;
    return spec_.n_kv_heads * (code_bytes + 8 * (spec_.head_dim / gs));
  };
  return spec_.n_layers * (side(spec_.k) + side(spec_.v));
}

}  // namespace quarot
