#pragma once
// Internal: the per-instruction-set inner kernels behind gemm(). Each lives in a
// file compiled with that ISA's flags (gemm_avx2.cpp, gemm_avx512.cpp); gemm.cpp
// (portable flags) owns the blocking, threading and edge handling and reaches
// the kernels only through these function pointers, so no AVX code can leak into
// a path the CPU cannot run. Keep this header free of inline code for that reason.
#include <cstdint>

namespace quarot::gemm_detail {

struct GemmKernels {
  int rows_per_tile;  // MR: activation rows per register tile
  int panel_width;    // NR: output columns per packed panel
  // c[m, NR] = (accumulate ? c : 0) + a[m, kc] * b[kc, NR] (+ bias[NR] when not null),
  // for 1 <= m <= MR; a has row stride lda, c row stride ldc, b is a packed panel slice.
  void (*tile)(int64_t m, const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc,
               bool accumulate, const float* bias);
  // y[NR] = x[in] * panel[in, NR] (+ bias[NR] when not null): one panel of a GEMV.
  void (*gemv_panel)(const float* x, const float* panel, int64_t in, const float* bias, float* y);
};

const GemmKernels& gemm_kernels_avx2();
const GemmKernels& gemm_kernels_avx512();

// Reference path on the unpacked row-major weight.
void gemm_scalar(const float* w, int64_t out, int64_t in, const float* x, int64_t n, const float* bias, float* y);

}  // namespace quarot::gemm_detail
