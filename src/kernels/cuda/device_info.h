#pragma once
// Which CUDA device quarot would use, for `quarot inspect`/`bench` once the CUDA
// backend lands. Throws quarot::Error when no usable device is present.
#include <string>

namespace quarot::cuda {

std::string device_description();

}  // namespace quarot::cuda
