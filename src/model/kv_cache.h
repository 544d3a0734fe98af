#pragma once
// The KV cache of one sequence: the backend's storage (kernels/backend.h
// KvStorage: FP32 rows, a packed int4 cache, GPU memory...) plus how many
// positions are filled. Copying a KvCache copies the filled positions (used to
// share a prompt prefix between continuations).
#include <cstdint>
#include <memory>

#include "kernels/backend.h"

namespace quarot {

class KvCache {
 public:
  KvCache() = default;
  explicit KvCache(std::unique_ptr<KvStorage> storage) : storage_(std::move(storage)) {}
  KvCache(const KvCache& o) : storage_(o.storage_ ? o.storage_->clone(o.size_) : nullptr), size_(o.size_) {}
  KvCache& operator=(const KvCache& o) {
    if (this != &o) {
      storage_ = o.storage_ ? o.storage_->clone(o.size_) : nullptr;
      size_ = o.size_;
    }
    return *this;
  }
  KvCache(KvCache&&) noexcept = default;
  KvCache& operator=(KvCache&&) noexcept = default;

  int64_t size() const { return size_; }
  int64_t capacity() const { return storage_ ? storage_->spec().capacity : 0; }
  void clear() { size_ = 0; }
  void advance(int64_t n) { size_ += n; }
  KvStorage& storage() { return *storage_; }
  const KvStorage& storage() const { return *storage_; }
  int64_t bytes() const { return storage_ ? storage_->bytes_per_position() * capacity() : 0; }

 private:
  std::unique_ptr<KvStorage> storage_;
  int64_t size_ = 0;
};

}  // namespace quarot
