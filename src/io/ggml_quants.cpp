#include "io/ggml_quants.h"

#include <cstring>

#include "common/error.h"
#include "common/half.h"

namespace quarot {

namespace {

// Blocks are copied out with memcpy: file data need not be aligned for the struct.
template <typename Block>
Block load_block(const uint8_t* src, int64_t index) {
  Block b;
  std::memcpy(&b, src + index * static_cast<int64_t>(sizeof(Block)), sizeof(Block));
  return b;
}

uint32_t load_u32_le(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

void dequant_q4_0(const uint8_t* src, float* dst, int64_t nblocks) {
  for (int64_t b = 0; b < nblocks; ++b) {
    const auto blk = load_block<BlockQ4_0>(src, b);
    const float d = fp16_to_fp32(blk.d);
    float* y = dst + b * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = static_cast<float>((blk.qs[j] & 0x0f) - 8) * d;
      y[j + kQK / 2] = static_cast<float>((blk.qs[j] >> 4) - 8) * d;
    }
  }
}

void dequant_q4_1(const uint8_t* src, float* dst, int64_t nblocks) {
  for (int64_t b = 0; b < nblocks; ++b) {
    const auto blk = load_block<BlockQ4_1>(src, b);
    const float d = fp16_to_fp32(blk.d);
    const float m = fp16_to_fp32(blk.m);
    float* y = dst + b * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = static_cast<float>(blk.qs[j] & 0x0f) * d + m;
      y[j + kQK / 2] = static_cast<float>(blk.qs[j] >> 4) * d + m;
    }
  }
}

void dequant_q5_0(const uint8_t* src, float* dst, int64_t nblocks) {
  for (int64_t b = 0; b < nblocks; ++b) {
    const auto blk = load_block<BlockQ5_0>(src, b);
    const float d = fp16_to_fp32(blk.d);
    const uint32_t qh = load_u32_le(blk.qh);
    float* y = dst + b * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = (blk.qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (blk.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      y[j] = static_cast<float>(lo - 16) * d;
      y[j + kQK / 2] = static_cast<float>(hi - 16) * d;
    }
  }
}

void dequant_q5_1(const uint8_t* src, float* dst, int64_t nblocks) {
  for (int64_t b = 0; b < nblocks; ++b) {
    const auto blk = load_block<BlockQ5_1>(src, b);
    const float d = fp16_to_fp32(blk.d);
    const float m = fp16_to_fp32(blk.m);
    const uint32_t qh = load_u32_le(blk.qh);
    float* y = dst + b * kQK;
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = (blk.qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (blk.qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      y[j] = static_cast<float>(lo) * d + m;
      y[j + kQK / 2] = static_cast<float>(hi) * d + m;
    }
  }
}

void dequant_q8_0(const uint8_t* src, float* dst, int64_t nblocks) {
  for (int64_t b = 0; b < nblocks; ++b) {
    const auto blk = load_block<BlockQ8_0>(src, b);
    const float d = fp16_to_fp32(blk.d);
    float* y = dst + b * kQK;
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(blk.qs[j]) * d;
  }
}

void dequant_q4_k(const uint8_t* src, float* dst, int64_t nblocks) {
  for (int64_t b = 0; b < nblocks; ++b) {
    const auto blk = load_block<BlockQ4_K>(src, b);
    const float d = fp16_to_fp32(blk.d);
    const float dmin = fp16_to_fp32(blk.dmin);
    float* y = dst + b * kQK_K;
    // Each 32 bytes of qs hold two sub-blocks: low nibbles then high nibbles.
    for (int pair = 0; pair < 4; ++pair) {
      const uint8_t* q = blk.qs + pair * 32;
      uint8_t sc0, m0, sc1, m1;
      k_quant_scale_min(2 * pair, blk.scales, &sc0, &m0);
      k_quant_scale_min(2 * pair + 1, blk.scales, &sc1, &m1);
      const float d0 = d * sc0, min0 = dmin * m0, d1 = d * sc1, min1 = dmin * m1;
      for (int l = 0; l < 32; ++l) y[pair * 64 + l] = d0 * static_cast<float>(q[l] & 0x0f) - min0;
      for (int l = 0; l < 32; ++l) y[pair * 64 + 32 + l] = d1 * static_cast<float>(q[l] >> 4) - min1;
    }
  }
}

void dequant_q5_k(const uint8_t* src, float* dst, int64_t nblocks) {
  for (int64_t b = 0; b < nblocks; ++b) {
    const auto blk = load_block<BlockQ5_K>(src, b);
    const float d = fp16_to_fp32(blk.d);
    const float dmin = fp16_to_fp32(blk.dmin);
    float* y = dst + b * kQK_K;
    // Sub-block s takes its fifth bit from bit s of qh[l].
    for (int pair = 0; pair < 4; ++pair) {
      const uint8_t* q = blk.qs + pair * 32;
      uint8_t sc0, m0, sc1, m1;
      k_quant_scale_min(2 * pair, blk.scales, &sc0, &m0);
      k_quant_scale_min(2 * pair + 1, blk.scales, &sc1, &m1);
      const float d0 = d * sc0, min0 = dmin * m0, d1 = d * sc1, min1 = dmin * m1;
      const int bit0 = 2 * pair, bit1 = 2 * pair + 1;
      for (int l = 0; l < 32; ++l) {
        const int v = (q[l] & 0x0f) + (((blk.qh[l] >> bit0) & 1) << 4);
        y[pair * 64 + l] = d0 * static_cast<float>(v) - min0;
      }
      for (int l = 0; l < 32; ++l) {
        const int v = (q[l] >> 4) + (((blk.qh[l] >> bit1) & 1) << 4);
        y[pair * 64 + 32 + l] = d1 * static_cast<float>(v) - min1;
      }
    }
  }
}

void dequant_q6_k(const uint8_t* src, float* dst, int64_t nblocks) {
  for (int64_t b = 0; b < nblocks; ++b) {
    const auto blk = load_block<BlockQ6_K>(src, b);
    const float d = fp16_to_fp32(blk.d);
    // Two halves of 128 elements; each uses 64 bytes of ql, 32 of qh, 8 scales.
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = blk.ql + half * 64;
      const uint8_t* qh = blk.qh + half * 32;
      const int8_t* sc = blk.scales + half * 8;
      float* y = dst + b * kQK_K + half * 128;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

template <typename T>
void convert_plain(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, src + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
    dst[i] = static_cast<float>(v);
  }
}

}  // namespace

void k_quant_scale_min(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

void dequantize_row(DType type, const void* src_v, float* dst, int64_t n) {
  const auto* src = static_cast<const uint8_t*>(src_v);
  const int64_t block = dtype_block_elems(type);
  if (n < 0 || n % block != 0)
    fail("dequantize_row: {} elements is not a multiple of the {} block size {}", n, dtype_name(type), block);
  const int64_t nblocks = n / block;
  switch (type) {
    case DType::kF32: std::memcpy(dst, src, static_cast<size_t>(n) * 4); return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = fp16_to_fp32(h);
      }
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = bf16_to_fp32(h);
      }
      return;
    case DType::kF64: convert_plain<double>(src, dst, n); return;
    case DType::kI8: convert_plain<int8_t>(src, dst, n); return;
    case DType::kI16: convert_plain<int16_t>(src, dst, n); return;
    case DType::kI32: convert_plain<int32_t>(src, dst, n); return;
    case DType::kI64: convert_plain<int64_t>(src, dst, n); return;
    case DType::kU8: convert_plain<uint8_t>(src, dst, n); return;
    case DType::kU16: convert_plain<uint16_t>(src, dst, n); return;
    case DType::kU32: convert_plain<uint32_t>(src, dst, n); return;
    case DType::kBool:
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i] != 0 ? 1.0f : 0.0f;
      return;
    case DType::kQ4_0: dequant_q4_0(src, dst, nblocks); return;
    case DType::kQ4_1: dequant_q4_1(src, dst, nblocks); return;
    case DType::kQ5_0: dequant_q5_0(src, dst, nblocks); return;
    case DType::kQ5_1: dequant_q5_1(src, dst, nblocks); return;
    case DType::kQ8_0: dequant_q8_0(src, dst, nblocks); return;
    case DType::kQ4_K: dequant_q4_k(src, dst, nblocks); return;
    case DType::kQ5_K: dequant_q5_k(src, dst, nblocks); return;
    case DType::kQ6_K: dequant_q6_k(src, dst, nblocks); return;
  }
  fail("dequantize_row: unsupported type {}", dtype_name(type));
}

std::optional<DType> dtype_from_ggml_type(uint32_t ggml_type) {
  switch (ggml_type) {
    case 0: return DType::kF32;
    case 1: return DType::kF16;
    case 2: return DType::kQ4_0;
    case 3: return DType::kQ4_1;
    case 6: return DType::kQ5_0;
    case 7: return DType::kQ5_1;
    case 8: return DType::kQ8_0;
    case 12: return DType::kQ4_K;
    case 13: return DType::kQ5_K;
    case 14: return DType::kQ6_K;
    case 24: return DType::kI8;
    case 25: return DType::kI16;
    case 26: return DType::kI32;
    case 27: return DType::kI64;
    case 28: return DType::kF64;
    case 30: return DType::kBF16;
    default: return std::nullopt;
  }
}

uint32_t ggml_type_of(DType t) {
  switch (t) {
    case DType::kF32: return 0;
    case DType::kF16: return 1;
    case DType::kQ4_0: return 2;
    case DType::kQ4_1: return 3;
    case DType::kQ5_0: return 6;
    case DType::kQ5_1: return 7;
    case DType::kQ8_0: return 8;
    case DType::kQ4_K: return 12;
    case DType::kQ5_K: return 13;
    case DType::kQ6_K: return 14;
    case DType::kI8: return 24;
    case DType::kI16: return 25;
    case DType::kI32: return 26;
    case DType::kI64: return 27;
    case DType::kF64: return 28;
    case DType::kBF16: return 30;
    default: fail("{} has no ggml type", dtype_name(t));
  }
}

}  // namespace quarot
