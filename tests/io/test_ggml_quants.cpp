// Dequantization of every supported ggml block format, against blocks assembled
// byte by byte here and expected values computed element by element from the
// format definitions (not by the decoder's loop structure).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/error.h"
#include "common/half.h"
#include "common/rng.h"
#include "io/dtype.h"
#include "io/ggml_quants.h"

namespace quarot {
namespace {

std::vector<uint8_t> random_bytes(Rng& rng, size_t n) {
  std::vector<uint8_t> b(n);
  for (auto& x : b) x = static_cast<uint8_t>(rng.next_u64() & 0xff);
  return b;
}

void put_f16(std::vector<uint8_t>& b, size_t at, float v) {
  const uint16_t h = fp32_to_fp16(v);
  b[at] = static_cast<uint8_t>(h & 0xff);
  b[at + 1] = static_cast<uint8_t>(h >> 8);
}

std::vector<float> dequant(DType t, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n), -12345.0f);
  dequantize_row(t, bytes.data(), out.data(), n);
  return out;
}

TEST(DType, NamesAndBlockSizes) {
  EXPECT_EQ(dtype_name(DType::kQ4_K), "Q4_K");
  EXPECT_EQ(dtype_name(DType::kBF16), "BF16");
  EXPECT_EQ(dtype_block_elems(DType::kQ8_0), 32);
  EXPECT_EQ(dtype_block_elems(DType::kQ6_K), 256);
  EXPECT_EQ(dtype_block_elems(DType::kF16), 1);
  // Sizes from the format definitions: scales + packed quants.
  EXPECT_EQ(dtype_block_bytes(DType::kQ4_0), 2 + 16);
  EXPECT_EQ(dtype_block_bytes(DType::kQ4_1), 2 + 2 + 16);
  EXPECT_EQ(dtype_block_bytes(DType::kQ5_0), 2 + 4 + 16);
  EXPECT_EQ(dtype_block_bytes(DType::kQ5_1), 2 + 2 + 4 + 16);
  EXPECT_EQ(dtype_block_bytes(DType::kQ8_0), 2 + 32);
  EXPECT_EQ(dtype_block_bytes(DType::kQ4_K), 2 + 2 + 12 + 128);
  EXPECT_EQ(dtype_block_bytes(DType::kQ5_K), 2 + 2 + 12 + 32 + 128);
  EXPECT_EQ(dtype_block_bytes(DType::kQ6_K), 128 + 64 + 16 + 2);
}

TEST(GgmlTypes, IdsRoundTrip) {
  EXPECT_EQ(*dtype_from_ggml_type(0), DType::kF32);
  EXPECT_EQ(*dtype_from_ggml_type(3), DType::kQ4_1);
  EXPECT_EQ(*dtype_from_ggml_type(14), DType::kQ6_K);
  EXPECT_EQ(*dtype_from_ggml_type(30), DType::kBF16);
  EXPECT_FALSE(dtype_from_ggml_type(4).has_value());   // removed Q4_2
  EXPECT_FALSE(dtype_from_ggml_type(10).has_value());  // Q2_K unsupported
  for (uint32_t id = 0; id < 40; ++id) {
    if (auto t = dtype_from_ggml_type(id)) {
      EXPECT_EQ(ggml_type_of(*t), id);
    }
  }
}

TEST(Dequant, PlainFloatTypes) {
  const uint16_t f16[] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x3555};
  std::vector<float> out(5);
  dequantize_row(DType::kF16, f16, out.data(), 5);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 65504.0f);
  EXPECT_EQ(out[3], 0x1p-24f);  // smallest subnormal
  EXPECT_EQ(out[4], 0.333251953125f);  // 2^-2 * (1 + 0x155 / 1024)
  const uint16_t bf16[] = {0x3F80, 0x4049, 0xBF00};
  dequantize_row(DType::kBF16, bf16, out.data(), 3);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 3.140625f);
  EXPECT_EQ(out[2], -0.5f);
  const float f32[] = {1.5f, -7.25f};
  dequantize_row(DType::kF32, f32, out.data(), 2);
  EXPECT_EQ(out[0], 1.5f);
  EXPECT_EQ(out[1], -7.25f);
}

TEST(Dequant, Q4_0) {
  // d = 0.5; qs[j] = j | (15 - j) << 4.
  std::vector<uint8_t> b(18);
  put_f16(b, 0, 0.5f);
  for (int j = 0; j < 16; ++j) b[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = dequant(DType::kQ4_0, b, 32);
  EXPECT_EQ(y[0], -4.0f);   // (0 - 8) * 0.5
  EXPECT_EQ(y[15], 3.5f);   // (15 - 8) * 0.5
  EXPECT_EQ(y[16], 3.5f);   // high nibble of qs[0] = 15
  EXPECT_EQ(y[31], -4.0f);  // high nibble of qs[15] = 0
  for (int e = 0; e < 32; ++e) {
    const int q = e < 16 ? e : 15 - (e - 16);
    EXPECT_EQ(y[e], (q - 8) * 0.5f) << e;
  }
}

TEST(Dequant, Q4_1TwoBlocks) {
  Rng rng(41);
  std::vector<uint8_t> b = random_bytes(rng, 40);
  const float d[2] = {0.25f, 0.0625f}, m[2] = {-1.0f, 3.5f};
  for (int k = 0; k < 2; ++k) {
    put_f16(b, 20 * k, d[k]);
    put_f16(b, 20 * k + 2, m[k]);
  }
  b[4] = 0x9A;  // elem 0 -> low nibble 0xA, elem 16 -> high nibble 0x9
  const auto y = dequant(DType::kQ4_1, b, 64);
  EXPECT_EQ(y[0], 10 * 0.25f - 1.0f);
  EXPECT_EQ(y[16], 9 * 0.25f - 1.0f);
  for (int e = 0; e < 64; ++e) {
    const int k = e / 32, i = e % 32;
    const uint8_t byte = b[20 * k + 4 + (i % 16)];
    const int q = i < 16 ? (byte & 0xF) : (byte >> 4);
    EXPECT_EQ(y[e], d[k] * q + m[k]) << e;
  }
}

int bit_of(const uint8_t* bytes, int bit) { return (bytes[bit / 8] >> (bit % 8)) & 1; }

TEST(Dequant, Q5_0) {
  Rng rng(50);
  std::vector<uint8_t> b = random_bytes(rng, 22);
  put_f16(b, 0, 2.0f);
  b[2] = 0x01;  // qh bit 0 set: elem 0 gets +16
  b[6] = 0x0F;  // qs[0]: low 15 -> elem 0 = (15|16) - 16 = 15
  b[4] = (b[4] & 0xFE);  // qh bit 16 (elem 16) clear; high nibble of qs[0] = 0 -> -16
  const auto y = dequant(DType::kQ5_0, b, 32);
  EXPECT_EQ(y[0], 15 * 2.0f);
  EXPECT_EQ(y[16], -16 * 2.0f);
  for (int e = 0; e < 32; ++e) {
    const uint8_t byte = b[6 + e % 16];
    const int q = (e < 16 ? (byte & 0xF) : (byte >> 4)) + 16 * bit_of(&b[2], e);
    EXPECT_EQ(y[e], (q - 16) * 2.0f) << e;
  }
}

TEST(Dequant, Q5_1) {
  Rng rng(51);
  std::vector<uint8_t> b = random_bytes(rng, 24);
  put_f16(b, 0, 0.5f);
  put_f16(b, 2, -4.0f);
  b[4 + 3] |= 0x80;  // qh bit 31: elem 31 gets +16
  b[8 + 15] |= 0xF0; // high nibble of qs[15] -> elem 31 = 31
  const auto y = dequant(DType::kQ5_1, b, 32);
  EXPECT_EQ(y[31], 31 * 0.5f - 4.0f);
  for (int e = 0; e < 32; ++e) {
    const uint8_t byte = b[8 + e % 16];
    const int q = (e < 16 ? (byte & 0xF) : (byte >> 4)) + 16 * bit_of(&b[4], e);
    EXPECT_EQ(y[e], q * 0.5f - 4.0f) << e;
  }
}

TEST(Dequant, Q8_0) {
  Rng rng(80);
  std::vector<uint8_t> b = random_bytes(rng, 68);
  put_f16(b, 0, 0.125f);
  put_f16(b, 34, -3.0f);
  b[2] = 0x80;  // -128
  b[3] = 0x7F;  // 127
  const auto y = dequant(DType::kQ8_0, b, 64);
  EXPECT_EQ(y[0], -16.0f);
  EXPECT_EQ(y[1], 15.875f);
  for (int e = 0; e < 64; ++e) {
    const int k = e / 32;
    const float d = k == 0 ? 0.125f : -3.0f;
    EXPECT_EQ(y[e], static_cast<int8_t>(b[34 * k + 2 + e % 32]) * d) << e;
  }
}

// Packs eight 6-bit scales and mins the way ggml's K-quant encoder does.
std::vector<uint8_t> pack_k_scales(const int sc[8], const int mn[8]) {
  std::vector<uint8_t> p(12);
  for (int j = 0; j < 4; ++j) {
    p[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    p[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
    p[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
  }
  return p;
}

TEST(Dequant, KScaleUnpacking) {
  const int sc[8] = {1, 63, 17, 32, 45, 0, 63, 20};
  const int mn[8] = {62, 5, 33, 0, 16, 63, 1, 48};
  const auto p = pack_k_scales(sc, mn);
  for (int j = 0; j < 8; ++j) {
    uint8_t s, m;
    k_quant_scale_min(j, p.data(), &s, &m);
    EXPECT_EQ(s, sc[j]) << j;
    EXPECT_EQ(m, mn[j]) << j;
  }
}

TEST(Dequant, Q4_K) {
  Rng rng(412);
  const int sc[8] = {1, 63, 17, 32, 45, 7, 63, 20};
  const int mn[8] = {62, 5, 33, 0, 16, 63, 1, 48};
  const float d = 0.5f, dmin = 0.25f;
  std::vector<uint8_t> b(144);
  put_f16(b, 0, d);
  put_f16(b, 2, dmin);
  const auto p = pack_k_scales(sc, mn);
  std::copy(p.begin(), p.end(), b.begin() + 4);
  const auto qs = random_bytes(rng, 128);
  std::copy(qs.begin(), qs.end(), b.begin() + 16);
  const auto y = dequant(DType::kQ4_K, b, 256);
  // Element 32 is sub-block 1 (scale 63, min 5), high nibble of qs[0].
  EXPECT_EQ(y[32], d * 63 * (qs[0] >> 4) - dmin * 5);
  for (int e = 0; e < 256; ++e) {
    const int s = e / 32, within = e % 32;
    const uint8_t byte = qs[(s / 2) * 32 + within];
    const int q = s % 2 == 0 ? (byte & 0xF) : (byte >> 4);
    EXPECT_EQ(y[e], d * sc[s] * q - dmin * mn[s]) << e;
  }
}

TEST(Dequant, Q5_K) {
  Rng rng(513);
  const int sc[8] = {9, 2, 63, 40, 1, 33, 12, 60};
  const int mn[8] = {0, 63, 7, 21, 50, 3, 44, 16};
  const float d = 0.125f, dmin = 1.5f;
  std::vector<uint8_t> b(176);
  put_f16(b, 0, d);
  put_f16(b, 2, dmin);
  const auto p = pack_k_scales(sc, mn);
  std::copy(p.begin(), p.end(), b.begin() + 4);
  const auto qh = random_bytes(rng, 32);
  const auto qs = random_bytes(rng, 128);
  std::copy(qh.begin(), qh.end(), b.begin() + 16);
  std::copy(qs.begin(), qs.end(), b.begin() + 48);
  const auto y = dequant(DType::kQ5_K, b, 256);
  for (int e = 0; e < 256; ++e) {
    const int s = e / 32, within = e % 32;
    const uint8_t byte = qs[(s / 2) * 32 + within];
    const int q = (s % 2 == 0 ? (byte & 0xF) : (byte >> 4)) + 16 * ((qh[within] >> s) & 1);
    EXPECT_EQ(y[e], d * sc[s] * q - dmin * mn[s]) << e;
  }
}

TEST(Dequant, Q6_KTwoBlocks) {
  Rng rng(614);
  std::vector<uint8_t> b = random_bytes(rng, 420);
  const float d[2] = {0.03125f, -2.0f};
  for (int k = 0; k < 2; ++k) put_f16(b, 210 * k + 208, d[k]);
  // Hand check: element 0 of block 0 = d * scales[0] * ((ql[0] & 15 | (qh[0] & 3) << 4) - 32).
  b[0] = 0x07;
  b[128] = 0x02;  // qh[0]: bits 0-1 = 2 -> q = 7 | 32 = 39 -> 7
  b[192] = 0xFD;  // scales[0] = -3
  const auto y = dequant(DType::kQ6_K, b, 512);
  EXPECT_EQ(y[0], 0.03125f * -3 * 7);
  for (int e = 0; e < 512; ++e) {
    const int k = e / 256, i = e % 256;
    const uint8_t* blk = b.data() + 210 * k;
    const uint8_t* ql = blk;
    const uint8_t* qh = blk + 128;
    const int8_t* scales = reinterpret_cast<const int8_t*>(blk + 192);
    const int half = i / 128, r = i % 128, g = r / 32, l = r % 32;
    const uint8_t lo_byte = ql[half * 64 + l + (g % 2) * 32];
    const int lo = g < 2 ? (lo_byte & 0xF) : (lo_byte >> 4);
    const int hi = (qh[half * 32 + l] >> (2 * g)) & 3;
    const int scale = scales[half * 8 + l / 16 + 2 * g];
    EXPECT_EQ(y[e], d[k] * scale * ((lo | (hi << 4)) - 32)) << e;
  }
}

TEST(Dequant, RejectsPartialBlocks) {
  std::vector<uint8_t> b(64);
  std::vector<float> y(64);
  EXPECT_THROW(dequantize_row(DType::kQ8_0, b.data(), y.data(), 31), Error);
}

}  // namespace
}  // namespace quarot
