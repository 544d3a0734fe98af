#include "kernels/cpu/kv_code_tiles.h"

#include <algorithm>
#include <cmath>
#include <vector>

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

// The int8 reference (contract in kv_code_tiles.h): one {scale, zero} per row, codes < 16.
void scores_int8_scalar(const float* q, int64_t nq, const CodeRows& k, float scale, float* scores, int64_t ld,
                        float* /*work*/) {
  const int64_t hd = k.head_dim, cb = code_bytes(k);
  const float qmax = static_cast<float>(kCodeTileQueryMax);
  std::vector<int32_t> q16(static_cast<size_t>(hd));
  for (int64_t i = 0; i < nq; ++i) {
    const float* qi = q + i * hd;
    float m = 0.0f;
    for (int64_t d = 0; d < hd; ++d) m = std::max(m, std::fabs(qi[d]));
    const float inv = m > 0.0f ? qmax / m : 0.0f;
    int32_t total = 0;
    for (int64_t d = 0; d < hd; ++d) {
      q16[d] = std::clamp(static_cast<int32_t>(std::nearbyint(qi[d] * inv)), -kCodeTileQueryMax, kCodeTileQueryMax);
      total += q16[d];
    }
    const float factor = scale * (m / qmax);
    for (int64_t j = 0; j < k.rows; ++j) {
      const uint8_t* c = k.codes + j * cb;
      int32_t dot = 0;
      for (int64_t d = 0; d < hd; ++d) dot += q16[d] * code_at(k, c, d);
      const float s = k.params[2 * j], z = k.params[2 * j + 1];
      scores[i * ld + j] = std::fma(-z, static_cast<float>(total), static_cast<float>(dot)) * (s * factor);
    }
  }
}

void weighted_sum_int8_scalar(const float* pr, int64_t nq, int64_t ld, const CodeRows& v, float* o,
                              float* /*work*/) {
  const int64_t hd = v.head_dim, cb = code_bytes(v);
  std::vector<float> w(static_cast<size_t>(v.rows));
  std::vector<int32_t> u(static_cast<size_t>(v.rows));
  for (int64_t i = 0; i < nq; ++i) {
    float* oi = o + i * hd;
    float wmax = 0.0f;
    for (int64_t j = 0; j < v.rows; ++j) {
      w[j] = pr[i * ld + j] * v.params[2 * j];
      wmax = std::max(wmax, w[j]);
    }
    if (!(wmax > 0.0f)) {
      std::fill_n(oi, hd, 0.0f);
      continue;
    }
    const float inv = static_cast<float>(kCodeTileWeightMax) / wmax;
    double corr = 0.0;  // exact: integer terms (zero points are integers), far below 2^53
    for (int64_t j = 0; j < v.rows; ++j) {
      u[j] = std::min(kCodeTileWeightMax, static_cast<int32_t>(std::nearbyint(w[j] * inv)));
      corr += static_cast<double>(u[j]) * static_cast<double>(v.params[2 * j + 1]);
    }
    const float wscale = wmax / static_cast<float>(kCodeTileWeightMax);
    for (int64_t d = 0; d < hd; ++d) {
      int32_t acc = 0;
      for (int64_t j = 0; j < v.rows; ++j) acc += u[j] * code_at(v, v.codes + j * cb, d);
      oi[d] = (static_cast<float>(acc) - static_cast<float>(corr)) * wscale;
    }
  }
}

}  // namespace

// The int8 kernels keep 4 bytes of query codes per element, or 2 bytes of weight per
// row, plus 2 floats per query.
int64_t work_floats(int64_t nq, int64_t rows, int64_t head_dim) {
  return nq * ((rows > head_dim ? rows : head_dim) + 2);
}

const CodeTileKernels& code_tile_kernels_scalar() {
  static const CodeTileKernels k{scores_scalar, weighted_sum_scalar};
  return k;
}

const CodeTileKernels& code_tile_kernels_int8_scalar() {
  static const CodeTileKernels k{scores_int8_scalar, weighted_sum_int8_scalar};
  return k;
}

const CodeTileKernels* code_tile_kernels_int8_for(Isa isa, int64_t head_dim, int64_t group, bool packed) {
  // Elsewhere the float kernels are faster than an int8 emulation (as kv_prefill_int8.h).
  if (!packed || group != head_dim) return nullptr;
  if ((isa == Isa::kAvx512Vnni || isa == Isa::kAmx) && cpu_features().has_avx512_vbmi_vnni() && head_dim % 64 == 0)
    return &code_tile_kernels_int8_avx512vbmi();
  return nullptr;
}

const CodeTileKernels* code_tile_kernels_for(Isa isa, int64_t head_dim, int64_t group) {
  if (isa == Isa::kScalar) return &code_tile_kernels_scalar();
  if (head_dim % 16 == 0 && group % 16 == 0) return &code_tile_kernels_avx2();
  return nullptr;
}

}  // namespace quarot::kv_detail
