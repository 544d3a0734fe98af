#pragma once
// Fused online Hadamard rotation + dynamic per-token symmetric quantization on the
// GPU (one pass over the activations: read FP16/FP32, write packed integers).
//
// For each row x of a [rows, cols] row-major matrix:
//   1. y = blockdiag(H_p / sqrt(p)) x: the normalized Sylvester Hadamard of order p
//      on each contiguous run of p values (p = 1: no rotation; p = cols: whole row),
//      computed as kernels/cpu/fwht.h does (butterfly stages h = 1, 2, 4, ... in
//      float, then one multiply by the float 1/sqrt(p)), so y is bit-identical.
//   2. Over the whole row, kernels/cpu/int_quant.h's quantize_sym:
//        qmax = 2^(bits-1) - 1, s = clip * max|y| / qmax,
//        q = clamp(rint(y / s), -qmax - 1, qmax)   (round half to even)
//      bit for bit (IEEE division, no fast math); an all-zero row gives s = 0, q = 0.
// Output: bits = 4: q packed two per byte, low nibble first (byte i holds q[2i] in
// bits 0..3, q[2i+1] in bits 4..7), rows of cols/2 bytes; bits = 8: one int8 per value.
// With layout IntGemmActLayout::Int8EvenOdd (the overload taking one): one int8 per
// code for either bits (4-bit codes sign-extended), rows of cols bytes, each 32 values
// stored as their 16 even then their 16 odd indices: what int_gemm's WgmmaRs path reads.
// scales[row] = s (FP32) and, when scales_h is not null, also rounded to FP16.
// With an RmsFold (the overload taking one, FP16 input): the input row's RMSNorm folded
// into its scale, in the same pass: scales[row] = s * inv_rms with
// inv_rms = rsqrtf(float(sum_j x_j^2) / cols + eps) (FP32 sums), the codes those of x
// with scale s: what rmsnorm.cuh's rows_scale_inv_rms gives after the plain call, up to
// the order of the FP32 sums, without its second read of x. (QuaRot folds RMSNorm's
// gamma into the next weights, so the codes of x and a scale divided by rms(x) encode
// the normalized row.) Legacy runs the second pass itself.
// A row holding NaN or infinity cannot be encoded: its scale is NaN and its q are 0,
// so every product using it comes out NaN rather than silently finite.
//
// Accepted shapes (cudaErrorInvalidValue otherwise, nothing launched): cols % 32 == 0,
// 32 <= cols <= 32768, p a power of two dividing cols, bits 4 or 8, clip > 0 finite,
// x and q 16-byte aligned. Not covered: the k x k non-Hadamard factor of backend.h's
// OnlineRotation (k > 1 with a matrix M) and group-wise scales.
//
// Implementations (all but TensorCore bit-identical; the overload taking a variant is for benchmarks
// and tests, the plain one uses Auto):
//   Legacy  one block per row, 32 values per thread, every butterfly group and both
//           quantization passes through shared memory (any accepted shape);
//   Direct  64 values per thread kept in registers from load to store, stages beyond
//           the first six through at most two shared-memory transposes, one barrier
//           per transpose plus one for the row maximum (cols % 64 == 0);
//   Staged  Direct, with the next row copied into shared memory (cp.async, coalesced)
//           while this one is transformed (cols % 64 == 0 and the staging fits);
//   DirectL2  Direct, with the next row prefetched into L2 (cp.async.bulk.prefetch).
//   Coalesced  Direct, loading lines of 8 values 256 apart so each warp-wide load is
//           contiguous, then one warp-local transpose (cols % 2048 == 0, p >= 128);
//           with p = 1 no transpose: codes made and stored in the load's layout, so
//           the stores are contiguous per warp too (cols % 2048 == 0).
//   TensorCore  H_p = H_(p/64) (x) H_64 as two products on the FP16 tensor cores, the
//           second with its operand split into hi + lo FP16 parts (hadamard_quant_tc.cuh):
//           NOT bit-exact to the CPU: the same sums in another order, so the codes equal
//           the reference's except where y / s lies within ~1e-6 of a rounding tie and
//           the scales are within a few ulp. Auto never picks it. Takes FP16 rows,
//           p in 256..8192, cols % 256 == 0 with ceil(cols / 1024) <= 16 (or even and <= 28 for p <= 4096),
//           either layout, no RmsFold; anything else runs Auto's choice.
// A variant that cannot take a shape runs the next one down (Staged -> Direct ->
// Legacy; DirectL2 -> Legacy; Coalesced -> Direct -> Legacy; TensorCore -> Auto).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "kernels/cuda/int_gemm.cuh"

namespace quarot::cuda {

enum class HadamardQuantVariant { Auto, Legacy, Direct, Staged, DirectL2, Coalesced, TensorCore };
// Every variant, for tests and benchmarks that walk them (Auto last).
inline constexpr HadamardQuantVariant kHadamardQuantVariants[] = {
    HadamardQuantVariant::Legacy,    HadamardQuantVariant::Direct,     HadamardQuantVariant::Staged,
    HadamardQuantVariant::DirectL2,  HadamardQuantVariant::Coalesced,  HadamardQuantVariant::TensorCore,
    HadamardQuantVariant::Auto};

cudaError_t hadamard_quant_rows(const __half* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip_ratio,
                                uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream);
cudaError_t hadamard_quant_rows(const float* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip_ratio,
                                uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream);
cudaError_t hadamard_quant_rows(const __half* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip_ratio,
                                uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream,
                                HadamardQuantVariant variant);
cudaError_t hadamard_quant_rows(const float* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip_ratio,
                                uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream,
                                HadamardQuantVariant variant);
cudaError_t hadamard_quant_rows(const __half* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip_ratio,
                                uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream,
                                HadamardQuantVariant variant, IntGemmActLayout layout);
cudaError_t hadamard_quant_rows(const float* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip_ratio,
                                uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream,
                                HadamardQuantVariant variant, IntGemmActLayout layout);
struct RmsFold {
  float eps = 1e-5f;  // RMSNorm's epsilon: > 0 (an all-zero row keeps scale 0), finite
};
cudaError_t hadamard_quant_rows(const __half* x, int64_t rows, int64_t cols, int64_t p, int bits, float clip_ratio,
                                uint8_t* q, float* scales, __half* scales_h, cudaStream_t stream,
                                HadamardQuantVariant variant, IntGemmActLayout layout, const RmsFold& fold);
// The variant Auto runs for this shape and input type (what a benchmark reports).
HadamardQuantVariant hadamard_quant_auto_variant(int64_t rows, int64_t cols, int64_t p, bool fp32_input);
const char* hadamard_quant_variant_name(HadamardQuantVariant v);
// The variant of that name, or nullopt (for options that take a variant by name).
std::optional<HadamardQuantVariant> hadamard_quant_variant_from_name(std::string_view name);
// Whether a call with this variant and shape gives the CPU reference's codes and scales
// bit for bit (false only where TensorCore runs its own kernel).
bool hadamard_quant_is_exact(HadamardQuantVariant variant, int64_t cols, int64_t p, int bits, bool fp32_input,
                             IntGemmActLayout layout, bool rms_fold);

}  // namespace quarot::cuda
