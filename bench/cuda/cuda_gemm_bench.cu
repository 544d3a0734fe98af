// GEMM and Hadamard+quantize benchmarks on the GPU, against cuBLAS in the same
// process. Writes JSON (atomically: a temporary file renamed into place).
//   cuda_gemm_bench OUT.json [--ms 1,16,...] [--shapes 4096x4096,...] [--paths] [--w4a8-max-m M]
//                   [--rounds R (4)] [--hq-variants] [--hq-variant auto|legacy|direct|staged|direct_l2|coalesced|tensor_core] [--hq-ms 1,16,...]
//   (--paths: every GEMM path, not only Auto's; Hadamard+quantize: every implementation,
//   or one, instead of Auto alone, at the rows --hq-ms lists)
// Times with CUDA events: one warm-up, then batches of launches rotating over
// enough operand copies that the weights do not sit in L2; the median batch
// gives the time of one launch. The headline contenders are timed in R rounds of
// changing order (median round), so none always runs after another's power draw.
// Inputs are random (never zeros).
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cuda_bench_util.cuh"
#include "kernels/cuda/hadamard_quant.cuh"
#include "kernels/cuda/int_gemm.cuh"
#include "kernels/cuda/swiglu.cuh"
#include "kernels/cuda/swiglu_hadamard_quant.cuh"

namespace {

using namespace quarot::cuda;
using namespace quarot::cuda::bench;

constexpr size_t kRotateBytes = size_t{256} << 20;  // > 4x the 60 MB L2

// Median time (microseconds) of one call of fn(copy) over batches of launches.
double time_us(const std::function<void(int)>& fn, int copies, double budget_ms = 40.0) {
  EventSpan span;
  // Warm-up (module load, cuBLAS heuristics, clocks), also sizes the batches.
  span.start();
  for (int c = 0; c < copies; ++c) fn(c);
  const double est_us = 1000.0 * span.stop_ms() / copies;
  int batch = copies;
  while (batch * est_us < 200.0 && batch < 4096) batch += copies;  // batches of >= 0.2 ms
  int reps = static_cast<int>(budget_ms * 1000.0 / std::max(1.0, batch * est_us));
  reps = std::clamp(reps, 3, 15);
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    span.start();
    for (int i = 0; i < batch; ++i) fn(i % copies);
    t.push_back(1000.0 * span.stop_ms() / batch);
  }
  CUDA_OK(cudaGetLastError());
  return median(std::move(t));
}

int copies_for(size_t bytes) {
  return static_cast<int>(std::clamp<size_t>((kRotateBytes + bytes - 1) / std::max<size_t>(bytes, 1), 1, 32));
}

struct Shape {
  int k, n;
};

// cuBLASLt int8 x int8 -> int32, the TN layout Lt requires for IMMA.
struct LtInt8 {
  cublasLtHandle_t lt;
  cublasLtMatmulDesc_t op{};
  cublasLtMatrixLayout_t la{}, lb{}, lc{};
  cublasLtMatmulAlgo_t algo{};
  void* ws;
  size_t ws_bytes;
  bool ok = false;
  LtInt8(cublasLtHandle_t h, int m, int n, int k, void* workspace, size_t wsb) : lt(h), ws(workspace), ws_bytes(wsb) {
    CUBLAS_OK(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32I, CUDA_R_32I));
    const cublasOperation_t t = CUBLAS_OP_T, nn = CUBLAS_OP_N;
    CUBLAS_OK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t));
    CUBLAS_OK(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &nn, sizeof nn));
    // Column-major view: C^T[n, m] = W[n, k] . X[m, k]^T.
    CUBLAS_OK(cublasLtMatrixLayoutCreate(&la, CUDA_R_8I, k, n, k));
    CUBLAS_OK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_8I, k, m, k));
    CUBLAS_OK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32I, n, m, n));
    cublasLtMatmulPreference_t pref;
    CUBLAS_OK(cublasLtMatmulPreferenceCreate(&pref));
    CUBLAS_OK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                                   sizeof ws_bytes));
    cublasLtMatmulHeuristicResult_t res{};
    int found = 0;
    if (cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 1, &res, &found) == CUBLAS_STATUS_SUCCESS &&
        found > 0) {
      algo = res.algo;
      ok = true;
    }
    cublasLtMatmulPreferenceDestroy(pref);
  }
  ~LtInt8() {
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(op);
  }
  void run(const void* w, const void* x, void* c) const {
    const int32_t alpha = 1, beta = 0;
    CUBLAS_OK(cublasLtMatmul(lt, op, &alpha, w, la, x, lb, &beta, c, lc, c, lc, &algo, ws, ws_bytes, nullptr));
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: %s OUT.json [--ms 1,16] [--shapes 4096x4096,...] [--paths] [--w4a8-max-m M] [--rounds R] "
                 "[--no-hadamard] [--no-gemm] [--hq-variants] [--hq-variant NAME] [--hq-ms 1,16] [--rs-tiles] [--no-pdl]\n"
                 "  --no-pdl: our GEMMs without IntGemmArgs::weights_constant (no programmatic dependent launch)\n"
                 "  --rs-tiles: also time WgmmaRs (W4A4) at each token tile (16, 64, 128, 256) and the skinny path\n",
                 argv[0]);
    return 2;
  }
  const std::string out_path = argv[1];
  std::vector<int> ms = {1, 16, 64, 256, 1024, 2048, 4096, 8192};
  std::vector<Shape> shapes = {{4096, 4096}, {4096, 11008}, {11008, 4096}, {8192, 8192}, {8192, 28672}, {28672, 8192}};
  std::vector<int> hq_ms = {1, 16, 2048, 8192};
  bool all_paths = false, hadamard = true, gemm = true, rs_tiles = false, pdl = true;
  std::vector<HadamardQuantVariant> variants = {HadamardQuantVariant::Auto};
  int w4a8_max_m = 1 << 30;
  int rounds = 4;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--ms" && i + 1 < argc) {
      ms = parse_ints(argv[++i]);
    } else if (a == "--shapes" && i + 1 < argc) {
      shapes.clear();
      for (const char* p = argv[++i]; *p;) {
        Shape s{std::atoi(p), 0};
        while (*p && *p != 'x') ++p;
        if (*p) ++p;
        s.n = std::atoi(p);
        while (*p && *p != ',') ++p;
        if (*p == ',') ++p;
        shapes.push_back(s);
      }
    } else if (a == "--hq-ms" && i + 1 < argc) {
      hq_ms = parse_ints(argv[++i]);
    } else if (a == "--paths") {
      all_paths = true;
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--w4a8-max-m" && i + 1 < argc) {
      w4a8_max_m = std::atoi(argv[++i]);
    } else if (a == "--no-hadamard") {
      hadamard = false;
    } else if (a == "--no-pdl") {
      pdl = false;
    } else if (a == "--rs-tiles") {
      rs_tiles = true;
    } else if (a == "--no-gemm") {
      gemm = false;
    } else if (a == "--hq-variants") {
      variants.assign(std::begin(kHadamardQuantVariants), std::end(kHadamardQuantVariants));
    } else if (a == "--hq-variant" && i + 1 < argc) {
      const char* name = argv[++i];
      const auto v = hadamard_quant_variant_from_name(name);
      if (!v) {
        std::fprintf(stderr, "unknown variant %s\n", name);
        return 2;
      }
      variants = {*v};
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }

  cudaDeviceProp prop{};
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  std::string json;
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "{\n  \"gpu\": \"%s\", \"sm\": \"%d%d\", \"sms\": %d, \"l2_mib\": %d, \"driver\": %d, \"runtime\": %d,\n"
                "  \"timing\": \"CUDA events, 1 warm-up, median of 3..15 batches of >= 0.2 ms, operands rotated over "
                ">= 256 MiB; cuBLAS FP16, cuBLASLt INT8, W4A4 and W4A8: median of %d rounds, forward and backward "
                "orders alternating\", \"rounds\": %d, \"weights_constant\": %s,\n",
                prop.name, prop.major, prop.minor, prop.multiProcessorCount, prop.l2CacheSize >> 20, driver, runtime,
                rounds, rounds, pdl ? "true" : "false");
  json += buf;
  std::printf("%s\n", buf);

  // Device-to-device copy: the bandwidth ceiling (bytes read + written).
  {
    const size_t bytes = size_t{1} << 30;
    Buf a(bytes), b(bytes);
    rand_bytes(a, 1);
    const double us = time_us([&](int) { CUDA_OK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice)); }, 1);
    std::snprintf(buf, sizeof buf, "  \"copy_1GiB\": {\"us\": %.1f, \"GBps\": %.0f},\n", us, 2.0 * bytes / us / 1e3);
    json += buf;
    std::printf("copy 1 GiB: %.1f us, %.0f GB/s (read+write)\n", us, 2.0 * bytes / us / 1e3);
  }

  if (hadamard) {
    json += "  \"hadamard_quant\": [\n";
    std::printf("\n%-12s %-6s %-6s %-6s %10s %9s %10s %9s %6s\n", "variant", "M", "K", "p", "us", "GB/s", "copy_us",
                "copy_GB/s", "ratio");
    // (8192, 1): the 70B layer's RMSNorm quantizers (no rotation: QuaRot rotates the residual offline).
    const struct { int k, p; } hk[] = {{4096, 4096}, {8192, 8192}, {11008, 256}, {14336, 2048}, {28672, 4096}, {8192, 1}};
    bool first = true;
    for (int m : hq_ms)
      for (const auto& s : hk) {
        const size_t in_bytes = size_t{2} * m * s.k, out_bytes = static_cast<size_t>(m) * s.k / 2 + 4 * static_cast<size_t>(m);
        const int copies = copies_for(in_bytes + out_bytes);
        std::vector<std::unique_ptr<Buf>> x, q, sc;
        for (int c = 0; c < copies; ++c) {
          x.push_back(std::make_unique<Buf>(in_bytes));
          q.push_back(std::make_unique<Buf>(static_cast<size_t>(m) * s.k / 2));
          sc.push_back(std::make_unique<Buf>(4 * static_cast<size_t>(m)));
          rand_half(*x.back(), 7 + c, 3.0f);
        }
        // A copy of the activations (the same bytes read), into the next copy slot.
        const double copy = time_us(
            [&](int c) {
              CUDA_OK(cudaMemcpyAsync(x[(c + 1) % copies]->p, x[c]->p, in_bytes, cudaMemcpyDeviceToDevice));
            },
            copies);
        const double copy_gbps = 2.0 * in_bytes / copy / 1e3;
        for (HadamardQuantVariant v : variants) {
          const double ours = time_us(
              [&](int c) {
                CUDA_OK(hadamard_quant_rows(x[c]->as<__half>(), m, s.k, s.p, 4, 1.0f, q[c]->as<uint8_t>(),
                                            sc[c]->as<float>(), nullptr, nullptr, v));
              },
              copies);
          const double ours_gbps = (in_bytes + out_bytes) / ours / 1e3;
          // Auto and a TensorCore call that hands the shape on name what really ran.
          const bool handed_on = v == HadamardQuantVariant::TensorCore &&
                                 hadamard_quant_is_exact(v, s.k, s.p, 4, false, IntGemmActLayout::Standard, false);
          const bool auto_ran = v == HadamardQuantVariant::Auto || handed_on;
          const char* name = auto_ran ? hadamard_quant_variant_name(hadamard_quant_auto_variant(m, s.k, s.p, false))
                                      : hadamard_quant_variant_name(v);
          char label[32];
          std::snprintf(label, sizeof label, "%s%s", handed_on ? "tc>auto:" : auto_ran ? "auto:" : "", name);
          std::printf("%-12s %-6d %-6d %-6d %10.2f %9.0f %10.2f %9.0f %6.2f\n", label, m, s.k, s.p, ours, ours_gbps,
                      copy, copy_gbps, ours_gbps / copy_gbps);
          std::fflush(stdout);
          std::snprintf(buf, sizeof buf,
                        "%s    {\"variant\": \"%s\", \"m\": %d, \"k\": %d, \"p\": %d, \"in\": \"fp16\", \"bits\": 4, "
                        "\"us\": %.2f, \"GBps\": %.0f, \"copy_us\": %.2f, \"copy_GBps\": %.0f, \"bw_ratio\": %.3f}",
                        first ? "" : ",\n", label, m, s.k, s.p, ours, ours_gbps, copy, copy_gbps,
                        ours_gbps / copy_gbps);
          json += buf;
          first = false;
        }
      }
    json += "\n  ],\n";

    // The down projection's quantizer fused with SwiGLU and the 7 x 7 mix (28672 = 7 x
    // 4096, even/odd int8 codes, as the 70B layer runs it at M > 32) against the two
    // passes it replaces and a copy of the gate/up bytes; GB/s counts the bytes the
    // fused pass must move (gate/up in, codes and scales out).
    json += "  \"swiglu_hadamard_quant\": [\n";
    std::printf("\n%-22s %-6s %-6s %10s %10s %9s %10s %9s %6s\n", "swiglu+hq (k 7)", "M", "inter", "fused_us",
                "two_us", "GB/s", "copy_us", "copy_GB/s", "ratio");
    first = true;
    constexpr int kInter = 28672, kMix = 7;
    std::vector<float> mix(kMix * kMix);
    for (int i = 0; i < kMix; ++i)  // orthonormal DCT-II, as cuda_layer_bench
      for (int j = 0; j < kMix; ++j)
        mix[i * kMix + j] = static_cast<float>(std::sqrt((i == 0 ? 1.0 : 2.0) / kMix) *
                                               std::cos(3.14159265358979323846 * (2 * j + 1) * i / (2.0 * kMix)));
    for (int m : hq_ms) {
      if (m <= 32) continue;  // decode shapes take the packed int4 layout and the two passes
      const size_t in_bytes = size_t{4} * m * kInter, out_bytes = static_cast<size_t>(m) * kInter + 4 * size_t(m);
      const int copies = copies_for(in_bytes + out_bytes + in_bytes / 2);
      std::vector<std::unique_ptr<Buf>> gu, h, q, sc;
      for (int c = 0; c < copies; ++c) {
        gu.push_back(std::make_unique<Buf>(in_bytes));
        h.push_back(std::make_unique<Buf>(in_bytes / 2));
        q.push_back(std::make_unique<Buf>(static_cast<size_t>(m) * kInter));
        sc.push_back(std::make_unique<Buf>(4 * static_cast<size_t>(m)));
        rand_half(*gu.back(), 17 + c, 2.0f);
      }
      const auto eo = IntGemmActLayout::Int8EvenOdd;
      const double copy = time_us(
          [&](int c) { CUDA_OK(cudaMemcpyAsync(gu[(c + 1) % copies]->p, gu[c]->p, in_bytes, cudaMemcpyDeviceToDevice)); },
          copies);
      const double two = time_us(
          [&](int c) {
            CUDA_OK(swiglu_rows(gu[c]->as<__half>(), m, kInter, kMix, mix.data(), h[c]->as<__half>(), nullptr));
            CUDA_OK(hadamard_quant_rows(h[c]->as<__half>(), m, kInter, kInter / kMix, 4, 1.0f, q[c]->as<uint8_t>(),
                                        sc[c]->as<float>(), nullptr, nullptr, HadamardQuantVariant::Auto, eo));
          },
          copies);
      const double fused = time_us(
          [&](int c) {
            CUDA_OK(swiglu_hadamard_quant_rows(gu[c]->as<__half>(), m, kInter, kMix, mix.data(), 4, 1.0f, eo,
                                               q[c]->as<uint8_t>(), sc[c]->as<float>(), nullptr, nullptr));
          },
          copies);
      const double gbps = (in_bytes + out_bytes) / fused / 1e3, copy_gbps = 2.0 * in_bytes / copy / 1e3;
      std::printf("%-22s %-6d %-6d %10.2f %10.2f %9.0f %10.2f %9.0f %6.2f\n", "fused", m, kInter, fused, two, gbps,
                  copy, copy_gbps, gbps / copy_gbps);
      std::fflush(stdout);
      std::snprintf(buf, sizeof buf,
                    "%s    {\"m\": %d, \"inter\": %d, \"k\": %d, \"fused_us\": %.2f, \"two_pass_us\": %.2f, "
                    "\"GBps\": %.0f, \"copy_us\": %.2f, \"copy_GBps\": %.0f, \"bw_ratio\": %.3f}",
                    first ? "" : ",\n", m, kInter, kMix, fused, two, gbps, copy, copy_gbps, gbps / copy_gbps);
      json += buf;
      first = false;
    }
    json += "\n  ],\n";
  }

  json += "  \"gemm\": [\n";
  if (gemm) {
    cublasHandle_t blas;
    cublasLtHandle_t lt;
    CUBLAS_OK(cublasCreate(&blas));
    CUBLAS_OK(cublasLtCreate(&lt));
    const size_t ws_bytes = size_t{64} << 20;
    Buf ws(ws_bytes);
    CUBLAS_OK(cublasSetWorkspace(blas, ws.p, ws_bytes));
    std::printf("\n%-12s %-5s %9s %9s %9s %9s %9s | %7s %7s %7s %7s  %s\n", "KxN", "M", "fp16_us", "int8_us",
                "w4a4_us", "w4a8_us", "w4a4TOPS", "x_fp16", "x_int8", "8/16", "a8/16", "path");
    bool first = true;
    for (const Shape& s : shapes) {
      for (int m : ms) {
        const int k = s.k, n = s.n;
        const double ops = 2.0 * m * n * k;
        // FP16 operands for cuBLAS; int8 for cuBLASLt; int4 packed and int8 for ours.
        const size_t x16 = size_t{2} * m * k, w16 = size_t{2} * n * k, y16 = size_t{2} * m * n;
        const size_t x8 = static_cast<size_t>(m) * k, w8 = static_cast<size_t>(n) * k, x4 = x8 / 2, w4 = w8 / 2;
        Buf scale_a(4 * static_cast<size_t>(m)), scale_b(4 * static_cast<size_t>(n)), y(std::max(y16, size_t{4} * m * n));
        const_float(scale_a, 0.01f);
        const_float(scale_b, 0.01f);

        // The headline contenders (cuBLAS FP16 with FP32 accumulation and FP16 out, cuBLASLt
        // INT8 with int32 out, ours W4A4 and W4A8 on the Auto path) keep their rotated operand
        // copies alive together and are timed in `rounds` rounds of changing order, and each
        // reports its median round: whichever runs right after a heavy contender meets the
        // card's clocks lowered by its power draw (measured: W4A4 1233 us after cuBLASLt
        // INT8, 1039 us after our other paths, 8192 x 28672, M = 2048), so a fixed order
        // favours some.
        struct Contender {
          std::vector<std::unique_ptr<Buf>> bufs;
          std::function<void(int)> run;
          int copies = 1;
          std::vector<double> us;
        };
        auto operands = [&](Contender& c, size_t xa, size_t wb, auto&& fill) {
          c.copies = copies_for(xa + wb);
          for (int i = 0; i < c.copies; ++i) {
            c.bufs.push_back(std::make_unique<Buf>(xa));
            c.bufs.push_back(std::make_unique<Buf>(wb));
            fill(*c.bufs[2 * i], *c.bufs[2 * i + 1], i);
          }
        };
        Contender fp16, int8, w4a4, w4a8;
        operands(fp16, x16, w16, [](Buf& x, Buf& w, int i) {
          rand_half(x, 11 + i, 1.0f);
          rand_half(w, 101 + i, 0.05f);
        });
        fp16.run = [&, n, m, k](int c) {
          const float alpha = 1.0f, beta = 0.0f;
          CUBLAS_OK(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, fp16.bufs[2 * c + 1]->p, CUDA_R_16F,
                                 k, fp16.bufs[2 * c]->p, CUDA_R_16F, k, &beta, y.p, CUDA_R_16F, n, CUBLAS_COMPUTE_32F,
                                 CUBLAS_GEMM_DEFAULT));
        };
        LtInt8 lt_op(lt, m, n, k, ws.p, ws_bytes);
        if (lt_op.ok) {
          operands(int8, x8, w8, [](Buf& x, Buf& w, int i) {
            rand_bytes(x, 21 + i);
            rand_bytes(w, 201 + i);
          });
          int8.run = [&](int c) { lt_op.run(int8.bufs[2 * c + 1]->p, int8.bufs[2 * c]->p, y.p); };
        }
        // Ours on `path`: int4 or int8 operands as the kind (and the path's activation
        // layout: one byte per code for WgmmaRs) stores them.
        // weights_constant: the weights are uploaded once, as a model's are (the decode path
        // then overlaps the previous kernel's end; --no-pdl turns that off).
        auto ours_contender = [&](Contender& ct, IntGemmKind kind, IntGemmPath path, int rs_tile = 0,
                                  int force_pdl = -1) {
          const bool weights_constant = force_pdl < 0 ? pdl : force_pdl != 0;
          // Auto: the layout a caller quantizing for this shape writes (as the backend does).
          const IntGemmActLayout layout =
              path == IntGemmPath::Auto ? int_gemm_preferred_layout(kind, m, n, k) : int_gemm_path_layout(path);
          operands(ct, kind == IntGemmKind::W4A4 && layout == IntGemmActLayout::Standard ? x4 : x8,
                   kind == IntGemmKind::W8A8 ? w8 : w4,
                   [](Buf& x, Buf& w, int i) {
                     rand_bytes(x, 31 + i);
                     rand_bytes(w, 301 + i);
                   });
          ct.run = [&, kind, path, layout, m, n, k, rs_tile, weights_constant](int c) {
            IntGemmArgs a;
            a.kind = kind;
            a.act_layout = layout;
            a.rs_token_tile = rs_tile;
            a.weights_constant = weights_constant;
            a.m = m, a.n = n, a.k = k, a.sa = scale_a.as<float>(), a.sb = scale_b.as<float>(), a.y = y.as<__half>();
            a.qa = ct.bufs[2 * c]->p;
            a.qb = ct.bufs[2 * c + 1]->p;
            CUDA_OK(int_gemm(a, nullptr, path));
          };
        };
        ours_contender(w4a4, IntGemmKind::W4A4, IntGemmPath::Auto);
        if (m <= w4a8_max_m) ours_contender(w4a8, IntGemmKind::W4A8, IntGemmPath::Auto);
        Contender* order[] = {&fp16, &int8, &w4a4, &w4a8};
        // Round r runs the contenders forward from r / 2 when r is even, backward from it
        // when odd: over four rounds each follows at least two different contenders
        // (a plain rotation kept W4A4 right after INT8 in most rounds).
        for (int r = 0; r < rounds; ++r)
          for (int i = 0; i < 4; ++i) {
            Contender& c = *order[r % 2 == 0 ? (r / 2 + i) % 4 : (r / 2 + 4 - i) % 4];
            if (c.run) c.us.push_back(time_us(c.run, c.copies));
          }
        auto median_us = [](Contender& c) { return c.us.empty() ? -1.0 : median(c.us); };
        const double t_fp16 = median_us(fp16), t_int8 = median_us(int8), t_w4a4 = median_us(w4a4),
                     t_w4a8 = median_us(w4a8);
        // One path at a time (the --paths detail).
        auto ours = [&](IntGemmKind kind, IntGemmPath path, int rs_tile = 0, int force_pdl = -1) {
          Contender c;
          ours_contender(c, kind, path, rs_tile, force_pdl);
          return time_us(c.run, c.copies);
        };
        const IntGemmPath auto_path =
            int_gemm_auto_path(IntGemmKind::W4A4, m, n, k, int_gemm_preferred_layout(IntGemmKind::W4A4, m, n, k));
        std::string paths_json;
        if (all_paths) {
          for (IntGemmPath p : kIntGemmPaths) {
            if (p == IntGemmPath::Auto || !int_gemm_path_supports(p, IntGemmKind::W4A4, m)) continue;
            if (p != IntGemmPath::Skinny && m <= 16) continue;
            const double t = ours(IntGemmKind::W4A4, p);
            std::snprintf(buf, sizeof buf, "%s\"%s\": %.2f", paths_json.empty() ? "" : ", ", int_gemm_path_name(p), t);
            paths_json += buf;
            std::printf("    path %-12s %9.2f us  %7.1f TOPS\n", int_gemm_path_name(p), t, ops / t / 1e6);
          }
          if (m >= 256) {  // W4A8 on the warp-specialized kernel
            const double t = ours(IntGemmKind::W4A8, IntGemmPath::WgmmaWs);
            std::snprintf(buf, sizeof buf, ", \"w4a8_wgmma_ws\": %.2f", t);
            paths_json += buf;
            std::printf("    W4A8 wgmma_ws    %9.2f us  %7.1f TOPS\n", t, ops / t / 1e6);
            const double t_rs = ours(IntGemmKind::W4A8, IntGemmPath::WgmmaRs);
            std::snprintf(buf, sizeof buf, ", \"w4a8_wgmma_rs\": %.2f", t_rs);
            paths_json += buf;
            std::printf("    W4A8 wgmma_rs    %9.2f us  %7.1f TOPS\n", t_rs, ops / t_rs / 1e6);
          }
          if (m >= 1024) {  // int8 x int8 on the same mma.sync tile: the IMMA rate without widening
            const double t = ours(IntGemmKind::W8A8, IntGemmPath::Tile128x256);
            std::snprintf(buf, sizeof buf, ", \"w8a8_tile128x256\": %.2f", t);
            paths_json += buf;
            std::printf("    W8A8 tile128x256 %9.2f us  %7.1f TOPS\n", t, ops / t / 1e6);
          }
        }
        if (rs_tiles) {  // WgmmaRs at every token tile beside the skinny path, alternating, two rounds
          std::vector<std::pair<std::string, std::vector<double>>> rs;
          for (int r = 0; r < 2; ++r) {
            int idx = 0;
            auto add = [&](const std::string& name, double t) {
              if (r == 0) rs.push_back({name, {}});
              rs[idx++].second.push_back(t);
            };
            if (m <= 64) {
              add("skinny", ours(IntGemmKind::W4A4, IntGemmPath::Skinny, 0, 0));
              add("skinny_pdl", ours(IntGemmKind::W4A4, IntGemmPath::Skinny, 0, 1));
            }
            for (int tile : {16, 64, 128, 256}) {
              if ((tile == 16 && m > 64) || (tile == 64 && m > 1024)) continue;  // hundreds of tiles per SM
              add("rs" + std::to_string(tile), ours(IntGemmKind::W4A4, IntGemmPath::WgmmaRs, tile));
            }
          }
          for (auto& [name, ts] : rs) {
            const double t = median(ts);
            std::snprintf(buf, sizeof buf, "%s\"%s\": %.2f", paths_json.empty() ? "" : ", ", name.c_str(), t);
            paths_json += buf;
            std::printf("    %-8s %9.2f us  %7.1f TOPS  %5.2fx fp16\n", name.c_str(), t, ops / t / 1e6, t_fp16 / t);
          }
        }
        std::printf("%5dx%-6d %-5d %9.2f %9.2f %9.2f %9.2f %9.1f | %7.2f %7.2f %7.2f %7.2f  %s\n", k, n, m, t_fp16,
                    t_int8, t_w4a4, t_w4a8, ops / t_w4a4 / 1e6, t_fp16 / t_w4a4, t_int8 > 0 ? t_int8 / t_w4a4 : 0.0,
                    t_int8 > 0 ? t_fp16 / t_int8 : 0.0, t_w4a8 > 0 ? t_fp16 / t_w4a8 : 0.0, int_gemm_path_name(auto_path));
        std::fflush(stdout);
        auto tops = [&](double t) { return t > 0 ? ops / t / 1e6 : -1.0; };
        std::snprintf(buf, sizeof buf,
                      "%s    {\"k\": %d, \"n\": %d, \"m\": %d, \"us\": {\"cublas_fp16\": %.2f, \"cublaslt_int8\": "
                      "%.2f, \"w4a4\": %.2f, \"w4a8\": %.2f}, \"tops\": {\"cublas_fp16\": %.1f, \"cublaslt_int8\": "
                      "%.1f, \"w4a4\": %.1f, \"w4a8\": %.1f}, \"w4a4_vs_fp16\": %.3f, \"w4a4_vs_int8\": %.3f, "
                      "\"w4a8_vs_fp16\": %.3f, \"w4a4_path\": \"%s\"%s%s%s}",
                      first ? "" : ",\n", k, n, m, t_fp16, t_int8, t_w4a4, t_w4a8, tops(t_fp16), tops(t_int8),
                      tops(t_w4a4), tops(t_w4a8), t_fp16 / t_w4a4, t_int8 > 0 ? t_int8 / t_w4a4 : -1.0,
                      t_w4a8 > 0 ? t_fp16 / t_w4a8 : -1.0, int_gemm_path_name(auto_path),
                      all_paths || rs_tiles ? ", \"w4a4_paths_us\": {" : "", paths_json.c_str(),
                      all_paths || rs_tiles ? "}" : "");
        json += buf;
        first = false;
      }
    }
    cublasLtDestroy(lt);
    cublasDestroy(blas);
  }
  json += "\n  ]\n}\n";

  if (!write_text_atomic(out_path, json)) {
    std::fprintf(stderr, "cannot write %s\n", out_path.c_str());
    return 1;
  }
  std::printf("wrote %s\n", out_path.c_str());
  return 0;
}
