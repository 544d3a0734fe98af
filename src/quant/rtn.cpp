#include "quant/rtn.h"

#include <cmath>

#include "common/error.h"
#include "common/threads.h"

namespace quarot {

void check_weight_spec(const WeightQuantSpec& spec, int64_t cols, const std::string& name) {
  if (spec.bits < 2 || spec.bits > 8) fail("{}: {} weight bits is out of range (2..8)", name, spec.bits);
  if (spec.group < 0 || (spec.group > 0 && cols % spec.group != 0))
    fail("{}: weight group {} does not divide {} input columns", name, spec.group, cols);
  if (spec.clip_search && (spec.grid <= 0 || !(spec.max_shrink > 0.0f && spec.max_shrink < 1.0f) || !(spec.norm > 0.0f)))
    fail("{}: invalid clip search (grid {}, max_shrink {}, norm {})", name, spec.grid, spec.max_shrink, spec.norm);
}

QuantizedMatrix quantize_rtn(const Tensor& w, const WeightQuantSpec& spec, const std::string& name) {
  if (w.ndim() != 2) fail("{}: expected a matrix, got shape {}", name, w.shape_str());
  check_weight_spec(spec, w.cols(), name);
  for (int64_t i = 0; i < w.numel(); ++i)
    if (!std::isfinite(w.data[i])) fail("{}: weight holds a non-finite value ({}) at index {}", name, w.data[i], i);
  QuantizedMatrix m;
  m.bits = spec.bits;
  m.symmetric = spec.symmetric;
  m.group = spec.group;
  m.rows = w.rows();
  m.cols = w.cols();
  const int64_t gs = m.group_size(), ng = m.n_groups();
  m.codes.resize(m.rows * m.cols);
  m.scales.resize(m.rows * ng);
  if (!m.symmetric) m.zeros.resize(m.rows * ng);
#pragma omp parallel for schedule(dynamic, 8) num_threads(num_threads())
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t g = 0; g < ng; ++g) {
      const float* x = w.row(r) + g * gs;
      const QuantParams p = find_quant_params(x, gs, spec);
      m.scales[r * ng + g] = p.scale;
      if (!m.symmetric) m.zeros[r * ng + g] = p.zero;
      uint8_t* c = m.codes.data() + r * m.cols + g * gs;
      for (int64_t i = 0; i < gs; ++i) c[i] = static_cast<uint8_t>(quantize_to_code(x[i], p, spec.bits));
    }
  }
  return m;
}

}  // namespace quarot
