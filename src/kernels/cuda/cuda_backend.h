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
//  - run_step / make_step_graph (backend.h): a step of 1..64 tokens at a position
//    > 0 is recorded as a CUDA graph and replayed on later calls with the same slot.
//    Inside a step the position and token ids are read from device memory (written
//    before each launch), the attention's launch is sized by the cache's capacity,
//    so one recording serves every position and its results are bit-identical to
//    running the same ops one by one. The first call with a slot (and the first
//    after a scratch buffer was reallocated) runs op by op to size the scratch; the
//    next records. A recording that fails (an op that cannot be captured) is
//    counted in CudaStepStats and the slot runs op by op from then on. Position 0
//    always runs op by op (IntactKV's copy of position 0 is decided on the host).
//    Recording assumes no other host thread queues work on this backend meanwhile.
//    The environment variable QUAROT_CUDA_GRAPHS=0 turns recording off.
// Errors (no device, not sm_90, out of memory, a CUDA failure, a non-finite
// activation reaching an integer quantizer) are quarot::Error; a failure inside an
// asynchronous kernel surfaces at the next download().
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/backend.h"

namespace quarot {

struct CudaBackendOptions {
  int device = 0;         // CUDA device index
  bool simulate = false;  // run every product on the FP16 path (no integer kernels)
  bool graphs = true;     // record run_step() steps as CUDA graphs (unless QUAROT_CUDA_GRAPHS=0)
};

// Throws quarot::Error when no usable device is present or it is not sm_90.
std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options = {});

// How run_step() calls on a CUDA backend ran, since it was made.
struct CudaStepStats {
  int64_t direct = 0;    // ops queued one by one: no slot, position 0, recording off or failed before
  int64_t warmups = 0;   // op by op in step mode, sizing the scratch for a recording
  int64_t captures = 0;  // recorded, then launched
  int64_t replays = 0;   // launched from an existing recording
  int64_t failures = 0;  // recordings that failed (that slot then runs op by op)
  std::string last_failure;
};
// All zero for a backend that is not a CUDA backend.
CudaStepStats cuda_step_stats(const Backend& backend);

}  // namespace quarot
