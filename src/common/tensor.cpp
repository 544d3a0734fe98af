#include "common/tensor.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace quarot {

std::string Tensor::shape_str() const { return fmt::format("[{}]", fmt::join(shape, ", ")); }

}  // namespace quarot
