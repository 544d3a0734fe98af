#pragma once
// A dense, owning, row-major FP32 tensor. Shapes are written outermost first
// (PyTorch order): a linear layer's weight is [out_features, in_features].
// Every file reader converts to this order (GGUF stores innermost first).
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

namespace quarot {

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;

  Tensor() = default;
  explicit Tensor(std::vector<int64_t> s, float fill = 0.0f) : shape(std::move(s)) {
    data.assign(numel_of(shape), fill);
  }

  static int64_t numel_of(const std::vector<int64_t>& s) {
    return std::accumulate(s.begin(), s.end(), int64_t{1}, std::multiplies<int64_t>());
  }
  int64_t numel() const { return static_cast<int64_t>(data.size()); }
  bool empty() const { return data.empty(); }
  int ndim() const { return static_cast<int>(shape.size()); }
  // Matrix view: rows = product of all but the last dim, cols = last dim.
  int64_t cols() const { return shape.empty() ? 0 : shape.back(); }
  int64_t rows() const { return cols() == 0 ? 0 : numel() / cols(); }
  float* row(int64_t r) { return data.data() + r * cols(); }
  const float* row(int64_t r) const { return data.data() + r * cols(); }
  float& at(int64_t r, int64_t c) { return data[r * cols() + c]; }
  float at(int64_t r, int64_t c) const { return data[r * cols() + c]; }
  std::string shape_str() const;
};

}  // namespace quarot
