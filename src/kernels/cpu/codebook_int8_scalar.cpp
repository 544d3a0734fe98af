// The scalar reference of codebook_int8_gemv (contract: codebook_int8.h): the same
// integer sums as the AVX-512 kernel, each index read from the file's stream (not the
// repacked words), so the tests check the repacking as well as the arithmetic.
#include <algorithm>
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
      // The index of slot s at row r (empty slots: 0, as the packed words hold).
      const auto index = [&](int64_t s) {
        const int32_t col = w.slot_column[s];
        return col < 0 ? 0 : w.layout->index_at(w.stream, r, col);
      };
      float f = 0.0f;
      for (int64_t g = 0; g * w.group < slots; ++g) {
        const int64_t s0 = g * w.group;
        if (a.pairs != nullptr && s0 >= w.slot_start[1] && s0 < w.slot_start[2]) {
          // Pair tables: per 16-slot chunk, pairs (c, c + 4) (the low table) and (c + 8,
          // c + 12) (the high one); each table set has its own scale.
          const int64_t k = (s0 - w.slot_start[1]) / w.group;
          for (int half = 0; half < 2; ++half) {
            int32_t dh = 0;
            for (int64_t k0 = s0; k0 < s0 + w.group; k0 += 16) {
              const int8_t* t = a.pairs + (k0 - w.slot_start[1]) / 16 * 128 + 64 * half;
              for (int c = 0; c < 4; ++c) {
                const int64_t first = k0 + 8 * half + c;
                dh += t[c << 4 | index(first) | index(first + 4) << 2];
              }
            }
            f = std::fma(static_cast<float>(dh), a.pair_scale[2 * k + half], f);
          }
          continue;
        }
        int32_t d = a.corr[i * a.groups + g];
        for (int64_t s = s0; s < s0 + w.group; ++s) {
          if (w.slot_column[s] < 0) continue;  // empty slot: t + 128 = 128 times q = 0
          const int32_t u = w.tables[table_byte(w.slot_start, s, index(s))];
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

void pair_tables_scalar(const PairTableArgs& p) {
  const int64_t per_group = p.group / 16;
  for (int64_t k0 = 0; k0 < p.chunks; k0 += per_group) {
    // The group's exact pair sums, then a multiplier per table half (low / high pairs).
    int32_t sums[4][128];
    int32_t max_abs[2] = {0, 0};
    for (int64_t k = k0; k < k0 + per_group; ++k)
      for (int e = 0; e < 128; ++e) {
        const int half = e / 64, c = (e >> 4) & 3, a = e & 3, b = (e >> 2) & 3;
        const int64_t s1 = p.first_slot + 16 * k + 8 * half + c, s2 = s1 + 4;
        const int64_t t1 = 4 * (s1 - p.first_slot), t2 = 4 * (s2 - p.first_slot);
        const int32_t v = static_cast<int32_t>(p.xs[s1]) * p.pair_t[t1 + a] +
                          static_cast<int32_t>(p.xs[s2]) * p.pair_t[t2 + b];
        sums[k - k0][e] = v;
        max_abs[half] = std::max(max_abs[half], v < 0 ? -v : v);
      }
    const float sc = p.scale[(p.first_slot + 16 * k0) / p.group];
    for (int half = 0; half < 2; ++half) {
      const int32_t m = pair_multiplier(max_abs[half]);
      for (int64_t k = k0; k < k0 + per_group; ++k)
        for (int e = 64 * half; e < 64 * half + 64; ++e)
          p.out[k * 128 + e] = static_cast<int8_t>((sums[k - k0][e] * m + 16384) >> 15);
      p.pair_scale[2 * (k0 / per_group) + half] = m == 0 ? 0.0f : sc * (32768.0f / static_cast<float>(m));
    }
  }
}

const Int8Kernels& int8_kernels_scalar() {
  static const Int8Kernels k{&half, &gather_scalar, &pair_tables_scalar};
  return k;
}

}  // namespace quarot::codebook_int8_detail
