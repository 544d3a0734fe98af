// The scalar reference of codebook_int8_gemv (contract: codebook_int8.h): the same
// integer sums as the AVX-512 kernel, each index read from the file's stream (not the
// repacked words), so the tests check the repacking as well as the arithmetic.
#include <cmath>

#include "kernels/cpu/codebook_int8_layout.h"
#include "kernels/cpu/codebook_int8_kernels.h"
#include "kernels/weight_encoding.h"

namespace quarot::codebook_int8_detail {
namespace {

void half(const Int8View& w, const Int8Act& a, int64_t h, float* out) {
  const int64_t slots = w.slot_start[kClasses];
  for (int64_t i = 0; i < a.n; ++i)
    for (int64_t j = 0; j < 32; ++j) {
      const int64_t r = 32 * h + j;
      if (r >= w.rows) {
        out[i * 32 + j] = 0.0f;
        continue;
      }
      float f = 0.0f;
      for (int64_t g = 0; g * w.group < slots; ++g) {
        int32_t d = a.corr[i * a.groups + g];
        for (int64_t s = g * w.group; s < (g + 1) * w.group; ++s) {
          const int32_t col = w.slot_column[s];
          if (col < 0) continue;  // empty slot: t + 128 = 128 times q = 0
          const int v = w.layout->index_at(w.stream, r, col);
          const int32_t u = w.tables[table_byte(w.slot_start, s, v)];
          d += u * static_cast<int32_t>(a.xs[i * a.x_stride + s]);
        }
        f = std::fma(static_cast<float>(d), a.scale[i * a.groups + g], f);
      }
      out[i * 32 + j] = f;
    }
}

}  // namespace

int64_t table_byte(const int64_t* slot_start, int64_t s, int v) {
  int cls = 0;
  while (s >= slot_start[cls + 1]) ++cls;
  const int fw = codebook_int8_field_bits(cls);
  const int u = static_cast<int>((s - slot_start[cls]) / 4 % (codebook_int8_chunk_slots(cls) / 4));
  const CodebookInt8QuadField f = codebook_int8_quad_field(fw, u);
  return (s / 4) * 64 + ((v << f.pos) | ((s % 4) << f.cpos));
}

void gather_scalar(const GatherArgs& g) {
  // Locals: the int8 stores may alias anything, so fields read in the loop would be
  // reloaded after every store.
  const int32_t* slot_column = g.slot_column;
  const uint8_t* codes = g.codes;
  const int32_t off = g.offset;
  const int64_t group = g.group, groups = g.slots / g.group;
  int8_t* xs = g.xs;
  for (int64_t gi = 0; gi < groups; ++gi) {
    int32_t sum = 0;
    for (int64_t s = gi * group; s < (gi + 1) * group; ++s) {
      const int32_t c = slot_column[s];
      const int32_t q = c < 0 ? 0 : static_cast<int32_t>(codes[c]) - off;
      xs[s] = static_cast<int8_t>(q);
      sum += q;
    }
    g.corr[gi] = -128 * sum;
  }
}

const Int8Kernels& int8_kernels_scalar() {
  static const Int8Kernels k{&half, &gather_scalar};
  return k;
}

}  // namespace quarot::codebook_int8_detail
