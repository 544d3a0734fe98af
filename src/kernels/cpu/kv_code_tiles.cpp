#include "kernels/cpu/kv_code_tiles.h"

namespace quarot::kv_detail {
namespace {

int code_at(const CodeRows& r, const uint8_t* row, int64_t d) {
  return r.packed ? (row[d / 2] >> (4 * (d % 2))) & 0x0f : row[d];
}

int64_t code_bytes(const CodeRows& r) { return r.packed ? (r.head_dim + 1) / 2 : r.head_dim; }

void scores_scalar(const float* q, int64_t nq, const CodeRows& k, float scale, float* scores, int64_t ld,
                   float* /*work*/) {
  const int64_t hd = k.head_dim, groups = hd / k.group, cb = code_bytes(k);
  for (int64_t i = 0; i < nq; ++i)
    for (int64_t j = 0; j < k.rows; ++j) {
      const uint8_t* c = k.codes + j * cb;
      const float* p = k.params + j * 2 * groups;
      float total = 0.0f;
      for (int64_t g = 0; g < groups; ++g) {
        float dot = 0.0f;
        for (int64_t d = g * k.group; d < (g + 1) * k.group; ++d)
          dot += q[i * hd + d] * (static_cast<float>(code_at(k, c, d)) - p[2 * g + 1]);
        total += p[2 * g] * dot;
      }
      scores[i * ld + j] = total * scale;
    }
}

void weighted_sum_scalar(const float* pr, int64_t nq, int64_t ld, const CodeRows& v, float* o,
                         float* /*work*/) {
  const int64_t hd = v.head_dim, groups = hd / v.group, cb = code_bytes(v);
  for (int64_t i = 0; i < nq; ++i) {
    float* oi = o + i * hd;
    for (int64_t d = 0; d < hd; ++d) oi[d] = 0.0f;
    for (int64_t j = 0; j < v.rows; ++j) {
      const uint8_t* c = v.codes + j * cb;
      const float* p = v.params + j * 2 * groups;
      for (int64_t g = 0; g < groups; ++g) {
        const float w = pr[i * ld + j] * p[2 * g];
        for (int64_t d = g * v.group; d < (g + 1) * v.group; ++d)
          oi[d] += w * (static_cast<float>(code_at(v, c, d)) - p[2 * g + 1]);
      }
    }
  }
}

}  // namespace

int64_t work_floats(int64_t nq, int64_t rows, int64_t head_dim) { return nq * (rows > head_dim ? rows : head_dim); }

const CodeTileKernels& code_tile_kernels_scalar() {
  static const CodeTileKernels k{scores_scalar, weighted_sum_scalar};
  return k;
}

const CodeTileKernels* code_tile_kernels_for(Isa isa, int64_t head_dim, int64_t group) {
  if (isa == Isa::kScalar) return &code_tile_kernels_scalar();
  if (head_dim % 16 == 0 && group % 16 == 0) return &code_tile_kernels_avx2();
  return nullptr;
}

}  // namespace quarot::kv_detail
