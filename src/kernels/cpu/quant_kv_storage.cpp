#include "kernels/cpu/quant_kv_storage.h"

#include <algorithm>
#include <atomic>

#include "common/error.h"
#include "common/threads.h"
#include "kernels/cpu/act_quant_kernels.h"
#include "kernels/cpu/cpu_features.h"
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

QuantKvLayout kv_layout(const KvCacheSpec& spec, const KvQuantSpec& side) {
  QuantKvLayout l;
  l.n_kv_heads = spec.n_kv_heads;
  l.head_dim = spec.head_dim;
  l.group = side.group;
  l.bits = side.bits;
  l.symmetric = side.symmetric;
  l.clip_ratio = side.clip_ratio;
  return l;
}

QuantKvStorage::Side QuantKvStorage::make_side(const KvQuantSpec& q) const {
  Side s;
  s.quantized = side_quantized(q);
  if (s.quantized) {
    s.quant = QuantKvLayerStore(kv_layout(spec_, q), spec_.capacity);
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

void QuantKvStorage::append(int64_t layer, int64_t pos0, int64_t n, const float* k, const float* v) {
  QUAROT_CHECK(layer >= 0 && layer < spec_.n_layers, "KV cache: layer {} out of range", layer);
  QUAROT_CHECK(n >= 0 && pos0 >= 0 && pos0 + n <= spec_.capacity, "KV cache: positions {}..{} exceed its {} positions",
               pos0, pos0 + n - 1, spec_.capacity);
  Side* sides[2] = {&k_[layer], &v_[layer]};
  const float* rows[2] = {k, v};
  for (Side* s : sides)
    if (s->quantized) s->quant.begin_append(n, pos0);
  const int64_t kvd = spec_.kv_dim();
  // K and V in one parallel region: the finiteness check first (nothing is written
  // when a value is not finite, so a throw leaves the cache unchanged), then each
  // position's codes. A region and a serial check per side cost ~120 us per
  // layer of a 512-token prompt on a 16-core Xeon, several times the quantization.
  const auto all_finite = act_quant_detail::act_quant_kernels_for(best_isa()).all_finite;
  // An atomic flag, not a reduction: the region is a lambda, where the flag is a
  // captured reference (not a shared variable an OpenMP reduction may name). The
  // loop's barrier orders every store before the test below.
  std::atomic<bool> bad{false};
  parallel_region_if(n * kvd >= QuantKvLayerStore::kParallelValues, [&] {
#pragma omp for schedule(static)
    for (int64_t t = 0; t < n; ++t) {
      for (int side = 0; side < 2; ++side)
        if (sides[side]->quantized && !all_finite(rows[side] + t * kvd, kvd))
          bad.store(true, std::memory_order_relaxed);
    }
    if (!bad.load(std::memory_order_relaxed)) {
#pragma omp for schedule(static)
      for (int64_t t = 0; t < n; ++t) {
        for (int side = 0; side < 2; ++side) {
          if (sides[side]->quantized)
            sides[side]->quant.store_rows(rows[side], t, t + 1, pos0);
          else
            std::copy_n(rows[side] + t * kvd, kvd, sides[side]->fp.data() + (pos0 + t) * kvd);
        }
      }
    }
  });
  if (bad.load()) {
    for (int side = 0; side < 2; ++side) {
      if (!sides[side]->quantized) continue;
      for (int64_t i = 0; i < n * kvd; ++i)
        QUAROT_CHECK(std::isfinite(rows[side][i]), "quantized KV cache: non-finite value {} at position {}",
                     rows[side][i], pos0 + i / kvd);
    }
  }
  for (int side = 0; side < 2; ++side)
    if (sides[side]->quantized) sides[side]->quant.end_append(rows[side], n, pos0, spec_.intact_kv);
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
