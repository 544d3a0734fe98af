#pragma once
// The CUDA backend (backend.h) for Hopper GPUs: the whole model on one device.
// This header needs no CUDA headers, so the CLI includes it in any build; the
// factory exists only in builds with QUAROT_CUDA=ON (target quarot_cuda_backend).
//
// What runs where (docs/cuda.md, "The CUDA backend"):
//  - Activations are FP32 device memory (host_memory() is false; alloc() is
//    stream-ordered device memory, upload/download copy on the backend's one stream,
//    download synchronizes). Ops are queued on that stream without synchronizing.
//  - Glue ops (embed, rmsnorm, rope, rotate, swiglu, add) follow the CPU backend's
//    float formulas; rotate() is bit-identical to the CPU's (same butterflies, same
//    order), the others agree to float rounding.
//  - linear():
//      integer path: symmetric per-output-channel integer weights (2..8 bits, no
//        groups) with symmetric per-token activation quantization (2..8 bits, whole
//        row): rotation + quantization on the GPU (the CPU integer path's codes and
//        scales bit for bit), then the int8 tensor-core GEMM (W4A4 / W4A8 / W8A8 by
//        the widths) with an FP32 epilogue float(acc) * (sa * sb) + bias: the same
//        numbers as the CPU integer backend (CpuBackendOptions simulate = false);
//      FP16 path: everything else, i.e. FP32 / FP16 weights ("the FP model in
//        FP16"), weight-only quantization (full-precision activations), and
//        encodings the integer kernels do not take (asymmetric or group-wise
//        weights, codebooks, asymmetric or grouped activation quantization):
//        weights dequantized to FP16 at packing (or on first use for an integer
//        weight that also runs on the integer path), activations rotated and
//        quantize-dequantized in FP32 on the GPU, rounded to FP16, then cuBLAS with
//        FP32 accumulation and output. It agrees with the CPU's simulated reference
//        to FP16 rounding of the operands, not float rounding.
//      simulate = true sends every product down the FP16 path.
//  - make_kv_storage / attention: kernels/cuda/cuda_kv_attention.h.
// Errors (no device, not sm_90, out of memory, a CUDA failure, a non-finite
// activation reaching an integer quantizer) are quarot::Error; a failure inside an
// asynchronous kernel surfaces at the next download().
#include <memory>

#include "kernels/backend.h"

namespace quarot {

struct CudaBackendOptions {
  int device = 0;         // CUDA device index
  bool simulate = false;  // run every product on the FP16 path (no integer kernels)
};

// Throws quarot::Error when no usable device is present or it is not sm_90.
std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options = {});

}  // namespace quarot
