#include "kernels/cpu/kv_dequant.h"

namespace quarot::kv_detail {

void dequant_rows_scalar(const uint8_t* codes, const float* params, int64_t rows, int64_t head_dim, int64_t group,
                         bool packed, float* out) {
  const int64_t code_bytes = packed ? (head_dim + 1) / 2 : head_dim, groups = head_dim / group;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* c = codes + r * code_bytes;
    const float* p = params + r * 2 * groups;
    float* o = out + r * head_dim;
    for (int64_t d = 0; d < head_dim; ++d) {
      const int code = packed ? (c[d / 2] >> (4 * (d % 2))) & 0x0f : c[d];
      const float scale = p[2 * (d / group)], zero = p[2 * (d / group) + 1];
      o[d] = (static_cast<float>(code) - zero) * scale;
    }
  }
}

DequantRowsFn dequant_rows_for(Isa isa, int64_t group) {
  if (isa != Isa::kScalar && group % 8 == 0) return dequant_rows_avx2;
  return dequant_rows_scalar;
}

}  // namespace quarot::kv_detail
