#pragma once
// Per-layer key/value cache. Values are stored as FP32; when the recipe quantizes
// the cache, each head vector is quantize-dequantized once on append (the simulated
// arithmetic an int4 cache will reproduce).
#include <cstdint>
#include <vector>

namespace quarot {

class KvCache {
 public:
  KvCache() = default;
  KvCache(int64_t n_layers, int64_t kv_dim, int64_t capacity);
  int64_t size() const { return size_; }
  int64_t capacity() const { return capacity_; }
  void clear() { size_ = 0; }
  float* k(int64_t layer, int64_t pos) { return k_[layer].data() + pos * kv_dim_; }
  float* v(int64_t layer, int64_t pos) { return v_[layer].data() + pos * kv_dim_; }
  const float* k(int64_t layer, int64_t pos) const { return k_[layer].data() + pos * kv_dim_; }
  const float* v(int64_t layer, int64_t pos) const { return v_[layer].data() + pos * kv_dim_; }
  void advance(int64_t n) { size_ += n; }

 private:
  int64_t kv_dim_ = 0, capacity_ = 0, size_ = 0;
  std::vector<std::vector<float>> k_, v_;
};

}  // namespace quarot
