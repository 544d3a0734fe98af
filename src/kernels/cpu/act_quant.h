#pragma once
// Per-token activation quantization for the integer GEMM (int_gemm.h), fused with
// the online rotation: each row is read once, rotated in a thread-local buffer,
// and its integer codes, scales and offsets written out in the same pass.
//
// Contract: for every element,  scale * (code - offset)  (in float) equals the value
// apply_online_rotation(rotation) followed by fake_quant_rows(bits, clip_ratio,
// group, symmetric) produces, on every instruction-set path (the same float
// operations in the same order; division, not a reciprocal). The one difference
// is the sign of zero: an integer code has no -0.
//   symmetric:  code = q + 2^(bits-1) in [0, 2^bits - 1], offset = 2^(bits-1)
//   asymmetric: code = q in [0, 2^bits - 1],              offset = the zero point
// An all-zero group gets scale 0 (and code == offset). A non-finite input value
// throws quarot::Error naming its row and column.
#include <cstdint>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/cpu_features.h"

namespace quarot {

struct QuantizedActivations {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t group = 0;  // divides cols; == cols for per-token quantization
  int bits = 0;
  bool symmetric = true;
  // Codes of row r start at codes.data() + r * stride. The stride is cols rounded
  // up to 64 plus 64 bytes, and rows are allocated up to padded_rows (a multiple
  // of 32); every byte past a row's cols and every padding row is 0, so kernels
  // may read whole 64-byte vectors (and 16/32-row AMX tiles) past the edges.
  int64_t stride = 0;
  int64_t padded_rows = 0;
  AlignedBytes codes;
  std::vector<float> scales;        // [rows, groups()]
  std::vector<int32_t> offsets;     // [rows, groups()]
  std::vector<int32_t> code_sums;   // [rows, groups()]: sum of the group's codes (for the GEMM's zero-point terms)
  // Bookkeeping of quantize_activations: bytes of `codes` from the start that may be
  // nonzero, so a reused buffer re-zeroes only what earlier calls wrote (decode pads
  // one row to 32; zeroing all 32 on every call was a measurable share of a token).
  int64_t dirty_bytes = 0;

  int64_t groups() const { return group == 0 ? 0 : cols / group; }
  const uint8_t* row(int64_t r) const { return codes.data() + r * stride; }
};

// Quantizes x [rows, cols] (row-major, contiguous) after applying `rotation` (null or
// the identity = none) to each row. spec.bits must be 2..8 and spec.group 0 (the
// whole row) or a divisor of cols. `out` is reused: its buffers grow when needed,
// so decoding one token at a time does not allocate. `isa` picks the kernel
// (results are identical on every path); throws quarot::Error if it is not
// supported here. Threads over rows with OpenMP.
void quantize_activations(const float* x, int64_t rows, int64_t cols, const OnlineRotation* rotation,
                          const ActQuantSpec& spec, QuantizedActivations& out, Isa isa);

// The elementwise op before a product, done row by row inside the quantizer so its
// output never goes through memory: each row of the quantizer's input is
//   kSwiglu:  silu(x) * up              (the backend's swiglu(), same kernel per isa)
//   kRmsnorm: x / rms(x) * norm_weight  (the backend's rmsnorm(), norm_weight may be null)
// Codes are those of the separate op followed by quantize_activations.
struct ActPrologue {
  enum class Kind { kSwiglu, kRmsnorm } kind = Kind::kSwiglu;
  const float* up = nullptr;           // kSwiglu: [rows, cols]
  const float* norm_weight = nullptr;  // kRmsnorm: [cols] or null (all ones)
  float norm_eps = 0.0f;               // kRmsnorm
};
// quantize_activations of prologue(x). A non-finite value of prologue(x) throws,
// naming its row and column.
void quantize_activations(const float* x, const ActPrologue& prologue, int64_t rows, int64_t cols,
                          const OnlineRotation* rotation, const ActQuantSpec& spec, QuantizedActivations& out,
                          Isa isa);

}  // namespace quarot
