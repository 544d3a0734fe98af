#include <cuda_runtime.h>

#include "common/error.h"
#include "kernels/cuda/device_info.h"

namespace quarot::cuda {

std::string device_description() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0)
    fail("CUDA: no usable device ({})", err != cudaSuccess ? cudaGetErrorString(err) : "none found");
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) fail("CUDA: cannot read device 0's properties");
  return fmt::format("{} (sm_{}{}, {} SMs, {:.0f} GiB, L2 {} MiB)", p.name, p.major, p.minor, p.multiProcessorCount,
                     p.totalGlobalMem / 1073741824.0, p.l2CacheSize >> 20);
}

}  // namespace quarot::cuda
