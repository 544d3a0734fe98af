// AVX-512 VBMI + VNNI kernel of codebook_int8_gemv (contract: codebook_int8.h).
// Per 64 weights (16 rows x 4 columns of one quad): vpternlogd keeps the quad's field of
// each index byte and ORs in the column's table position (c << cpos; quads stored in a
// byte's top bits are first shifted down by 4, one vpsrlw per load), vpermb looks the
// 64 bytes up in the quad's 64-byte table (t + 128), and vpdpbusd multiplies them with
// the 4 activation codes (an embedded broadcast) into int32 row sums. Per scale group:
// one int32 -> FP32 conversion and one FMA per 16 rows.
// Zen 4 issues one 512-bit shift, permute, multishift or vpdpbusd per cycle (two
// vpternlogd): the byte-per-column layout replaced a vpmultishiftqb per 64 weights,
// 3 -> 2.25 such instructions per 64 weights at 2 bits.
// One activation row alternates two int32 accumulators per 16 rows (even / odd quads),
// so the vpdpbusd chains do not wait on each other's latency; integer sums are exact,
// so the split does not change the result.
// Internal linkage except the table (see codebook_int8_kernels.h).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "kernels/cpu/codebook_int8_layout.h"
#include "kernels/cpu/codebook_int8_kernels.h"
#include "kernels/cpu/stream_prefetch.h"

namespace quarot::codebook_int8_detail {
namespace {

// Software prefetch into the index streams (one per width class, so not the single
// stream decode_prefetch() (stream_prefetch.h) is about): 2 KB ahead into L1 on every
// CPU, and decode_prefetch()'s far distance into L2 where the CPU wants it. On the 2-vCPU
// Zen 4, 2026-12-04 (bench_codebook_gemm BM_CodebookInt8, 4096x4096 and 11008x4096, 2- and
// 3-bit, GB/s of indices): none 8.3-14.3 on one core and 16.2-26.6 on two, 2 KB 10.5-15.5
// and 20.6-32.0; 4 and 8 KB like 2 KB
// (docs/results/2026-12-04-epyc-decode-prefetch/codebook_int8_transcribed.txt). The L2
// requests on the 2-vCPU Xeon with AMX: docs/results/2026-12-06-xeon2-decode-prefetch/.
constexpr int64_t kPrefetchBytes = 2048;

// vpternlogd operands of quad position `sub`: the field's bits in every byte, and the
// column's table position in byte c of every dword.
constexpr char field_mask(int fw, int sub) {
  return static_cast<char>(((1 << fw) - 1) << codebook_int8_quad_field(fw, sub).pos);
}
constexpr int column_bits(int fw, int sub) {
  const int p = codebook_int8_quad_field(fw, sub).cpos;
  return (1 << (8 + p)) | (2 << (16 + p)) | (3 << (24 + p));
}

inline __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

template <int M, int G, int CLS>
__attribute__((always_inline)) inline void run_class(const Int8View& w, const Int8Act& a, int64_t h,
                                                     __m512 (&facc)[M][2]) {
  constexpr int FW = codebook_int8_field_bits(CLS), C = 32 / FW, QC = C / 4, QG = G / 4;
  constexpr int L = G > C ? G : C;  // slots per unrolled block (whole groups and whole loads)
  constexpr int P = M == 1 ? 2 : 1;  // int32 accumulator sets (alternating quads)
  const int64_t s0 = w.slot_start[CLS], s1 = w.slot_start[CLS + 1];
  if (s0 == s1) return;
  __m512i mask[QC], offs[QC];
  [&]<int... S>(std::integer_sequence<int, S...>) {
    ((mask[S] = _mm512_set1_epi8(field_mask(FW, S)), offs[S] = _mm512_set1_epi32(column_bits(FW, S))), ...);
  }(std::make_integer_sequence<int, QC>{});
  const uint8_t* d = w.data + ((h * w.chunks + w.chunk_start[CLS]) * 2) * 64;
  const uint8_t* t = w.tables + s0 / 4 * 64;
  const int8_t* x = a.xs + s0;
  const int64_t xst = a.x_stride, groups = a.groups;
  const StreamPrefetch ahead{kPrefetchBytes, decode_prefetch().far_bytes};
  int64_t g = s0 / G;
  for (int64_t s = s0; s < s1; s += L, d += (L / C) * 128, t += (L / 4) * 64, x += L, g += L / G) {
    // The index stream is read once, 64 bytes per 4-8 instructions (cold weights run at
    // well below the hot rate: see kPrefetchBytes).
    for (int line = 0; line < (L / C) * 2; ++line) prefetch_ahead(d + line * 64, ahead);
    __m512i acc[P][M][2];
    const auto quad = [&](auto uc) {
      constexpr int U = decltype(uc)::value;
      constexpr int chunk = U / QC, sub = U % QC, par = U % P;
      if constexpr (U % QG == 0) {
        for (int i = 0; i < M; ++i) {
          const __m512i c = _mm512_set1_epi32(a.corr[i * groups + g + U / QG]);
          for (int q = 0; q < 2; ++q) {
            acc[0][i][q] = c;
            if constexpr (P == 2) acc[1][i][q] = _mm512_setzero_si512();
          }
        }
      }
      const __m512i tbl = _mm512_load_si512(t + U * 64);
      __m512i xb[M];
      for (int i = 0; i < M; ++i) xb[i] = bcast4(x + i * xst + 4 * U);
      for (int q = 0; q < 2; ++q) {
        __m512i raw = _mm512_load_si512(d + (chunk * 2 + q) * 64);
        // Bits a 16-bit shift brings in from the next byte are masked off, or land in
        // bits 6..7, which vpermb ignores.
        if constexpr (codebook_int8_quad_field(FW, sub).shift != 0) raw = _mm512_srli_epi16(raw, 4);
        const __m512i idx = _mm512_ternarylogic_epi32(raw, mask[sub], offs[sub], 0xEA);
        const __m512i wv = _mm512_permutexvar_epi8(idx, tbl);
        for (int i = 0; i < M; ++i) acc[par][i][q] = _mm512_dpbusd_epi32(acc[par][i][q], wv, xb[i]);
      }
      if constexpr ((U + 1) % QG == 0) {
        for (int i = 0; i < M; ++i) {
          const __m512 sc = _mm512_set1_ps(a.scale[i * groups + g + U / QG]);
          for (int q = 0; q < 2; ++q) {
            __m512i sum = acc[0][i][q];
            if constexpr (P == 2) sum = _mm512_add_epi32(sum, acc[1][i][q]);
            facc[i][q] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), sc, facc[i][q]);
          }
        }
      }
    };
    [&]<int... U>(std::integer_sequence<int, U...>) { (quad(std::integral_constant<int, U>{}), ...); }(
        std::make_integer_sequence<int, L / 4>{});
  }
}

// The 2-bit class through pair tables (one activation row): per 64-byte load (16 rows x
// 16 slots) the low nibbles index pairs (c, c + 4), the high nibbles (after one vpsrlw)
// pairs (c + 8, c + 12), c = the byte's place in its row's dword; one vpternlogd each
// puts c in bits 4..5, vpermb looks 64 pair values up, vpdpbusd with ones adds a row's
// four into its dword. Two accumulators per 16 rows (low / high nibbles) keep the
// vpdpbusd chains apart.
template <int G>
__attribute__((always_inline)) inline void run_pairs(const Int8View& w, const Int8Act& a, int64_t h,
                                                     __m512 (&facc)[2]) {
  constexpr int CPG = G / 16;  // chunks per scale group
  const int64_t s0 = w.slot_start[1], s1 = w.slot_start[2];
  if (s0 == s1) return;
  const __m512i ones = _mm512_set1_epi8(1), nibble = _mm512_set1_epi8(0x0F);
  const __m512i place = _mm512_set1_epi32(0x30201000);  // c << 4 in byte c of every dword
  const uint8_t* d = w.data + ((h * w.chunks + w.chunk_start[1]) * 2) * 64;
  const int8_t* t = a.pairs;
  const StreamPrefetch ahead{kPrefetchBytes, decode_prefetch().far_bytes};
  for (int64_t s = s0; s < s1; s += G, d += CPG * 128, t += CPG * 128) {
    for (int line = 0; line < CPG * 2; ++line) prefetch_ahead(d + line * 64, ahead);
    __m512i acc[2][2];
    for (int q = 0; q < 2; ++q) acc[q][0] = acc[q][1] = _mm512_setzero_si512();
    for (int k = 0; k < CPG; ++k) {
      const __m512i lo_t = _mm512_load_si512(t + k * 128), hi_t = _mm512_load_si512(t + k * 128 + 64);
      for (int q = 0; q < 2; ++q) {
        const __m512i raw = _mm512_load_si512(d + (k * 2 + q) * 64);
        const __m512i il = _mm512_ternarylogic_epi32(raw, nibble, place, 0xEA);
        const __m512i ih = _mm512_ternarylogic_epi32(_mm512_srli_epi16(raw, 4), nibble, place, 0xEA);
        acc[q][0] = _mm512_dpbusd_epi32(acc[q][0], ones, _mm512_permutexvar_epi8(il, lo_t));
        acc[q][1] = _mm512_dpbusd_epi32(acc[q][1], ones, _mm512_permutexvar_epi8(ih, hi_t));
      }
    }
    const float* ps = a.pair_scale + 2 * ((s - s0) / G);
    const __m512 lo_sc = _mm512_set1_ps(ps[0]), hi_sc = _mm512_set1_ps(ps[1]);
    for (int q = 0; q < 2; ++q) {
      facc[q] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[q][0]), lo_sc, facc[q]);
      facc[q] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[q][1]), hi_sc, facc[q]);
    }
  }
}

template <int M, int G>
void half_m(const Int8View& w, const Int8Act& a, int64_t h, float* out) {
  __m512 facc[M][2];
  for (int i = 0; i < M; ++i) facc[i][0] = facc[i][1] = _mm512_setzero_ps();
  // Slot order = class order, the reference's group order.
  run_class<M, G, 0>(w, a, h, facc);
  if constexpr (M == 1) {
    if (a.pairs != nullptr)
      run_pairs<G>(w, a, h, facc[0]);
    else
      run_class<M, G, 1>(w, a, h, facc);
  } else {
    run_class<M, G, 1>(w, a, h, facc);
  }
  run_class<M, G, 2>(w, a, h, facc);
  for (int i = 0; i < M; ++i)
    for (int q = 0; q < 2; ++q) _mm512_storeu_ps(out + i * 32 + q * 16, facc[i][q]);
}

template <int G>
void half_g(const Int8View& w, const Int8Act& a, int64_t h, float* out) {
  switch (a.n) {
    case 1: return half_m<1, G>(w, a, h, out);
    case 2: return half_m<2, G>(w, a, h, out);
    case 3: return half_m<3, G>(w, a, h, out);
    default: return half_m<4, G>(w, a, h, out);
  }
}

void half(const Int8View& w, const Int8Act& a, int64_t h, float* out) {
  switch (w.group) {
    case 16: return half_g<16>(w, a, h, out);
    case 64: return half_g<64>(w, a, h, out);
    default: return half_g<32>(w, a, h, out);
  }
}

// 64 slots at a time: per 128-byte block b of the codes, one vpermi2b looks up every
// slot's column % 128 in it and a byte mask keeps the slots whose column / 128 is b
// (~3 instructions per block and 64 slots, against ~2-3 cycles per slot for the loop:
// 0.35 / 0.92 us at 576 / 1536 columns on Zen 4, a serial step of every decode call).
// Empty slots keep the offset, so their q is 0 in xs and in the sums; group sums come
// from vpsadbw's 8-byte sums of the unsigned codes.
void gather(const GatherArgs& g) {
  if (g.lo == nullptr || g.block == nullptr) return gather_scalar(g);
  const int64_t blocks = (g.cols + 127) / 128, per8 = g.group / 8;
  const __m512i off = _mm512_set1_epi8(static_cast<char>(g.offset));
  for (int64_t s0 = 0; s0 < g.slots; s0 += 64) {
    const int64_t n = std::min<int64_t>(64, g.slots - s0);
    const __mmask64 live = n == 64 ? ~__mmask64{0} : (__mmask64{1} << n) - 1;
    const __m512i lo = _mm512_load_si512(g.lo + s0);
    const __m512i blk = _mm512_load_si512(g.block + s0);
    __m512i r = off;
    for (int64_t b = 0; b < blocks; ++b) {
      const __mmask64 m = _mm512_cmpeq_epi8_mask(blk, _mm512_set1_epi8(static_cast<char>(b)));
      const __m512i v = _mm512_permutex2var_epi8(_mm512_loadu_si512(g.codes + 128 * b), lo,
                                                 _mm512_loadu_si512(g.codes + 128 * b + 64));
      r = _mm512_mask_mov_epi8(r, m, v);
    }
    _mm512_mask_storeu_epi8(g.xs + s0, live, _mm512_sub_epi8(r, off));
    alignas(64) uint64_t sums[8];
    _mm512_store_si512(sums, _mm512_sad_epu8(r, _mm512_setzero_si512()));
    // Whole groups only (slots is a multiple of the group, so is n).
    for (int64_t q = 0; q * 8 < n; q += per8) {
      int64_t code_sum = 0;
      for (int64_t e = 0; e < per8; ++e) code_sum += static_cast<int64_t>(sums[q + e]);
      g.corr[(s0 + 8 * q) / g.group] =
          -128 * static_cast<int32_t>(code_sum - static_cast<int64_t>(g.group) * g.offset);
    }
  }
}

// Pair tables (PairTableArgs' contract), one 16-slot chunk at a time: the 64 products
// q_s t_s[v] as words (|.| <= 127 * 127), each table entry the sum of two of them picked
// by vpermw, then the group's multiplier by vpmulhrsw and vpmovwb.
void pair_tables(const PairTableArgs& p) {
  // Word e of a table: entry e = c << 4 | a | b << 2 takes products 4 c + a and 16 + 4 c + b
  // of its eight slots; vectors of entries 0..31 and 32..63.
  struct Picks {
    __m512i first[2], second[2], spread[2];
    Picks() {
      alignas(64) uint16_t f[2][32], s[2][32], x[2][32];
      for (int e = 0; e < 64; ++e) {
        f[e / 32][e % 32] = static_cast<uint16_t>(4 * (e >> 4) + (e & 3));
        s[e / 32][e % 32] = static_cast<uint16_t>(16 + 4 * (e >> 4) + ((e >> 2) & 3));
      }
      for (int i = 0; i < 32; ++i) {
        x[0][i] = static_cast<uint16_t>(i >> 2);      // slot of product i, slots 0..7
        x[1][i] = static_cast<uint16_t>(8 + (i >> 2));  // slots 8..15
      }
      for (int v = 0; v < 2; ++v) {
        first[v] = _mm512_load_si512(f[v]);
        second[v] = _mm512_load_si512(s[v]);
        spread[v] = _mm512_load_si512(x[v]);
      }
    }
  };
  static const Picks pk;
  const int64_t per_group = p.group / 16;
  for (int64_t k0 = 0; k0 < p.chunks; k0 += per_group) {
    __m512i sums[4][4];  // [chunk][low 0..31, low 32..63, high 0..31, high 32..63]
    __m512i mx[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};  // per table half
    for (int64_t k = 0; k < per_group; ++k) {
      const int64_t slot = p.first_slot + 16 * (k0 + k);
      const __m512i xw =
          _mm512_zextsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p.xs + slot))));
      const __m512i tv = _mm512_loadu_si512(p.pair_t + 4 * 16 * (k0 + k));
      for (int half = 0; half < 2; ++half) {
        const __m512i tw = _mm512_cvtepi8_epi16(half == 0 ? _mm512_castsi512_si256(tv) : _mm512_extracti64x4_epi64(tv, 1));
        const __m512i prod = _mm512_mullo_epi16(tw, _mm512_permutexvar_epi16(pk.spread[half], xw));
        for (int v = 0; v < 2; ++v) {
          const __m512i e = _mm512_add_epi16(_mm512_permutexvar_epi16(pk.first[v], prod),
                                             _mm512_permutexvar_epi16(pk.second[v], prod));
          sums[k][2 * half + v] = e;
          mx[half] = _mm512_max_epu16(mx[half], _mm512_abs_epi16(e));
        }
      }
    }
    const float sc = p.scale[(p.first_slot + 16 * k0) / p.group];
    for (int half = 0; half < 2; ++half) {
      const int32_t max_abs = _mm512_reduce_max_epi32(_mm512_max_epi32(
          _mm512_cvtepu16_epi32(_mm512_castsi512_si256(mx[half])), _mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(mx[half], 1))));
      const int32_t m = pair_multiplier(max_abs);
      const __m512i mv = _mm512_set1_epi16(static_cast<int16_t>(m));
      for (int64_t k = 0; k < per_group; ++k)
        for (int v = 0; v < 2; ++v)
          _mm256_store_si256(reinterpret_cast<__m256i*>(p.out + (k0 + k) * 128 + 64 * half + 32 * v),
                             _mm512_cvtepi16_epi8(_mm512_mulhrs_epi16(sums[k][2 * half + v], mv)));
      p.pair_scale[2 * (k0 / per_group) + half] = m == 0 ? 0.0f : sc * (32768.0f / static_cast<float>(m));
    }
  }
}

}  // namespace

const Int8Kernels& int8_kernels_avx512vbmi() {
  static const Int8Kernels k{&half, &gather, &pair_tables};
  return k;
}

}  // namespace quarot::codebook_int8_detail
