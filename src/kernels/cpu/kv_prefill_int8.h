#pragma once
// Internal: prefill attention's two products in int8 with int32 sums (kv_attention.cpp's
// prefill path when the caller asks for integer products and the CPU has AVX-512 VNNI,
// which runs 64 multiply-adds per instruction against 16 for an FP32 FMA).
//
// What is quantized, and why it costs nothing measurable on a KV4/KV8 model: the cache
// rows are already int4/int8 codes; they are re-expressed as int8 with one scale per
// position (s_j * c_jd, symmetric, |c| <= 127), the query vectors likewise (one scale
// per vector), and each row of softmax weights times the value scales as uint8 with
// one scale per row and tile. Those roundings are 1/254 of a row's largest value, an
// order below the int4 cache's own (1/15) and the int4 activations around attention.
//
// Layouts of one KV head's 64-key tile (kPrefillKeys; keys past the cache are zero):
//   keys   kq[(d / 4) * 256 + j * 4 + d % 4]   int8, d < hd, j < 64: a 64-byte row of
//          16 keys x 4 dimensions is what one vpdpbusd lane group multiplies;
//          kscale[j] (float) and kcorr[j] = 128 * sum_d kq[j][d] (int32), since the
//          query codes are stored + 128 (vpdpbusd multiplies unsigned by signed);
//   values vq[(j / 4) * hd * 4 + d * 4 + j % 4]  int8, j < 64, d < hd.
// Every int32 sum is exact; the float epilogues are written out below, so the scalar
// reference and the VNNI kernels give the same bits.
// ISA kernels live in files compiled with that ISA's flags (kv_prefill_int8_avx512vnni.cpp).
#include <cstdint>

#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/kv_prefill_tiles.h"

namespace quarot::kv_detail {

// Bytes of one KV head's tile of keys (or values) at head dimension hd.
inline constexpr int64_t prefill_int8_tile_bytes(int64_t hd) { return kPrefillKeys * hd; }

struct PrefillInt8Kernels {
  // s[i * ld + j] = (float(acc_ij - kcorr[j]) * qfactor[i]) * kscale[j] for i < nq and
  // j < keys rounded up to a multiple of 16 (at most 64; s is left alone past that), with
  // acc_ij = sum_d qu[i * hd + d] * kq(j, d) in int32.
  void (*scores)(const uint8_t* qu, int64_t nq, int64_t hd, const int8_t* kq, const int32_t* kcorr,
                 const float* kscale, int64_t keys, const float* qfactor, float* s, int64_t ld);
  // o[i * hd + d] = fma(wscale[i], float(sum_{j < keys4} u[i * ldu + j] * vq(j, d)), o[i * hd + d])
  // for i < nq, d < hd, keys4 = keys rounded up to a multiple of 4 (u must be zero for
  // the keys it adds).
  void (*weighted_sum)(const uint8_t* u, int64_t nq, int64_t ldu, const int8_t* vq, int64_t keys, int64_t hd,
                       const float* wscale, float* o);

  // The re-expression as codes. A row's scale is max|x| / 127 (0 for an all-zero row,
  // whose codes are 0) and its codes the nearest integers to x * (127 / max|x|)
  // (ties to even), so every path gives the same codes. Where given[r] > 0 (given may be
  // null) row r uses that scale instead: codes nearest(x * (1 / given[r])) clamped to
  // +-127. The caller gives a 2..7-bit cache row's own scale when one group spans the
  // head and every c - z fits: the row is s * (c - z) in float, so the codes are c - z
  // exactly and the int8 products add no error on that side.
  // `rows` rows of hd floats (`stride` floats apart) into positions j0 .. j0 + rows - 1
  // (j0 + rows <= 64) of a key tile; scales and kcorr to [0 .. rows).
  void (*quantize_keys)(const float* x, int64_t rows, int64_t stride, int64_t hd, int64_t j0, const float* given,
                        int8_t* kq, float* kscale, int32_t* kcorr);
  // The same for a value tile (j0 % 4 == 0; positions past j0 + rows up to the next
  // multiple of 4 are written as zero codes).
  void (*quantize_values)(const float* x, int64_t rows, int64_t stride, int64_t hd, int64_t j0, const float* given,
                          int8_t* vq, float* vscale);
  // Query vectors: qu = code + 128, qfactor[i] = factor * scale_i.
  void (*quantize_queries)(const float* q, int64_t nq, int64_t hd, float factor, uint8_t* qu, float* qfactor);

  // One query row of one tile's softmax, from its scores s[0 .. visible) (1 <= visible
  // <= 64) and running max *m: *m = max(*m, max_j s_j); p_j = 2^max((s_j - *m) log2 e, -150)
  // (fast_exp2's polynomial); returns sum_j p_j. The weights w_j = p_j * vscale[j] go to
  // u[0 .. 64) as uint8 codes with *wscale = max_j w_j / 255 and u_j = floor(w_j * (255 /
  // max w) + 1/2), zero past `visible` (all zero, and *wscale 0, if every w_j is 0).
  // Paths agree to float rounding (the sums' order differs), u to +-1 where a product
  // lands on a rounding boundary.
  float (*softmax_row)(const float* s, int64_t visible, const float* vscale, float* m, uint8_t* u, float* wscale);
  // softmax_row on rows i < nq of one tile (row i's scores at s + i * ld, its codes at
  // u + i * ldu, m[i], wscale[i], sums[i] the return value), with the same results bit
  // for bit; a row with visible[i] == 0 gets zero codes (all 64), wscale 0 and sum 0,
  // and keeps m[i]. One call lets the vector paths overlap several rows' reductions and
  // exponentials (one row at a time, their latencies were most of its time).
  void (*softmax_rows)(const float* s, int64_t ld, int64_t nq, const int64_t* visible, const float* vscale, float* m,
                       uint8_t* u, int64_t ldu, float* wscale, float* sums);

  // Around a thread's run of calls (nullptr: nothing to do): the AMX kernels load their
  // tile configuration there.
  void (*begin)() = nullptr;
  void (*end)() = nullptr;
};

// The reference (hd % 4 == 0).
const PrefillInt8Kernels& prefill_int8_kernels_scalar();
// AVX-512 VNNI (hd % 16 == 0).
const PrefillInt8Kernels& prefill_int8_kernels_avx512vnni();
// AMX-INT8 products, the VNNI kernels otherwise (hd % 64 == 0; qu and u hold whole 16-row
// tiles, u is zero past `keys`; see kv_prefill_int8_amx.cpp). The same bits as the VNNI table.
const PrefillInt8Kernels& prefill_int8_kernels_amx();
// The AMX kernels where `isa` is AMX and hd % 64 == 0, the VNNI kernels where `isa` has
// them and hd % 16 == 0, else null: the float products (kv_prefill_tiles.h) are faster
// than an int8 emulation on the other paths.
const PrefillInt8Kernels* prefill_int8_kernels_for(Isa isa, int64_t hd);

}  // namespace quarot::kv_detail
