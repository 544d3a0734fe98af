#pragma once
// backend.h's rotate() on the GPU: out = R(x) for `rows` rows of r.size() values,
// one thread block per row staged in shared memory (cuda_row_ops.cuh: the CPU's
// float operations in the CPU's order, so the rows are bit-identical to
// kernels/cpu/fwht.h's apply_online_rotation). out may alias x. Rows longer than
// the device allows in shared memory (H200: about 58K values, 29K with a matrix M) give
// cudaErrorInvalidValue.
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/cuda_row_ops.cuh"

namespace quarot::cuda {

cudaError_t rotate_rows(const RotationArgs& r, const float* x, int64_t rows, float* out, cudaStream_t stream);

// Shared memory (bytes) a row kernel needs to stage `n` values (twice with a
// matrix M), and the launch shape used for rows of n values.
size_t row_smem_bytes(int64_t n, bool has_m);
int row_threads(int64_t n);
// Raises the kernel's dynamic shared memory limit when `bytes` exceeds the default
// 48 KiB; cudaErrorInvalidValue beyond what the device allows per block.
cudaError_t allow_smem(const void* kernel, size_t bytes);

}  // namespace quarot::cuda
