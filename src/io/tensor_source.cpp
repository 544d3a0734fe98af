#include "io/tensor_source.h"

#include <algorithm>

#include "common/error.h"

namespace quarot {

void check_tensor_data_disjoint(const std::vector<TensorInfo>& tensors, const std::string& path) {
  std::vector<const TensorInfo*> by_offset;
  for (const TensorInfo& t : tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo& a = *by_offset[i - 1];
    const TensorInfo& b = *by_offset[i];
    if (a.offset + a.nbytes > b.offset && a.nbytes > 0 && b.nbytes > 0)
      fail("{}: tensors {} and {} have overlapping data", path, a.name, b.name);
  }
}

const TensorInfo* TensorSource::find(const std::string& name) const {
  for (const TensorInfo& t : tensors()) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace quarot
