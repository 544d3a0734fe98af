#pragma once
// Internal, included by act_quant.cpp (portable flags), act_quant_avx2.cpp and
// act_quant_avx512.cpp: the k x k mixing of an online rotation,
//   out[a * block + c] = 0 + m[a][0] x'[c] + m[a][1] x'[block + c] + ...,
// with x' = x * pre_scale (the Hadamard's 1/sqrt(p), applied to each value once when
// it is loaded: the reference scales the row in a pass of its own first, the same one
// rounding). Summed in that order with a separate rounding per product and per sum (the
// files are compiled with -ffp-contract=off), so every build and path gives the bits of
// the reference (apply_online_rotation). Everything here has internal linkage: each
// file gets its own copy compiled for its own instruction set (see
// act_quant_kernels.h on the ODR).
//
// A normalized Hadamard matrix (every |m| the same, c) takes a shorter road to the same
// bits: m[a][a2] * x' = +-(c * x') exactly (rounding is symmetric in sign), so each
// source value is multiplied by c once and every output adds or subtracts those
// products in the reference's order. The +-1 sign times the product is exact, so
// sum + s * p has one rounding fused or not; where the file's target has FMA it is one
// instruction per (output, source) instead of two.
#include <cstdint>
#include <cstring>
#include <utility>

#if defined(__FMA__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace quarot::act_quant_detail {
namespace {

// sum + s * p for s = +-1 (exact product): one rounding either way.
template <typename V>
V add_signed(V sum, float s, V p) {
#if defined(__AVX512F__)
  if constexpr (sizeof(V) == 64)
    return reinterpret_cast<V>(
        _mm512_fmadd_ps(reinterpret_cast<__m512>(p), _mm512_set1_ps(s), reinterpret_cast<__m512>(sum)));
#endif
#if defined(__FMA__)
  if constexpr (sizeof(V) == 32)
    return reinterpret_cast<V>(
        _mm256_fmadd_ps(reinterpret_cast<__m256>(p), _mm256_set1_ps(s), reinterpret_cast<__m256>(sum)));
#endif
  return sum + s * p;
}

// Columns per GCC vector and outputs whose sums stay in registers at once. AVX2 (and
// the portable reference: two xmm per vector): 8 x 8 floats, 8 accumulators, the
// source and a broadcast coefficient within 16 registers (16 columns spilled and were
// slower on the Xeon). AVX-512: 16 columns x up to 12 outputs in 32 registers, so
// down_proj's 12 x 12 mixing loads each source vector once.
template <int64_t kColumns, int kMaxRows>
struct Mixer {
  typedef float Columns __attribute__((vector_size(kColumns * sizeof(float))));

  // Outputs a0 .. a0 + R - 1 of columns c0 .. c0 + kColumns - 1: R add chains at once,
  // so their latencies overlap (one output at a time waited on every add).
  // With `signs` (the Hadamard road above) m holds the +-1 signs and c the magnitude.
  template <int R, bool kSigned>
  static void rows(const float* m, float c, int64_t k, const float* x, int64_t block, float pre_scale, int64_t c0,
                   int64_t a0, float* out) {
    Columns sum[R] = {};
    for (int64_t a2 = 0; a2 < k; ++a2) {
      Columns src;
      std::memcpy(&src, x + a2 * block + c0, sizeof src);
      src = src * pre_scale;
      if constexpr (kSigned) {
        const Columns p = src * c;
        for (int i = 0; i < R; ++i) sum[i] = add_signed(sum[i], m[(a0 + i) * k + a2], p);
      } else {
        for (int i = 0; i < R; ++i) sum[i] = sum[i] + m[(a0 + i) * k + a2] * src;
      }
    }
    for (int i = 0; i < R; ++i) std::memcpy(out + (a0 + i) * block + c0, &sum[i], sizeof sum[i]);
  }

  template <bool kSigned, int R = kMaxRows>
  static void rows_up_to(int count, const float* m, float c, int64_t k, const float* x, int64_t block,
                         float pre_scale, int64_t c0, int64_t a0, float* out) {
    if constexpr (R > 1) {
      if (count < R) return rows_up_to<kSigned, R - 1>(count, m, c, k, x, block, pre_scale, c0, a0, out);
    }
    rows<R, kSigned>(m, c, k, x, block, pre_scale, c0, a0, out);
  }

  static void mix(const float* m, const float* signs, float magnitude, int64_t k, const float* x, int64_t block,
                  float pre_scale, float* out) {
    const int64_t full = block / kColumns * kColumns;
    for (int64_t c0 = 0; c0 < full; c0 += kColumns) {
      for (int64_t a0 = 0; a0 < k; a0 += kMaxRows) {
        const int count = static_cast<int>(k - a0 < kMaxRows ? k - a0 : kMaxRows);
        if (signs != nullptr)
          rows_up_to<true>(count, signs, magnitude, k, x, block, pre_scale, c0, a0, out);
        else
          rows_up_to<false>(count, m, 0.0f, k, x, block, pre_scale, c0, a0, out);
      }
    }
    for (int64_t a = 0; a < k; ++a) {  // the last block % kColumns columns
      for (int64_t c = full; c < block; ++c) {
        float acc = 0.0f;
        for (int64_t a2 = 0; a2 < k; ++a2) acc += m[a * k + a2] * (x[a2 * block + c] * pre_scale);
        out[a * block + c] = acc;
      }
    }
  }
};

// The sign pattern of the order-12 Hadamard matrix the transform layer builds
// (transform/hadamard_matrices.cpp, Paley I with q = 11: row 0 all +1, column 0 -1 below
// it, then the Jacobsthal matrix chi(a - b) of GF(11) plus I), which the down_proj
// input of every 1536-wide model mixes with (12 x 128). Known at compile time, its
// mixing adds and subtracts registers: the general kernel multiplies every product by a
// sign broadcast from memory, which ran at a third of the speed on the Zen 4.
// tests/transform/test_hadamard_matrices.cpp checks this table against find_hadamard(12).
struct Signs12 {
  int8_t s[12][12];
};
constexpr Signs12 paley12_signs() {
  Signs12 g{};
  bool square[11] = {};
  for (int v = 1; v < 11; ++v) square[v * v % 11] = true;
  for (int c = 0; c < 12; ++c) g.s[0][c] = 1;
  for (int r = 1; r < 12; ++r) g.s[r][0] = -1;
  for (int a = 0; a < 11; ++a)
    for (int b = 0; b < 11; ++b) {
      const int d = ((a - b) % 11 + 11) % 11;
      g.s[a + 1][b + 1] = static_cast<int8_t>(a == b ? 1 : (square[d] ? 1 : -1));
    }
  return g;
}
inline constexpr Signs12 kPaley12 = paley12_signs();

// Mixer::mix for k = 12 with signs == kPaley12 (same sums in the same order, so the same
// bits; only an all-zero column's output may come out -0 where the general kernel
// writes +0, which no code or scale can tell). Even sources are added or subtracted,
// odd ones go through the add_signed FMA, so on the Zen 4 the adder and FMA pipes share
// the work.
template <int64_t kColumns>
struct MixerPaley12 {
  typedef float Columns __attribute__((vector_size(kColumns * sizeof(float))));
  static_assert(sizeof(Columns) == kColumns * sizeof(float), "a GCC vector of kColumns floats");

  template <int I, int A2>
  static Columns term(Columns acc, Columns p) {
    constexpr int sign = kPaley12.s[I][A2];
    if constexpr (A2 == 0) {
      if constexpr (sign > 0) return p;
      return -p;
    } else if constexpr (A2 % 2 == 1) {
      // add_signed's FMA, spelled out: template deduction sees this dependent vector
      // typedef as float.
#if defined(__AVX512F__)
      if constexpr (kColumns == 16)
        return reinterpret_cast<Columns>(_mm512_fmadd_ps(reinterpret_cast<__m512>(p), _mm512_set1_ps(sign),
                                                         reinterpret_cast<__m512>(acc)));
#endif
#if defined(__FMA__)
      if constexpr (kColumns == 8)
        return reinterpret_cast<Columns>(_mm256_fmadd_ps(reinterpret_cast<__m256>(p), _mm256_set1_ps(sign),
                                                         reinterpret_cast<__m256>(acc)));
#endif
      if constexpr (sign > 0) return acc + p;
      return acc - p;
    } else {
      if constexpr (sign > 0) return acc + p;
      return acc - p;
    }
  }

  template <int A2, int... Is>
  static void source(Columns (&sum)[12], Columns p, std::integer_sequence<int, Is...>) {
    ((sum[Is] = term<Is, A2>(sum[Is], p)), ...);
  }

  template <int... A2s>
  static void columns(const float* x, int64_t block, float pre_scale, float c, int64_t c0, float* out,
                      std::integer_sequence<int, A2s...>) {
    Columns sum[12];
    const auto load = [&](int a2) {
      Columns src;
      std::memcpy(&src, x + a2 * block + c0, sizeof src);
      return (src * pre_scale) * c;
    };
    (source<A2s>(sum, load(A2s), std::make_integer_sequence<int, 12>{}), ...);
    for (int a = 0; a < 12; ++a) std::memcpy(out + a * block + c0, &sum[a], sizeof sum[a]);
  }

  static void mix(float magnitude, const float* x, int64_t block, float pre_scale, float* out) {
    const int64_t full = block / kColumns * kColumns;
    for (int64_t c0 = 0; c0 < full; c0 += kColumns)
      columns(x, block, pre_scale, magnitude, c0, out, std::make_integer_sequence<int, 12>{});
    for (int64_t a = 0; a < 12; ++a) {  // the last block % kColumns columns
      for (int64_t c = full; c < block; ++c) {
        float acc = 0.0f;
        for (int64_t a2 = 0; a2 < 12; ++a2)
          acc += static_cast<float>(kPaley12.s[a][a2]) * magnitude * (x[a2 * block + c] * pre_scale);
        out[a * block + c] = acc;
      }
    }
  }
};

}  // namespace
}  // namespace quarot::act_quant_detail
