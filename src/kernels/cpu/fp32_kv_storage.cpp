#include "kernels/cpu/fp32_kv_storage.h"

#include <algorithm>

#include "common/error.h"
#include "kernels/cpu/fake_quant.h"

namespace quarot {

void validate_kv_cache_spec(const KvCacheSpec& s) {
  QUAROT_CHECK(s.n_layers > 0 && s.n_kv_heads > 0 && s.head_dim > 0,
               "KV cache: invalid shape ({} layers, {} heads of {})", s.n_layers, s.n_kv_heads, s.head_dim);
  QUAROT_CHECK(s.capacity > 0, "KV cache size must be positive, got {}", s.capacity);
  for (const KvQuantSpec* q : {&s.k, &s.v}) {
    QUAROT_CHECK(q->bits >= 0 && q->bits <= 16, "KV cache: {} bits is out of range", q->bits);
    QUAROT_CHECK(q->group >= 0 && (q->group == 0 || s.head_dim % q->group == 0),
                 "KV cache: group {} does not divide head_dim {}", q->group, s.head_dim);
  }
}

Fp32KvStorage::Fp32KvStorage(const KvCacheSpec& spec) : KvStorage(spec) {
  validate_kv_cache_spec(spec);
  k_.assign(spec.n_layers, std::vector<float>(spec.capacity * spec.kv_dim()));
  v_.assign(spec.n_layers, std::vector<float>(spec.capacity * spec.kv_dim()));
}

void Fp32KvStorage::append(int64_t layer, int64_t pos0, int64_t n, const float* k, const float* v) {
  const KvCacheSpec& s = spec_;
  QUAROT_CHECK(layer >= 0 && layer < s.n_layers, "KV cache: layer {} out of range", layer);
  QUAROT_CHECK(pos0 >= 0 && pos0 + n <= s.capacity, "KV cache: positions {}..{} exceed its {} positions", pos0,
               pos0 + n - 1, s.capacity);
  const int64_t kvd = s.kv_dim();
  for (int64_t t = 0; t < n; ++t) {
    float* kc = k_[layer].data() + (pos0 + t) * kvd;
    float* vc = v_[layer].data() + (pos0 + t) * kvd;
    std::copy_n(k + t * kvd, kvd, kc);
    std::copy_n(v + t * kvd, kvd, vc);
    const bool keep_fp = s.intact_kv && pos0 + t == 0;
    if (s.k.enabled() && !keep_fp)
      fake_quant_rows(kc, s.n_kv_heads, s.head_dim, s.k.bits, s.k.clip_ratio, s.k.group, s.k.symmetric);
    if (s.v.enabled() && !keep_fp)
      fake_quant_rows(vc, s.n_kv_heads, s.head_dim, s.v.bits, s.v.clip_ratio, s.v.group, s.v.symmetric);
  }
}

std::unique_ptr<KvStorage> Fp32KvStorage::clone(int64_t positions) const {
  auto c = std::make_unique<Fp32KvStorage>(spec_);
  const int64_t count = std::clamp<int64_t>(positions, 0, spec_.capacity) * spec_.kv_dim();
  for (int64_t l = 0; l < spec_.n_layers; ++l) {
    std::copy_n(k_[l].data(), count, c->k_[l].data());
    std::copy_n(v_[l].data(), count, c->v_[l].data());
  }
  return c;
}

}  // namespace quarot
