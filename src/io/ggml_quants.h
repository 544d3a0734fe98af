#pragma once
// ggml's block-quantized tensor formats, as stored in GGUF files, and their
// dequantization to FP32. Each struct mirrors one block's bytes exactly (all
// multi-byte fields little-endian); the static_asserts pin the on-disk sizes.
//
// Formats with 32-element blocks: element j of the block comes from the low
// nibble of qs[j] for j < 16 and from the high nibble of qs[j - 16] otherwise.
// K-quants use 256-element super-blocks split in sub-blocks with 6-bit scales.
#include <cstdint>
#include <optional>

#include "io/dtype.h"

namespace quarot {

inline constexpr int kQK = 32;    // elements per Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 block
inline constexpr int kQK_K = 256; // elements per K-quant super-block
inline constexpr int kKScaleBytes = 12;  // 8 six-bit scales + 8 six-bit mins

struct BlockQ4_0 {
  uint16_t d;             // fp16 scale
  uint8_t qs[kQK / 2];    // x = (nibble - 8) * d
};
static_assert(sizeof(BlockQ4_0) == 18);

struct BlockQ4_1 {
  uint16_t d;             // fp16 scale
  uint16_t m;             // fp16 minimum
  uint8_t qs[kQK / 2];    // x = nibble * d + m
};
static_assert(sizeof(BlockQ4_1) == 20);

struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];          // fifth bit of element j is bit j of this little-endian uint32
  uint8_t qs[kQK / 2];    // x = (q5 - 16) * d
};
static_assert(sizeof(BlockQ5_0) == 22);

struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];    // x = q5 * d + m
};
static_assert(sizeof(BlockQ5_1) == 24);

struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];         // x = q * d
};
static_assert(sizeof(BlockQ8_0) == 34);

// Q4_K: 8 sub-blocks of 32; x = d * scale[s] * q4 - dmin * min[s].
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

// Q5_K: as Q4_K with a fifth bit per element in qh.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

// Q6_K: 16 sub-blocks of 16 with int8 scales; x = d * scale[s] * (q6 - 32).
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];  // low 4 bits
  uint8_t qh[kQK_K / 4];  // high 2 bits
  int8_t scales[kQK_K / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210);

// The 6-bit scale and min of K-quant sub-block j (0..7) from the 12 packed bytes:
// sub-blocks 0-3 keep theirs in the low 6 bits of bytes j and j+4; sub-blocks 4-7
// combine a nibble of bytes 8-11 with the top 2 bits of bytes j-4 and j.
void k_quant_scale_min(int j, const uint8_t* packed, uint8_t* scale, uint8_t* min);

// Dequantizes n elements (a multiple of the block size) stored as `type` at src.
// Supports F32, F16, BF16, F64, the integer types, and every block format above.
void dequantize_row(DType type, const void* src, float* dst, int64_t n);

// ggml's numeric type ids (the GGUF tensor-info "type" field).
std::optional<DType> dtype_from_ggml_type(uint32_t ggml_type);
uint32_t ggml_type_of(DType t);  // throws Error for types ggml lacks (kBool)

}  // namespace quarot
