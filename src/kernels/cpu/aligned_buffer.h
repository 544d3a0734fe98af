#pragma once
// A fixed-size array of trivially copyable values aligned to a cache line (64
// bytes), so packed weight panels start on a line and aligned SIMD loads never
// split one. Contents are uninitialized. Packed weights ask for Placement::kWeights:
// memory from weight_arena.h (huge pages, for decode's streaming reads).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>

#include "kernels/cpu/weight_arena.h"

namespace quarot {

enum class Placement { kHeap, kWeights };

template <typename T>
class AlignedArray {
  static_assert(std::is_trivially_copyable_v<T>, "AlignedArray holds plain values only");

 public:
  static constexpr size_t kAlignment = 64;

  AlignedArray() = default;
  explicit AlignedArray(int64_t count, Placement where = Placement::kHeap) : size_(count) {
    if (count <= 0) return;
    const size_t bytes = (static_cast<size_t>(count) * sizeof(T) + kAlignment - 1) / kAlignment * kAlignment;
    if (where == Placement::kWeights) {
      const weight_arena::Piece piece = weight_arena::allocate(bytes);
      data_ = std::unique_ptr<T, FreeDeleter>(static_cast<T*>(piece.data), FreeDeleter{piece.slab});
      return;
    }
    void* p = std::aligned_alloc(kAlignment, bytes);
    if (p == nullptr) throw std::bad_alloc();
    data_.reset(static_cast<T*>(p));
  }

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  int64_t size() const { return size_; }

 private:
  struct FreeDeleter {
    weight_arena::Slab* slab = nullptr;  // set: a weight_arena piece
    void operator()(T* p) const {
      if (slab != nullptr)
        weight_arena::release(weight_arena::Piece{p, slab});
      else
        std::free(p);
    }
  };
  std::unique_ptr<T, FreeDeleter> data_;
  int64_t size_ = 0;
};

using AlignedFloats = AlignedArray<float>;
using AlignedBytes = AlignedArray<uint8_t>;

}  // namespace quarot
