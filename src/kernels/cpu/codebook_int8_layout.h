#pragma once
// The register layout of codebook_int8.h's packed weights as constants, shared by the
// pack, the scalar reference and the AVX-512 kernel (constexpr only: this header is
// included by files compiled for different instruction sets, so it holds no code that
// could be emitted out of line).
namespace quarot {

// Field-width classes: fw = 1, 2, 4 (3-bit columns use 4-bit fields).
inline constexpr int kCodebookInt8Classes = 3;
constexpr int codebook_int8_field_bits(int cls) { return cls == 2 ? 4 : cls + 1; }
// Slots one 64-byte load covers for 16 rows (32 bits per row).
constexpr int codebook_int8_chunk_slots(int cls) { return 32 / codebook_int8_field_bits(cls); }

// Where quad u (0 .. chunk slots / 4 - 1) of a chunk with fw-bit fields finds its index
// byte: the stored byte shifted right by `shift` (0 or 4) has the field at bits
// [pos, pos + fw), all below bit 6, and the column in the quad goes to bits cpos, cpos + 1.
struct CodebookInt8QuadField {
  int shift, pos, cpos;
};
constexpr CodebookInt8QuadField codebook_int8_quad_field(int fw, int u) {
  const int shift = fw * u + fw > 6 ? 4 : 0;
  const int pos = fw * u - shift;
  return {shift, pos, pos + fw <= 4 ? 4 : 0};
}

}  // namespace quarot
