#pragma once
// Internal: the per-instruction-set inner kernels behind int_gemm(), each in a file
// compiled with that ISA's flags, reached only through these function pointers
// (see gemm_kernels.h for why). int_gemm.cpp owns validation, blocking, threading
// and the bias/residual/ragged-edge epilogue.
#include <cstdint>

namespace quarot::int_gemm_detail {

enum class WeightFormat { kInt8, kNibbles };

// How AVX2 multiplies u8 activations by s8 weights without int16 saturation
// (vpmaddubsw saturates each pair sum to int16):
//   kFast:  two vpmaddubsw results are added in int16 before vpmaddwd; exact when
//           4 * amax * wmax <= 32767 (amax = largest activation code, wmax = largest |s|).
//   kPlain: one vpmaddwd per vpmaddubsw; exact when 2 * amax * wmax <= 32767.
//   kSplit: activation codes split into nibbles a = 16 * hi + lo; each half is
//           <= 15, so 4 * 15 * 128 = 7680 <= 32767 for any s8 weight, and
//           16 * (pair sums) is formed by vpmaddwd with 16 in int32: exact for
//           every 8-bit x 8-bit product.
//   kDeep:  as kFast, but the int16 sums of `deep_steps` consecutive 8-position steps
//           are added in int16 before one vpmaddwd widens them; exact when
//           deep_steps * 4 * amax * wmax <= 32767 (W4A4: 36 steps). vpmaddubsw and
//           vpmaddwd share one execution port on many cores (one on Zen 1), so the
//           widening was a third of that port's work.
enum class ProductMode { kFast, kPlain, kSplit, kDeep };

struct IntTileArgs {
  const uint8_t* a = nullptr;  // activation codes of the tile's first row
  int64_t lda = 0;             // bytes between activation rows
  int64_t m = 0;               // rows in this tile, 1..rows_per_tile
  const uint8_t* w = nullptr;  // the tile's first panel (packed or prepared)
  int64_t w_panel_stride = 0;  // bytes between consecutive panels
  int64_t np = 0;              // panels in this tile, 1..panels_per_tile
  WeightFormat format = WeightFormat::kInt8;
  ProductMode mode = ProductMode::kFast;
  int64_t deep_steps = 1;  // kDeep: 8-position steps summed in int16 before widening
  int64_t blocks = 0;  // K blocks
  int64_t kb = 0;      // activation positions per block
  int64_t kbw = 0;     // weight positions per block (kb rounded up to 8, or to 64 once prepared for AMX)
  // Activation block terms of row i, block b at [i * blocks + b].
  const float* a_scale = nullptr;
  const int32_t* a_offset = nullptr;
  const int32_t* a_sum = nullptr;
  // Weight block terms of panel j, block b, column c at [(j * blocks + b) * 16 + c].
  const float* w_scale = nullptr;
  const int32_t* w_zero_term = nullptr;  // c - zero
  const int32_t* w_sum = nullptr;        // sum of (code - zero)
  // out[i * np * 16 + j * 16 + c] = the epilogue's f (no bias/residual), row i < m.
  float* out = nullptr;
};

// Where a run of rows' results go (IntGemmKernels::rows): y = (f + bias) + residual for the
// run's `cols` valid columns. y and residual point at the run's first row and the tile's
// first column, bias at that column.
struct IntRowsOutput {
  float* y = nullptr;
  int64_t ldy = 0;  // floats between rows of y (and of residual)
  int64_t cols = 0;
  const float* bias = nullptr;
  const float* residual = nullptr;
};

struct IntGemmKernels {
  int rows_per_tile;
  int panels_per_tile;
  // Weight positions per block after prepare_panel (kbw itself unless the kernel pads).
  int64_t (*prepared_kbw)(int64_t kbw);
  // Prefill: rewrites one panel (all blocks) into the int8 layout `tile` reads with
  // WeightFormat::kInt8 and prepared_kbw; `out` holds blocks * prepared_kbw * 16 bytes.
  void (*prepare_panel)(const uint8_t* packed, WeightFormat format, int64_t blocks, int64_t kbw, uint8_t* out);
  void (*tile)(const IntTileArgs& args);
  // Around a run of tile calls on one thread (nullptr: nothing to do): AMX configures its
  // tile registers once there instead of per tile (a 32 x 32 tile of K = 576 is ~600 cycles
  // of products, so a configure and release per call cost a large part of it).
  void (*begin)() = nullptr;
  void (*end)() = nullptr;
  // Prefill, one K block (args.blocks == 1): `rows` activation rows from args.a (args.m
  // unused; the block terms from the run's first row) times the tile's panels, finished
  // into `out`, so a kernel can overlap one row tile's epilogue with the next one's
  // products. nullptr: int_gemm.cpp calls `tile` per row tile and finishes itself.
  void (*rows)(const IntTileArgs& args, int64_t rows, const IntRowsOutput& out) = nullptr;
  // As `rows` for two products of the same activation rows (gate and up: their own
  // panels and weight terms; the activation terms are gate's, up's are not read), writing silu(gate) * up
  // (silu_simd.h) into `out` (bias and residual null) instead of either product.
  void (*rows_swiglu)(const IntTileArgs& gate, const IntTileArgs& up, int64_t rows, const IntRowsOutput& out) = nullptr;
  // Prefill: activation rows per task, at most (int_gemm.cpp lowers it to 128 when a
  // product would have fewer than two tasks per thread). Each task widens its panels
  // (prepare_panel) once, so a taller block widens less often.
  int64_t row_block = 128;
};

const IntGemmKernels& int_gemm_kernels_avx2();
const IntGemmKernels& int_gemm_kernels_avx512vnni();
const IntGemmKernels& int_gemm_kernels_amx();

}  // namespace quarot::int_gemm_detail
