#pragma once
// The KV cache of one sequence: the backend's storage (kernels/backend.h
// KvStorage: FP32 rows, a packed int4 cache, GPU memory...) plus how many
// positions are filled. Copying a KvCache copies the filled positions (used to
// share a prompt prefix between continuations). The model that runs the sequence
// may also keep state with it between forward() calls (SequenceState: persistent
// device buffers, a recorded decode step); that state is never copied.
#include <cstdint>
#include <memory>

#include "kernels/backend.h"

namespace quarot {

// Opaque to the cache: owned by it, made and read by the model (LlamaModel).
class SequenceState {
 public:
  virtual ~SequenceState() = default;
};

class KvCache {
 public:
  KvCache() = default;
  explicit KvCache(std::unique_ptr<KvStorage> storage) : storage_(std::move(storage)) {}
  KvCache(const KvCache& o) : storage_(o.storage_ ? o.storage_->clone(o.size_) : nullptr), size_(o.size_) {}
  KvCache& operator=(const KvCache& o) {
    if (this != &o) {
      state_.reset();  // it may refer to the storage being replaced
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
  SequenceState* sequence_state() const { return state_.get(); }
  void set_sequence_state(std::unique_ptr<SequenceState> s) { state_ = std::move(s); }

 private:
  std::unique_ptr<KvStorage> storage_;
  int64_t size_ = 0;
  std::unique_ptr<SequenceState> state_;  // declared last: dropped before the storage it may refer to
};

}  // namespace quarot
