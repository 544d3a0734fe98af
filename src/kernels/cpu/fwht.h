#pragma once
// Fast Walsh-Hadamard transform in Sylvester (natural) order,
//   H_1 = [1], H_{2n} = [[H_n, H_n], [H_n, -H_n]],
// and the online rotation of backend.h built on it. n log n adds instead of an
// n^2 matrix product, which is what makes QuaRot's online rotations cheap.
#include <cstdint>

#include "kernels/backend.h"

namespace quarot {

bool is_power_of_two(int64_t n);

// x <- H_n x (unnormalized); n must be a power of two (throws quarot::Error otherwise).
void fwht(float* x, int64_t n);
// dst <- H_n src for `count` consecutive runs of n values (run i at src + i * n and
// dst + i * n): the same bits as copying src to dst and transforming each run in place,
// without the copy's pass, and with one kernel choice for all runs (a row of down_proj's
// input is 12 runs of 128). src == dst is allowed; any other overlap is not.
void fwht(const float* src, float* dst, int64_t n, int64_t count = 1);
// x <- H_n x / sqrt(n): orthonormal, its own inverse.
void fwht_normalized(float* x, int64_t n);

// Checks r is well formed (k, p, inner positive, p a power of two, m of size k*k
// or empty when k == 1) and describes rows of `row_length` values; throws
// quarot::Error naming the problem otherwise.
void validate_online_rotation(const OnlineRotation& r, int64_t row_length);

// In place on n_rows rows of r.size() values (row i starts at rows + i*row_stride):
//   y[a, b, c] = sum_{a', b'} M[a, a'] * Hn[b, b'] * x[a', b', c],
// a row viewed as [k, p, inner], Hn the normalized Sylvester Hadamard of order p,
// M = r.m (identity when empty). Threads over rows with OpenMP. The default
// rotation {k=1, p=1, m empty} is a no-op whatever the row length; any other must
// have r.size() values per row.
void apply_online_rotation(const OnlineRotation& r, float* rows, int64_t n_rows, int64_t row_stride);
// The same on one row, on the calling thread (for callers already inside a parallel
// loop: apply_online_rotation would open a nested region per call). r must have been
// validated for r.size() values; `mixed` holds r.size() floats when r.m is not empty.
void apply_online_rotation_row(const OnlineRotation& r, float* x, float* mixed);

}  // namespace quarot
