#pragma once
// The integer backend's KV storage: each quantized side (K, V) kept as packed codes
// with per-group scale and zero point (kv_store_q.h), the other side, if any, as
// FP32 rows. Dequantized values equal the reference storage's (fp32_kv_storage.h)
// fake-quantized rows, so attention over it agrees with the simulated path to
// float rounding.
#include <memory>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/kv_attention.h"
#include "kernels/cpu/kv_store_q.h"

namespace quarot {

// The layer store's layout for one quantized side of `spec`.
QuantKvLayout kv_layout(const KvCacheSpec& spec, const KvQuantSpec& side);

class QuantKvStorage final : public KvStorage {
 public:
  // At least one of spec.k, spec.v must be enabled with 2..8 bits.
  explicit QuantKvStorage(const KvCacheSpec& spec);
  void append(int64_t layer, int64_t pos0, int64_t n, const float* k, const float* v) override;
  std::unique_ptr<KvStorage> clone(int64_t positions) const override;
  int64_t bytes_per_position() const override;

  KvSource k(int64_t layer) const { return source(k_[layer]); }
  KvSource v(int64_t layer) const { return source(v_[layer]); }

  // True when this storage can hold the spec (bits 2..8 on at least one side).
  static bool supports(const KvCacheSpec& spec);

 private:
  struct Side {
    QuantKvLayerStore quant;  // used when quantized
    std::vector<float> fp;    // otherwise [capacity, kv_dim]
    bool quantized = false;
  };
  Side make_side(const KvQuantSpec& q) const;
  static KvSource source(const Side& s) {
    KvSource src;
    if (s.quantized)
      src.quant = &s.quant;
    else
      src.fp = s.fp.data();
    return src;
  }
  std::vector<Side> k_, v_;
};

}  // namespace quarot
