#pragma once
// The reference KV storage: FP32 rows. When the spec quantizes the cache, each
// head vector is quantize-dequantized once on append (the simulated arithmetic
// that a packed integer cache must reproduce); attention then runs on FP32 rows.
#include <vector>

#include "kernels/backend.h"

namespace quarot {

class Fp32KvStorage final : public KvStorage {
 public:
  explicit Fp32KvStorage(const KvCacheSpec& spec);
  void append(int64_t layer, int64_t pos0, int64_t n, const float* k, const float* v) override;
  std::unique_ptr<KvStorage> clone(int64_t positions) const override;
  int64_t bytes_per_position() const override { return 2 * spec_.n_layers * spec_.kv_dim() * 4; }

  const float* k(int64_t layer) const { return k_[layer].data(); }
  const float* v(int64_t layer) const { return v_[layer].data(); }

 private:
  std::vector<std::vector<float>> k_, v_;
};

// Checks what every storage needs (positive sizes, groups dividing head_dim, bits).
void validate_kv_cache_spec(const KvCacheSpec& spec);

}  // namespace quarot
