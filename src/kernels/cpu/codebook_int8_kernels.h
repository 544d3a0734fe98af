#pragma once
// Internal: the inner kernels behind codebook_int8_gemv() (codebook_int8.h), the scalar
// reference and the AVX-512 VBMI + VNNI one (compiled with those flags, reached only
// through this table; the view is a plain struct so no inline code crosses ISA files).
#include <cstdint>

namespace quarot {
struct CodebookLayout;
}

namespace quarot::codebook_int8_detail {

inline constexpr int kClasses = 3;

struct Int8View {
  int64_t rows = 0;
  int group = 32;
  int64_t slot_start[kClasses + 1] = {};
  int64_t chunk_start[kClasses + 1] = {};
  int64_t chunks = 0;
  const uint8_t* tables = nullptr;  // CodebookInt8Weight::tables
  const uint8_t* data = nullptr;    // CodebookInt8Weight::data
  // The reference reads indices from the file's stream instead of `data`.
  const int32_t* slot_column = nullptr;
  const uint8_t* stream = nullptr;
  const CodebookLayout* layout = nullptr;
};

// Per call, per activation row i (< n <= 4), in slot order:
//   xs[i * x_stride + slot]       signed code q (0 for empty slots), x_stride a multiple of 4
//   corr[i * groups + g]          -128 * sum of the group's q
//   scale[i * groups + g]         s_g * s_x[i]
struct Int8Act {
  const int8_t* xs = nullptr;
  int64_t x_stride = 0;
  const int32_t* corr = nullptr;
  const float* scale = nullptr;
  int64_t groups = 0;
  int64_t n = 0;
  // Pair tables of the 2-bit class (null: column tables): chunk k of the class at
  // pairs[k * 128] (pairs (c, c + 4) in bytes 0..63, (c + 8, c + 12) in 64..127, entry
  // c << 4 | a | b << 2), and the scales of the class's group k at pair_scale[2 k] (low
  // table) and [2 k + 1] (high) in place of scale[] (corr is not read for them). Only
  // with n == 1.
  const int8_t* pairs = nullptr;
  const float* pair_scale = nullptr;
};

// One activation row's pair tables (codebook_int8.h "Pair tables"): from its gathered
// codes xs (slot order) and the weight's pair_t, writes the 2-bit class's chunks' tables
// to out (128 bytes each) and, for the class's k-th group g and table half h (low:
// pairs (c, c + 4), high: (c + 8, c + 12)), pair_scale[2 k + h] = scale[g] * RN(32768 /
// m_{g,h}) (scale: the row's s_g * s_x; 0 when that half's products are all 0).
struct PairTableArgs {
  const int8_t* xs = nullptr;
  const int8_t* pair_t = nullptr;
  int64_t first_slot = 0, chunks = 0;  // the class's slots start, its 16-slot chunks
  int group = 16;
  const float* scale = nullptr;
  int8_t* out = nullptr;
  float* pair_scale = nullptr;
};
// m_g of a group whose products reach max_abs (the contract's formula).
constexpr int32_t pair_multiplier(int32_t max_abs) {
  return max_abs <= 0 ? 0 : (127 * 32768 / max_abs < 32767 ? 127 * 32768 / max_abs : 32767);
}

// One activation row's codes in slot order (the Int8Act fields of that row):
//   xs[slot] = codes[slot_column[slot]] - offset (0 for empty slots, column -1),
//   corr[g] = -128 * sum of group g's xs.
// codes may be read up to round_up(cols, 128) bytes (QuantizedActivations rows are).
struct GatherArgs {
  const uint8_t* codes = nullptr;
  int32_t offset = 0;
  const int32_t* slot_column = nullptr;
  // CodebookInt8Weight::gather_lo / gather_block (vector kernel; null: it is not used).
  const uint8_t* lo = nullptr;
  const uint8_t* block = nullptr;
  int64_t slots = 0, cols = 0;
  int group = 16;
  int8_t* xs = nullptr;
  int32_t* corr = nullptr;
};

struct Int8Kernels {
  // out[i * 32 + j] for rows 32 h + j (j < 32; rows past the matrix: anything) of
  // half stripe h: the group sum of codebook_int8.h's contract, outliers not applied.
  void (*half)(const Int8View& w, const Int8Act& a, int64_t h, float* out);
  // GatherArgs' contract; the vector kernel needs lo and block (else it runs the loop).
  void (*gather)(const GatherArgs& g);
  void (*pair_tables)(const PairTableArgs& p);
};

// Byte of the tables holding slot s's entry v (codebook_int8.h: "Quad tables"), for the
// classes' slot ranges slot_start[0..kClasses].
int64_t table_byte(const int64_t* slot_start, int64_t s, int v);

// The plain loop of GatherArgs (the reference, and any weight without the byte maps).
void gather_scalar(const GatherArgs& g);
void pair_tables_scalar(const PairTableArgs& p);

const Int8Kernels& int8_kernels_scalar();
const Int8Kernels& int8_kernels_avx512vbmi();

}  // namespace quarot::codebook_int8_detail
