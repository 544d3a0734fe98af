#include "model/kv_cache.h"

namespace quarot {

KvCache::KvCache(int64_t n_layers, int64_t kv_dim, int64_t capacity)
    : kv_dim_(kv_dim), capacity_(capacity), size_(0) {
  k_.resize(n_layers);
  v_.resize(n_layers);
  for (int64_t l = 0; l < n_layers; ++l) {
    k_[l].assign(kv_dim * capacity, 0.0f);
    v_[l].assign(kv_dim * capacity, 0.0f);
  }
}

}  // namespace quarot
