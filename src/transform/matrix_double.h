#pragma once
// A row-major double matrix: weight fusion runs in double and rounds to float once
// at the end, so a chain of rotations costs one float rounding, not one per step.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/tensor.h"

namespace quarot {

struct MatrixD {
  int64_t rows = 0, cols = 0;
  std::vector<double> data;

  static MatrixD from_tensor(const Tensor& t) {
    MatrixD m;
    m.rows = t.rows();
    m.cols = t.cols();
    m.data.assign(t.data.begin(), t.data.end());
    return m;
  }
  // Writes back into t (same shape), rounding to float.
  void store(Tensor& t) const {
    t.data.resize(data.size());
    for (size_t i = 0; i < data.size(); ++i) t.data[i] = static_cast<float>(data[i]);
  }
  MatrixD transposed() const {
    MatrixD t;
    t.rows = cols;
    t.cols = rows;
    t.data.resize(data.size());
    constexpr int64_t kBlock = 64;
#pragma omp parallel for schedule(static) if (rows * cols > (1 << 16))
    for (int64_t r0 = 0; r0 < rows; r0 += kBlock)
      for (int64_t c0 = 0; c0 < cols; c0 += kBlock)
        for (int64_t r = r0; r < std::min(rows, r0 + kBlock); ++r)
          for (int64_t c = c0; c < std::min(cols, c0 + kBlock); ++c) t.data[c * rows + r] = data[r * cols + c];
    return t;
  }
  double* row(int64_t r) { return data.data() + r * cols; }
};

}  // namespace quarot
