#include "io/tensor_source.h"

namespace quarot {

const TensorInfo* TensorSource::find(const std::string& name) const {
  for (const TensorInfo& t : tensors()) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace quarot
