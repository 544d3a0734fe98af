#pragma once
// Internal, included by act_quant.cpp (portable flags) and act_quant_avx2.cpp (AVX2
// flags): the k x k mixing of an online rotation,
//   out[a * block + c] = 0 + m[a][0] x[c] + m[a][1] x[block + c] + ...,
// summed in that order with a separate rounding per product and per sum (both files
// are compiled with -ffp-contract=off), so every build and path gives the bits of the
// reference (apply_online_rotation). Everything here has internal linkage: each file
// gets its own copy compiled for its own instruction set (see act_quant_kernels.h on
// the ODR).
#include <cstdint>
#include <cstring>

namespace quarot::act_quant_detail {
namespace {

constexpr int64_t kMixColumns = 8;
constexpr int kMixRows = 8;
// A GCC vector of kMixColumns floats: one ymm with AVX2 (2 xmm on the portable
// reference path); IEEE arithmetic per lane. Eight rows of it keep 8 accumulators, the
// source and a broadcast coefficient within AVX2's 16 registers (16 columns, 2 ymm per
// row, spilled: slower than the plain loop on the Xeon).
typedef float MixColumns __attribute__((vector_size(kMixColumns * sizeof(float))));

// Outputs a0 .. a0 + R - 1 of columns c0 .. c0 + kMixColumns - 1: R add chains at once,
// so their latencies overlap (one output at a time waited on every add).
template <int R>
void mix_rows(const float* m, int64_t k, const float* x, int64_t block, int64_t c0, int64_t a0, float* out) {
  MixColumns sum[R] = {};
  for (int64_t a2 = 0; a2 < k; ++a2) {
    MixColumns src;
    std::memcpy(&src, x + a2 * block + c0, sizeof src);
    for (int i = 0; i < R; ++i) sum[i] = sum[i] + m[(a0 + i) * k + a2] * src;
  }
  for (int i = 0; i < R; ++i) std::memcpy(out + (a0 + i) * block + c0, &sum[i], sizeof sum[i]);
}

void mix_impl(const float* m, int64_t k, const float* x, int64_t block, float* out) {
  const int64_t full = block / kMixColumns * kMixColumns;
  for (int64_t c0 = 0; c0 < full; c0 += kMixColumns) {
    for (int64_t a0 = 0; a0 < k; a0 += kMixRows) {
      switch (k - a0 < kMixRows ? k - a0 : kMixRows) {
        case 1: mix_rows<1>(m, k, x, block, c0, a0, out); break;
        case 2: mix_rows<2>(m, k, x, block, c0, a0, out); break;
        case 3: mix_rows<3>(m, k, x, block, c0, a0, out); break;
        case 4: mix_rows<4>(m, k, x, block, c0, a0, out); break;
        case 5: mix_rows<5>(m, k, x, block, c0, a0, out); break;
        case 6: mix_rows<6>(m, k, x, block, c0, a0, out); break;
        case 7: mix_rows<7>(m, k, x, block, c0, a0, out); break;
        default: mix_rows<8>(m, k, x, block, c0, a0, out); break;
      }
    }
  }
  for (int64_t a = 0; a < k; ++a) {  // the last block % kMixColumns columns
    for (int64_t c = full; c < block; ++c) {
      float acc = 0.0f;
      for (int64_t a2 = 0; a2 < k; ++a2) acc += m[a * k + a2] * x[a2 * block + c];
      out[a * block + c] = acc;
    }
  }
}

}  // namespace
}  // namespace quarot::act_quant_detail
