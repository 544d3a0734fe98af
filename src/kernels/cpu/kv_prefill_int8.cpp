#include "kernels/cpu/kv_prefill_int8.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/fast_math.h"

namespace quarot::kv_detail {
namespace {

void scores_scalar(const uint8_t* qu, int64_t nq, int64_t hd, const int8_t* kq, const int32_t* kcorr,
                   const float* kscale, int64_t keys, const float* qfactor, float* s, int64_t ld) {
  const int64_t width = std::min(kPrefillKeys, (keys + 15) / 16 * 16);
  for (int64_t i = 0; i < nq; ++i) {
    for (int64_t j = 0; j < width; ++j) {
      int32_t acc = 0;
      for (int64_t d = 0; d < hd; ++d)
        acc += int32_t{qu[i * hd + d]} * int32_t{kq[(d / 4) * (kPrefillKeys * 4) + j * 4 + d % 4]};
      s[i * ld + j] = (static_cast<float>(acc - kcorr[j]) * qfactor[i]) * kscale[j];
    }
  }
}

void weighted_sum_scalar(const uint8_t* u, int64_t nq, int64_t ldu, const int8_t* vq, int64_t keys, int64_t hd,
                         const float* wscale, float* o) {
  const int64_t keys4 = (keys + 3) / 4 * 4;
  for (int64_t i = 0; i < nq; ++i) {
    for (int64_t d = 0; d < hd; ++d) {
      int32_t acc = 0;
      for (int64_t j = 0; j < keys4; ++j) acc += int32_t{u[i * ldu + j]} * int32_t{vq[(j / 4) * hd * 4 + d * 4 + j % 4]};
      o[i * hd + d] = std::fma(wscale[i], static_cast<float>(acc), o[i * hd + d]);
    }
  }
}

// max |x| / 127 and its inverse (both 0 for an all-zero row).
struct RowScale {
  float scale, inverse;
};
RowScale row_scale(const float* x, int64_t n, const float* given, int64_t r) {
  if (given != nullptr && given[r] > 0.0f) return {given[r], 1.0f / given[r]};
  float mx = 0.0f;
  for (int64_t d = 0; d < n; ++d) mx = std::max(mx, std::fabs(x[d]));
  if (!(mx > 0.0f)) return {0.0f, 0.0f};
  return {mx / 127.0f, 127.0f / mx};
}

int8_t code(float x, float inverse) {
  return static_cast<int8_t>(std::clamp(std::nearbyint(x * inverse), -127.0f, 127.0f));
}

void quantize_keys_scalar(const float* x, int64_t rows, int64_t stride, int64_t hd, int64_t j0, const float* given,
                          int8_t* kq, float* kscale, int32_t* kcorr) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * stride;
    const RowScale rs = row_scale(row, hd, given, r);
    const int64_t j = j0 + r;
    int32_t sum = 0;
    for (int64_t d = 0; d < hd; ++d) {
      const int8_t c = code(row[d], rs.inverse);
      kq[(d / 4) * (kPrefillKeys * 4) + j * 4 + d % 4] = c;
      sum += c;
    }
    kscale[r] = rs.scale;
    kcorr[r] = 128 * sum;
  }
}

void quantize_values_scalar(const float* x, int64_t rows, int64_t stride, int64_t hd, int64_t j0,
                            const float* given, int8_t* vq, float* vscale) {
  const int64_t end = (j0 + rows + 3) / 4 * 4;
  for (int64_t j = j0; j < end; ++j) {
    const int64_t r = j - j0;
    const float* row = x + r * stride;
    const RowScale rs = r < rows ? row_scale(row, hd, given, r) : RowScale{0.0f, 0.0f};
    for (int64_t d = 0; d < hd; ++d)
      vq[(j / 4) * hd * 4 + d * 4 + j % 4] = r < rows ? code(row[d], rs.inverse) : int8_t{0};
    if (r < rows) vscale[r] = rs.scale;
  }
}

void quantize_queries_scalar(const float* q, int64_t nq, int64_t hd, float factor, uint8_t* qu, float* qfactor) {
  for (int64_t i = 0; i < nq; ++i) {
    const RowScale rs = row_scale(q + i * hd, hd, nullptr, 0);
    for (int64_t d = 0; d < hd; ++d) qu[i * hd + d] = static_cast<uint8_t>(code(q[i * hd + d], rs.inverse) + 128);
    qfactor[i] = factor * rs.scale;
  }
}

float softmax_row_scalar(const float* s, int64_t visible, const float* vscale, float* m, uint8_t* u, float* wscale) {
  constexpr float kLog2e = 1.4426950408889634f;
  float mx = *m;
  for (int64_t j = 0; j < visible; ++j) mx = std::max(mx, s[j]);
  *m = mx;
  const float shift = mx * kLog2e;
  float w[kPrefillKeys];
  float sum = 0.0f, wmax = 0.0f;
  for (int64_t j = 0; j < visible; ++j) {
    const float p = detail::fast_exp2(std::max(std::fma(s[j], kLog2e, -shift), -150.0f));
    sum += p;
    w[j] = p * vscale[j];
    wmax = std::max(wmax, w[j]);
  }
  std::fill(u, u + kPrefillKeys, uint8_t{0});
  if (!(wmax > 0.0f)) {
    *wscale = 0.0f;
    return sum;
  }
  const float inverse = 255.0f / wmax;
  for (int64_t j = 0; j < visible; ++j) u[j] = static_cast<uint8_t>(static_cast<int32_t>(w[j] * inverse + 0.5f));
  *wscale = wmax / 255.0f;
  return sum;
}

void softmax_rows_scalar(const float* s, int64_t ld, int64_t nq, const int64_t* visible, const float* vscale, float* m,
                         uint8_t* u, int64_t ldu, float* wscale, float* sums) {
  for (int64_t i = 0; i < nq; ++i) {
    if (visible[i] == 0) {
      std::fill(u + i * ldu, u + i * ldu + kPrefillKeys, uint8_t{0});
      wscale[i] = 0.0f;
      sums[i] = 0.0f;
      continue;
    }
    sums[i] = softmax_row_scalar(s + i * ld, visible[i], vscale, &m[i], u + i * ldu, &wscale[i]);
  }
}

}  // namespace

const PrefillInt8Kernels& prefill_int8_kernels_scalar() {
  static const PrefillInt8Kernels k{scores_scalar,          weighted_sum_scalar,     quantize_keys_scalar,
                                    quantize_values_scalar, quantize_queries_scalar, softmax_row_scalar,
                                    softmax_rows_scalar};
  return k;
}

const PrefillInt8Kernels* prefill_int8_kernels_for(Isa isa, int64_t hd) {
  if (isa == Isa::kAmx && hd % 64 == 0) return &prefill_int8_kernels_amx();
  if ((isa == Isa::kAvx512Vnni || isa == Isa::kAmx) && hd % 16 == 0) return &prefill_int8_kernels_avx512vnni();
  return nullptr;
}

}  // namespace quarot::kv_detail
