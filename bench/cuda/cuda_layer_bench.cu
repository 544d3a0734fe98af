// One LLaMA2-70B-shaped decoder layer on the GPU (random weights): FP16 (cuBLAS +
// flash_attention) against QuaRot W4A4 with an int4 KV cache (hadamard_quant +
// int_gemm + the same flash_attention), prefill and one decode step, plus the memory
// of weights + KV. Writes JSON (atomically: a temporary file renamed into place).
//   cuda_layer_bench OUT.json [--batches 1,4,16,64] [--seq 2048] [--decode-batch 16]
//                    [--ctx 2048] [--reps 10] [--pdl 0|1] [--norm-fold 1|0]
// --pdl 1: the W4A4 products with IntGemmArgs::weights_constant (a programmatic dependent
// launch where the kernel takes it; the CUDA backend leaves it off).
// --norm-fold 0: the RMSNorm fold as a second pass over x (rows_scale_inv_rms) instead
// of inside the quantizer's pass (hadamard_quant_rows with an RmsFold), for A/B runs.
// --swiglu-fuse 0: SwiGLU with the 7 x 7 mix (FP16 rows written) and the down product's
// Hadamard + quantize as two passes instead of swiglu_hadamard_quant_rows's one (which
// takes the even/odd layout of the prefill products; decode runs the two passes).
//
// FP16 layer:  RMSNorm -> QKV (cuBLAS) -> RoPE -> K/V into an FP16 cache -> attention
//              -> O (cuBLAS, + residual in place) -> RMSNorm -> gate/up (cuBLAS) ->
//              SwiGLU -> down (cuBLAS, + residual in place).
// W4A4 layer:  int4 quantize (p = 1: QuaRot rotates the residual stream offline) with
//              the RMSNorm folded into the scales -> W4A4 QKV -> RoPE + per-head
//              Hadamard of Q and K -> K/V int4 into the cache, the dequantized values
//              written back so attention sees what the cache holds -> attention (FP16)
//              -> Hadamard (p = 8192) + int4 quantize -> W4A4 O (+ residual) -> quantize
//              + RMSNorm fold -> W4A4 gate/up -> SwiGLU with the 7 x 7 factor of the
//              28672 = 7 x 4096 rotation -> Hadamard (p = 4096) + int4 quantize -> W4A4
//              down (+ residual). Each RMSNorm fold rides in its quantizer's pass, and
//              in prefill SwiGLU, the mix and the down quantizer are one pass.
// Decode: one new token per sequence; attention over the cache by a minimal split-K
// kernel (decode_attention.cuh) for both variants (FP16 cache / int4 cache).
// Times: CUDA events around one whole layer (the residual restored before each run,
// outside the timed span), warm-up runs, median of --reps; a separate set of runs
// with events between the stages gives the per-stage medians. The decode step is also
// timed as a CUDA graph (both variants) when capture works.
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
#include <string>
#include <utility>
#include <vector>

#include "cuda_bench_util.cuh"
#include "decode_attention.cuh"
#include "kernels/cuda/flash_attention.cuh"
#include "kernels/cuda/hadamard_quant.cuh"
#include "kernels/cuda/int_gemm.cuh"
#include "kernels/cuda/kv_cache.cuh"
#include "kernels/cuda/rmsnorm.cuh"
#include "kernels/cuda/rope.cuh"
#include "kernels/cuda/swiglu.cuh"
#include "kernels/cuda/swiglu_hadamard_quant.cuh"

namespace {

using namespace quarot::cuda;
using namespace quarot::cuda::bench;

// LLaMA2-70B's shapes.
constexpr int kHidden = 8192, kHeads = 64, kKvHeads = 8, kHeadDim = 128, kInter = 28672;
constexpr int kQkv = kHidden + 2 * kKvHeads * kHeadDim;  // 10240
constexpr int kLayers = 80, kVocab = 32000;
constexpr float kEps = 1e-5f, kTheta = 10000.0f, kKvClip = 0.95f, kActClip = 1.0f;
constexpr int kMixK = 7, kMixBlock = kInter / kMixK;  // 28672 = 7 x 4096

// (scale, zero) pairs of a plausible int4 KV cache: scale ~ 0.02..0.05, zero 6..9.
__global__ void fill_sz(__half2* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) {
    const uint32_t h = (static_cast<uint32_t>(i) * 2654435761u ^ seed) >> 8;
    p[i] = __floats2half2_rn(0.02f + 0.03f * (h & 0xFF) / 255.0f, 6.0f + ((h >> 8) & 3));
  }
}

size_t free_bytes() {
  size_t f = 0, t = 0;
  CUDA_OK(cudaDeviceSynchronize());
  CUDA_OK(cudaMemGetInfo(&f, &t));
  return f;
}

// y[m, n] = x[m, k] w[n, k]^T (+ beta y), row-major, FP16 in/out, FP32 accumulation.
void gemm_f16(cublasHandle_t h, const __half* x, const __half* w, __half* y, int m, int n, int k, float beta) {
  const float alpha = 1.0f;
  CUBLAS_OK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, w, CUDA_R_16F, k, x, CUDA_R_16F, k, &beta, y,
                         CUDA_R_16F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

struct LinearQ {  // int4 weights [n, k] + per-output-channel scales
  Buf q, s;
  int n = 0, k = 0;
};
LinearQ make_linear_q(int n, int k, uint32_t seed) {
  LinearQ l;
  l.n = n, l.k = k;
  l.q = Buf(size_t{1} * n * k / 2);
  l.s = Buf(size_t{4} * n);
  rand_bytes(l.q, seed);
  // |acc| ~ 21 sqrt(k) for uniform codes; with sa ~ 1 / 7 this keeps outputs O(1).
  const_float(l.s, 7.0f / (21.0f * std::sqrt(static_cast<float>(k))));
  return l;
}

struct Fp16Weights {
  Buf qkv, o, gu, down, g1, g2;
};
struct QuaRotWeights {
  LinearQ qkv, o, gu, down;
};
struct KvCache {
  Buf k, v, ksz, vsz;
  KvCacheView view;
};
KvCache make_cache(int batch, int max_ctx, bool int4) {
  KvCache c;
  const size_t entries = size_t{1} * batch * kKvHeads * max_ctx;
  const size_t per = int4 ? kHeadDim / 2 : kHeadDim * 2;
  c.k = Buf(entries * per), c.v = Buf(entries * per);
  if (int4) c.ksz = Buf(entries * 4), c.vsz = Buf(entries * 4);
  c.view.batch = batch, c.view.heads = kKvHeads, c.view.head_dim = kHeadDim, c.view.max_ctx = max_ctx;
  c.view.int4 = int4;
  c.view.k = c.k.p, c.view.v = c.v.p;
  c.view.k_sz = c.ksz.as<__half2>(), c.view.v_sz = c.vsz.as<__half2>();
  return c;
}
void fill_cache(KvCache& c, uint32_t seed) {
  if (c.view.int4) {
    rand_bytes(c.k, seed), rand_bytes(c.v, seed + 1);
    fill_sz<<<1024, 256>>>(c.ksz.as<__half2>(), c.ksz.bytes / 4, seed + 2);
    fill_sz<<<1024, 256>>>(c.vsz.as<__half2>(), c.vsz.bytes / 4, seed + 3);
    CUDA_OK(cudaGetLastError());
  } else {
    rand_half(c.k, seed, 1.0f), rand_half(c.v, seed + 1, 1.0f);
  }
}

// Activations of one layer call for up to `tokens` rows.
struct Acts {
  Buf x, x0, xn, qkv, attn, gu, h, qa, sa, part_o, part_ml;
  explicit Acts(int64_t tokens, int decode_batch, int ctx) {
    x = Buf(tokens * kHidden * 2), x0 = Buf(tokens * kHidden * 2), xn = Buf(tokens * kHidden * 2);
    qkv = Buf(tokens * kQkv * 2), attn = Buf(tokens * kHidden * 2);
    gu = Buf(tokens * 2 * kInter * 2), h = Buf(tokens * kInter * 2);
    qa = Buf(tokens * kInter), sa = Buf(tokens * 4);  // one byte per code for the even/odd layout
    const size_t ws = quarot::bench::decode_attention_workspace_floats(decode_batch, kHeads, ctx);
    part_o = Buf(ws * 4), part_ml = Buf(ws * 4);
  }
};

// A stage recorder: with events, marks the end of each named stage.
struct Stages {
  bool on = false;
  std::vector<std::pair<const char*, cudaEvent_t>> marks;
  cudaEvent_t start{};
  size_t i = 0;
  void begin(cudaStream_t s) {
    i = 0;
    if (on) CUDA_OK(cudaEventRecord(start, s));
  }
  void mark(const char* name, cudaStream_t s) {
    if (!on) return;
    if (i == marks.size()) {
      cudaEvent_t e;
      CUDA_OK(cudaEventCreate(&e));
      marks.emplace_back(name, e);
    }
    CUDA_OK(cudaEventRecord(marks[i++].second, s));
  }
};

struct Ctx {
  cublasHandle_t blas{};
  cudaStream_t stream{};
  Fp16Weights* wf = nullptr;
  QuaRotWeights* wq = nullptr;
  Acts* a = nullptr;
  std::vector<float> mix7;  // host memory: swiglu_rows passes the 7 x 7 factor as a kernel argument
  IntGemmActLayout layout = IntGemmActLayout::Standard;  // of the activations quantize_rows wrote last
  bool pdl = false;                                      // --pdl: IntGemmArgs::weights_constant
  bool norm_fold = true;  // --norm-fold: the RMSNorm folded into the quantizer's pass (RmsFold)
  bool swiglu_fuse = true;  // --swiglu-fuse: SwiGLU + mix + down's quantizer in one pass where it applies
  // --hq-variant: the quantizers without an RMS fold (o_proj's input); TensorCore is opt-in
  // (not bit-exact), so the backend's default is Auto.
  HadamardQuantVariant hq = HadamardQuantVariant::Auto;
};

// Quantizes the input of `next` (the product run right after) in the activation
// layout int_gemm prefers for that product's shape, as the CUDA backend does.
// fold_rms: the RMSNorm folded into the scales, in the quantizer's pass (c.norm_fold)
// or as a second pass (rows_scale_inv_rms); st / quant_stage: a mark between the two
// passes, so the caller's next mark times the RMS pass alone (zero when fused).
void quantize_rows(Ctx& c, const __half* x, int64_t rows, int cols, int p, bool fold_rms, const LinearQ& next,
                   Stages* st = nullptr, const char* quant_stage = nullptr) {
  c.layout = int_gemm_preferred_layout(IntGemmKind::W4A4, rows, next.n, next.k);
  uint8_t* q = c.a->qa.as<uint8_t>();
  float* s = c.a->sa.as<float>();
  if (fold_rms && c.norm_fold) {
    CUDA_OK(hadamard_quant_rows(x, rows, cols, p, 4, kActClip, q, s, nullptr, c.stream, HadamardQuantVariant::Auto,
                                c.layout, RmsFold{kEps}));
  } else {
    CUDA_OK(hadamard_quant_rows(x, rows, cols, p, 4, kActClip, q, s, nullptr, c.stream, c.hq, c.layout));
  }
  if (st != nullptr) st->mark(quant_stage, c.stream);
  if (fold_rms && !c.norm_fold) CUDA_OK(rows_scale_inv_rms(x, rows, cols, kEps, s, c.stream));
}
void w4a4(Ctx& c, const LinearQ& l, int64_t m, __half* y, const __half* residual) {
  IntGemmArgs g;
  g.kind = IntGemmKind::W4A4;
  g.m = m, g.n = l.n, g.k = l.k;
  g.qa = c.a->qa.p, g.qb = l.q.p, g.sa = c.a->sa.as<float>(), g.sb = l.s.as<float>();
  g.act_layout = c.layout;
  g.residual = residual, g.y = y;
  g.weights_constant = c.pdl;
  CUDA_OK(int_gemm(g, c.stream));
}

// Attention of the layer: prefill (flash_attention on the packed QKV) or a decode step.
void attention(Ctx& c, int64_t rows, int seq, bool decode, const KvCache& cache, int ctx) {
  __half* qkv = c.a->qkv.as<__half>();
  if (!decode) {
    FlashAttentionArgs fa;
    fa.q = qkv, fa.k = qkv + kHidden, fa.v = qkv + kHidden + kKvHeads * kHeadDim;
    fa.o = c.a->attn.as<__half>();
    fa.q_stride = fa.k_stride = fa.v_stride = kQkv, fa.o_stride = kHidden;
    fa.batch = static_cast<int>(rows / seq), fa.seq = seq, fa.heads_q = kHeads, fa.heads_kv = kKvHeads;
    fa.head_dim = kHeadDim, fa.scale = 1.0f / std::sqrt(static_cast<float>(kHeadDim)), fa.causal = true;
    CUDA_OK(flash_attention(fa, c.stream));
  } else {
    CUDA_OK(quarot::bench::decode_attention(qkv, kQkv, cache.view, kHeads, ctx,
                                            1.0f / std::sqrt(static_cast<float>(kHeadDim)),
                                            c.a->part_o.as<float>(), c.a->part_ml.as<float>(),
                                            c.a->attn.as<__half>(), kHidden, c.stream));
  }
}

// One layer call on rows = batch * seq tokens; decode: seq = 1, the token at position pos0.
void layer_fp16(Ctx& c, int64_t rows, int seq, int pos0, bool decode, KvCache& cache, Stages& st) {
  Acts& a = *c.a;
  const int m = static_cast<int>(rows);
  __half* x = a.x.as<__half>();
  st.begin(c.stream);
  CUDA_OK(rmsnorm_rows(x, c.wf->g1.as<__half>(), rows, kHidden, kEps, a.xn.as<__half>(), c.stream));
  st.mark("norm1", c.stream);
  gemm_f16(c.blas, a.xn.as<__half>(), c.wf->qkv.as<__half>(), a.qkv.as<__half>(), m, kQkv, kHidden, 0.0f);
  st.mark("qkv", c.stream);
  CUDA_OK(rope_qk(a.qkv.as<__half>(), rows, kQkv, seq, pos0, kHeads, kKvHeads, kHeadDim, kTheta, false, c.stream));
  st.mark("rope", c.stream);
  CUDA_OK(kv_cache_store(a.qkv.as<__half>(), rows, kQkv, kHidden, kHidden + kKvHeads * kHeadDim, seq, pos0,
                         cache.view, kKvClip, false, c.stream));
  st.mark("kv_store", c.stream);
  attention(c, rows, seq, decode, cache, pos0 + 1);
  st.mark("attention", c.stream);
  gemm_f16(c.blas, a.attn.as<__half>(), c.wf->o.as<__half>(), x, m, kHidden, kHidden, 1.0f);
  st.mark("o_proj", c.stream);
  CUDA_OK(rmsnorm_rows(x, c.wf->g2.as<__half>(), rows, kHidden, kEps, a.xn.as<__half>(), c.stream));
  st.mark("norm2", c.stream);
  gemm_f16(c.blas, a.xn.as<__half>(), c.wf->gu.as<__half>(), a.gu.as<__half>(), m, 2 * kInter, kHidden, 0.0f);
  st.mark("gate_up", c.stream);
  CUDA_OK(swiglu_rows(a.gu.as<__half>(), rows, kInter, 1, nullptr, a.h.as<__half>(), c.stream));
  st.mark("swiglu", c.stream);
  gemm_f16(c.blas, a.h.as<__half>(), c.wf->down.as<__half>(), x, m, kHidden, kInter, 1.0f);
  st.mark("down", c.stream);
}

void layer_w4a4(Ctx& c, int64_t rows, int seq, int pos0, bool decode, KvCache& cache, Stages& st) {
  Acts& a = *c.a;
  __half* x = a.x.as<__half>();
  st.begin(c.stream);
  quantize_rows(c, x, rows, kHidden, 1, true, c.wq->qkv, &st, "norm1_quant");
  st.mark("norm1_rms", c.stream);
  w4a4(c, c.wq->qkv, rows, a.qkv.as<__half>(), nullptr);
  st.mark("qkv", c.stream);
  CUDA_OK(rope_qk(a.qkv.as<__half>(), rows, kQkv, seq, pos0, kHeads, kKvHeads, kHeadDim, kTheta, true, c.stream));
  st.mark("rope_hadamard", c.stream);
  CUDA_OK(kv_cache_store(a.qkv.as<__half>(), rows, kQkv, kHidden, kHidden + kKvHeads * kHeadDim, seq, pos0,
                         cache.view, kKvClip, !decode, c.stream));
  st.mark("kv_store", c.stream);
  attention(c, rows, seq, decode, cache, pos0 + 1);
  st.mark("attention", c.stream);
  quantize_rows(c, a.attn.as<__half>(), rows, kHidden, kHidden, false, c.wq->o);
  st.mark("o_hadamard_quant", c.stream);
  w4a4(c, c.wq->o, rows, x, x);
  st.mark("o_proj", c.stream);
  quantize_rows(c, x, rows, kHidden, 1, true, c.wq->gu, &st, "norm2_quant");
  st.mark("norm2_rms", c.stream);
  w4a4(c, c.wq->gu, rows, a.gu.as<__half>(), nullptr);
  st.mark("gate_up", c.stream);
  const IntGemmActLayout down_layout =
      int_gemm_preferred_layout(IntGemmKind::W4A4, rows, c.wq->down.n, c.wq->down.k);
  if (c.swiglu_fuse && swiglu_hadamard_quant_supported(kInter, kMixK, 4, down_layout)) {
    c.layout = down_layout;
    CUDA_OK(swiglu_hadamard_quant_rows(a.gu.as<__half>(), rows, kInter, kMixK, c.mix7.data(), 4, kActClip, down_layout,
                                       a.qa.as<uint8_t>(), a.sa.as<float>(), nullptr, c.stream));
    st.mark("swiglu_mix7_hadamard_quant", c.stream);
  } else {
    CUDA_OK(swiglu_rows(a.gu.as<__half>(), rows, kInter, kMixK, c.mix7.data(), a.h.as<__half>(), c.stream));
    st.mark("swiglu_mix7", c.stream);
    quantize_rows(c, a.h.as<__half>(), rows, kInter, kMixBlock, false, c.wq->down);
    st.mark("down_hadamard_quant", c.stream);
  }
  w4a4(c, c.wq->down, rows, x, x);
  st.mark("down", c.stream);
}

using LayerFn = std::function<void(Stages&)>;

// Whole-layer median (ms) and per-stage medians (ms). restore() runs before each call, untimed.
struct Timing {
  double ms = 0, min_ms = 0;
  std::vector<std::pair<std::string, double>> stages;
};
Timing time_layer(Ctx& c, const LayerFn& fn, const std::function<void()>& restore, int reps, int warmup,
                  cudaGraphExec_t graph = nullptr) {
  Timing t;
  EventSpan span;
  Stages off;
  std::vector<double> all;
  for (int r = 0; r < warmup + reps; ++r) {
    restore();
    span.start(c.stream);
    if (graph != nullptr) {
      CUDA_OK(cudaGraphLaunch(graph, c.stream));
    } else {
      fn(off);
    }
    const float ms = span.stop_ms(c.stream);
    if (r >= warmup) all.push_back(ms);
  }
  t.ms = median(all);
  t.min_ms = *std::min_element(all.begin(), all.end());
  if (graph == nullptr) {
    Stages st;
    st.on = true;
    CUDA_OK(cudaEventCreate(&st.start));
    std::vector<std::vector<double>> per;
    const int sreps = std::max(3, reps / 2);
    for (int r = 0; r < sreps; ++r) {
      restore();
      fn(st);
      CUDA_OK(cudaStreamSynchronize(c.stream));
      per.resize(st.marks.size());
      cudaEvent_t prev = st.start;
      for (size_t i = 0; i < st.marks.size(); ++i) {
        float ms = 0;
        CUDA_OK(cudaEventElapsedTime(&ms, prev, st.marks[i].second));
        per[i].push_back(ms);
        prev = st.marks[i].second;
      }
    }
    for (size_t i = 0; i < st.marks.size(); ++i) t.stages.emplace_back(st.marks[i].first, median(per[i]));
    for (auto& m : st.marks) cudaEventDestroy(m.second);
    cudaEventDestroy(st.start);
  }
  return t;
}

std::string stages_json(const Timing& t) {
  std::string s = "{";
  char buf[96];
  for (size_t i = 0; i < t.stages.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%s\"%s\": %.4f", i ? ", " : "", t.stages[i].first.c_str(), t.stages[i].second);
    s += buf;
  }
  return s + "}";
}

void print_stages(const char* name, const Timing& t) {
  std::printf("  %-5s %9.3f ms:", name, t.ms);
  for (const auto& s : t.stages) std::printf(" %s %.3f", s.first.c_str(), s.second);
  std::printf("\n");
}

// Decode attention against a double host reference on sequences 0 and last, every head.
double check_decode_attention(Ctx& c, const KvCache& cache, int batch, int ctx) {
  Acts& a = *c.a;
  std::vector<__half> q(size_t{1} * batch * kQkv), out(size_t{1} * batch * kHidden);
  CUDA_OK(cudaMemcpy(q.data(), a.qkv.p, q.size() * 2, cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(out.data(), a.attn.p, out.size() * 2, cudaMemcpyDeviceToHost));
  const bool int4 = cache.view.int4;
  const size_t per = int4 ? kHeadDim / 2 : kHeadDim * 2;
  double worst = 0.0;
  for (int b : {0, batch - 1})
    for (int hk = 0; hk < kKvHeads; ++hk) {
      const size_t e0 = (size_t{1} * b * kKvHeads + hk) * cache.view.max_ctx;
      std::vector<uint8_t> kb(per * ctx), vb(per * ctx);
      std::vector<__half2> ks(ctx), vs(ctx);
      CUDA_OK(cudaMemcpy(kb.data(), cache.k.as<uint8_t>() + e0 * per, kb.size(), cudaMemcpyDeviceToHost));
      CUDA_OK(cudaMemcpy(vb.data(), cache.v.as<uint8_t>() + e0 * per, vb.size(), cudaMemcpyDeviceToHost));
      if (int4) {
        CUDA_OK(cudaMemcpy(ks.data(), cache.ksz.as<__half2>() + e0, ctx * 4, cudaMemcpyDeviceToHost));
        CUDA_OK(cudaMemcpy(vs.data(), cache.vsz.as<__half2>() + e0, ctx * 4, cudaMemcpyDeviceToHost));
      }
      auto val = [&](const std::vector<uint8_t>& buf, const std::vector<__half2>& sz, int t, int d) -> double {
        if (!int4) {
          __half h;
          std::memcpy(&h, &buf[t * per + d * 2], 2);
          return __half2float(h);
        }
        const uint8_t byte = buf[t * per + d / 2];
        const int n = d % 2 == 0 ? byte & 0xF : byte >> 4;
        return (n - static_cast<double>(__half2float(sz[t].y))) * __half2float(sz[t].x);
      };
      for (int g = 0; g < kHeads / kKvHeads; ++g) {
        const int h = hk * (kHeads / kKvHeads) + g;
        std::vector<double> s(ctx);
        double mx = -1e300;
        for (int t = 0; t < ctx; ++t) {
          double dot = 0.0;
          for (int d = 0; d < kHeadDim; ++d) dot += __half2float(q[size_t{1} * b * kQkv + h * kHeadDim + d]) * val(kb, ks, t, d);
          s[t] = dot / std::sqrt(static_cast<double>(kHeadDim));
          mx = std::max(mx, s[t]);
        }
        double l = 0.0;
        for (auto& v : s) l += (v = std::exp(v - mx));
        for (int d = 0; d < kHeadDim; ++d) {
          double o = 0.0, w = 0.0;
          for (int t = 0; t < ctx; ++t) o += s[t] * val(vb, vs, t, d), w += s[t] * std::fabs(val(vb, vs, t, d));
          o /= l, w /= l;
          const double got = __half2float(out[size_t{1} * b * kHidden + h * kHeadDim + d]);
          // Error relative to the weighted magnitude of V (FP16 output rounding is 2^-11 of it).
          worst = std::max(worst, std::fabs(got - o) / (w + 1e-30));
        }
      }
    }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: %s OUT.json [--batches 1,4,16,64] [--seq 2048] [--decode-batch 16] [--ctx 2048] "
                 "[--reps 10] [--pdl 0|1] [--norm-fold 1|0] [--swiglu-fuse 1|0] [--hq-variant auto|tensor_core|...]\n",
                 argv[0]);
    return 2;
  }
  const char* out_path = argv[1];
  std::vector<int> batches = {1, 4, 16, 64};
  int seq = 2048, dbatch = 16, ctx = 2048, reps = 10, pdl = 0, norm_fold = 1, swiglu_fuse = 1;
  HadamardQuantVariant hq = HadamardQuantVariant::Auto;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--batches")) batches = parse_ints(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seq")) seq = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--decode-batch")) dbatch = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--ctx")) ctx = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--pdl")) pdl = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--norm-fold")) norm_fold = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--swiglu-fuse")) swiglu_fuse = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--hq-variant")) {
      const auto v = hadamard_quant_variant_from_name(argv[i + 1]);
      if (!v) {
        std::fprintf(stderr, "unknown --hq-variant %s\n", argv[i + 1]);
        return 2;
      }
      hq = *v;
    } else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (batches.empty() || seq < 1 || dbatch < 1 || ctx < 1 || reps < 1 || (pdl != 0 && pdl != 1) ||
      (norm_fold != 0 && norm_fold != 1) || (swiglu_fuse != 0 && swiglu_fuse != 1)) {
    std::fprintf(stderr, "bad arguments\n");
    return 2;
  }
  cudaDeviceProp prop{};
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  std::printf("GPU: %s (sm_%d%d, %d SMs, %.1f GiB)\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount,
              prop.totalGlobalMem / 1073741824.0);

  Ctx c;
  c.pdl = pdl == 1;
  c.norm_fold = norm_fold == 1;
  c.swiglu_fuse = swiglu_fuse == 1;
  c.hq = hq;
  CUDA_OK(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
  CUBLAS_OK(cublasCreate(&c.blas));
  CUBLAS_OK(cublasSetStream(c.blas, c.stream));
  Buf blas_ws(size_t{64} << 20);
  CUBLAS_OK(cublasSetWorkspace(c.blas, blas_ws.p, blas_ws.bytes));
  // 7 x 7 orthogonal factor: the orthonormal DCT-II matrix, dense and exactly
  // orthogonal in closed form. Any orthogonal matrix costs the same; QuaRot's own
  // choice for 28672 would be H_28 (x) H_1024.
  c.mix7.resize(kMixK * kMixK);
  const double pi = std::acos(-1.0);
  for (int i = 0; i < kMixK; ++i)
    for (int j = 0; j < kMixK; ++j)
      c.mix7[i * kMixK + j] = static_cast<float>(std::sqrt((i == 0 ? 1.0 : 2.0) / kMixK) *
                                                 std::cos(pi * (2 * j + 1) * i / (2.0 * kMixK)));

  // --- Memory: weights + KV cache of one layer at the decode shape, per variant. ---
  const size_t alloc0 = g_allocated, free0 = free_bytes();
  Fp16Weights wf;
  wf.qkv = Buf(size_t{2} * kQkv * kHidden), wf.o = Buf(size_t{2} * kHidden * kHidden);
  wf.gu = Buf(size_t{2} * 2 * kInter * kHidden), wf.down = Buf(size_t{2} * kHidden * kInter);
  wf.g1 = Buf(size_t{2} * kHidden), wf.g2 = Buf(size_t{2} * kHidden);
  KvCache cache_f = make_cache(dbatch, ctx, false);
  const size_t fp16_bytes = g_allocated - alloc0, fp16_measured = free0 - free_bytes();
  const size_t alloc1 = g_allocated, free1 = free_bytes();
  QuaRotWeights wq;
  wq.qkv = make_linear_q(kQkv, kHidden, 11), wq.o = make_linear_q(kHidden, kHidden, 12);
  wq.gu = make_linear_q(2 * kInter, kHidden, 13), wq.down = make_linear_q(kHidden, kInter, 14);
  KvCache cache_q = make_cache(dbatch, ctx, true);
  const size_t q_bytes = g_allocated - alloc1, q_measured = free1 - free_bytes();
  // Weight scales: random FP16 entries of std ~ 1 / sqrt(k) (uniform in +-sqrt(3 / k)).
  rand_half(wf.qkv, 1, std::sqrt(3.0f / kHidden)), rand_half(wf.o, 2, std::sqrt(3.0f / kHidden));
  rand_half(wf.gu, 3, std::sqrt(3.0f / kHidden)), rand_half(wf.down, 4, std::sqrt(3.0f / kInter));
  rand_half(wf.g1, 5, 1.0f), rand_half(wf.g2, 6, 1.0f);
  fill_cache(cache_f, 21), fill_cache(cache_q, 22);
  c.wf = &wf, c.wq = &wq;
  const double embed = 2.0 * kVocab * kHidden * 2;
  const double model_f = kLayers * static_cast<double>(fp16_bytes) + embed;
  const double model_q = kLayers * static_cast<double>(q_bytes) + embed;
  std::printf("memory, one layer (weights + KV, batch %d, context %d): FP16 %.1f MB (cudaMemGetInfo %.1f MB), "
              "W4A4KV4 %.1f MB (cudaMemGetInfo %.1f MB)\n",
              dbatch, ctx, fp16_bytes / 1e6, fp16_measured / 1e6, q_bytes / 1e6, q_measured / 1e6);
  std::printf("model (%d layers + embeddings and lm_head in FP16): FP16 %.1f GB, W4A4KV4 %.1f GB, ratio %.2fx\n",
              kLayers, model_f / 1e9, model_q / 1e9, model_f / model_q);

  const int max_batch = *std::max_element(batches.begin(), batches.end());
  const int64_t max_tokens = std::max<int64_t>(int64_t{max_batch} * seq, dbatch);
  Acts acts(max_tokens, dbatch, ctx);
  c.a = &acts;
  rand_half(acts.x0, 99, 1.0f);
  std::printf("activation buffers for %lld tokens: %.1f GB\n", static_cast<long long>(max_tokens),
              (g_allocated - alloc1 - q_bytes) / 1e9);
  CUDA_OK(cudaDeviceSynchronize());

  char buf[1024];
  std::string json = "{\n";
  std::snprintf(buf, sizeof buf,
                "  \"gpu\": \"%s\",\n  \"config\": {\"hidden\": %d, \"heads\": %d, \"kv_heads\": %d, \"head_dim\": %d, "
                "\"intermediate\": %d, \"seq\": %d, \"decode_batch\": %d, \"context\": %d, \"reps\": %d, \"weights_constant\": %s, \"norm_fold\": %s, \"swiglu_fuse\": %s, \"hq_variant\": \"%s\"},\n",
                prop.name, kHidden, kHeads, kKvHeads, kHeadDim, kInter, seq, dbatch, ctx, reps, c.pdl ? "true" : "false",
                c.norm_fold ? "true" : "false", c.swiglu_fuse ? "true" : "false", hadamard_quant_variant_name(c.hq));
  json += buf;
  std::snprintf(buf, sizeof buf,
                "  \"memory\": {\"fp16_layer_bytes\": %zu, \"fp16_layer_measured_bytes\": %zu, \"w4a4kv4_layer_bytes\": "
                "%zu, \"w4a4kv4_layer_measured_bytes\": %zu, \"layers\": %d, \"embed_lm_head_bytes\": %.0f, "
                "\"fp16_model_gb\": %.2f, \"w4a4kv4_model_gb\": %.2f, \"ratio\": %.3f},\n",
                fp16_bytes, fp16_measured, q_bytes, q_measured, kLayers, embed, model_f / 1e9, model_q / 1e9,
                model_f / model_q);
  json += buf;

  // Decode first: the largest prefill runs last.
  // --- Decode step: batch dbatch, the new token at position ctx - 1 (ctx entries after it). ---
  const int pos = ctx - 1;
  auto restore_d = [&] {
    CUDA_OK(cudaMemcpyAsync(acts.x.p, acts.x0.p, size_t{2} * dbatch * kHidden, cudaMemcpyDeviceToDevice, c.stream));
  };
  auto dec_f = [&](Stages& st) { layer_fp16(c, dbatch, 1, pos, true, cache_f, st); };
  auto dec_q = [&](Stages& st) { layer_w4a4(c, dbatch, 1, pos, true, cache_q, st); };
  // Correctness of the decode attention on both caches (after one step each).
  restore_d();
  {
    Stages off;
    dec_f(off);
  }
  CUDA_OK(cudaStreamSynchronize(c.stream));
  const double chk_f = check_decode_attention(c, cache_f, dbatch, ctx);
  restore_d();
  {
    Stages off;
    dec_q(off);
  }
  CUDA_OK(cudaStreamSynchronize(c.stream));
  const double chk_q = check_decode_attention(c, cache_q, dbatch, ctx);
  std::printf("decode attention vs host reference: max |err| / weighted |v|: FP16 cache %.2e, int4 cache %.2e\n",
              chk_f, chk_q);
  const int dreps = std::max(reps, 50);
  const Timing df = time_layer(c, dec_f, restore_d, dreps, 5);
  const Timing dq = time_layer(c, dec_q, restore_d, dreps, 5);
  // The same steps as CUDA graphs (launch overhead off both sides).
  auto capture = [&](const LayerFn& fn) -> cudaGraphExec_t {
    cudaGraph_t g;
    Stages off;
    if (cudaStreamBeginCapture(c.stream, cudaStreamCaptureModeRelaxed) != cudaSuccess) return nullptr;
    fn(off);
    if (cudaStreamEndCapture(c.stream, &g) != cudaSuccess) return nullptr;
    cudaGraphExec_t ge;
    const bool ok = cudaGraphInstantiate(&ge, g, 0) == cudaSuccess;
    cudaGraphDestroy(g);
    (void)cudaGetLastError();
    return ok ? ge : nullptr;
  };
  cudaGraphExec_t gf = capture(dec_f), gq = capture(dec_q);
  Timing gdf, gdq;
  if (gf != nullptr && gq != nullptr) {
    gdf = time_layer(c, dec_f, restore_d, dreps, 5, gf);
    gdq = time_layer(c, dec_q, restore_d, dreps, 5, gq);
  }
  std::printf("decode step batch %d context %d: FP16 %.4f ms, W4A4 %.4f ms, speedup %.3fx", dbatch, ctx, df.ms, dq.ms,
              df.ms / dq.ms);
  if (gf && gq) std::printf("; as CUDA graphs: FP16 %.4f ms, W4A4 %.4f ms, speedup %.3fx", gdf.ms, gdq.ms, gdf.ms / gdq.ms);
  std::printf("\n");
  print_stages("FP16", df);
  print_stages("W4A4", dq);
  std::snprintf(buf, sizeof buf,
                "  \"decode\": {\"batch\": %d, \"context\": %d, \"fp16_ms\": %.5f, \"w4a4_ms\": %.5f, \"speedup\": %.4f, "
                "\"graph\": %s, \"fp16_graph_ms\": %.5f, \"w4a4_graph_ms\": %.5f, \"graph_speedup\": %.4f, "
                "\"attention_check_fp16\": %.3e, \"attention_check_int4\": %.3e,\n",
                dbatch, ctx, df.ms, dq.ms, df.ms / dq.ms, (gf && gq) ? "true" : "false", gdf.ms, gdq.ms,
                (gf && gq) ? gdf.ms / gdq.ms : 0.0, chk_f, chk_q);
  json += buf;
  json += "     \"fp16_stages_ms\": " + stages_json(df) + ",\n     \"w4a4_stages_ms\": " + stages_json(dq) + "},\n";

  // --- Prefill. ---
  json += "  \"prefill\": [\n";
  for (size_t bi = 0; bi < batches.size(); ++bi) {
    const int b = batches[bi];
    const int64_t rows = int64_t{b} * seq;
    KvCache pf = make_cache(b, seq, false), pq = make_cache(b, seq, true);
    auto restore = [&] {
      CUDA_OK(cudaMemcpyAsync(acts.x.p, acts.x0.p, rows * kHidden * 2, cudaMemcpyDeviceToDevice, c.stream));
    };
    const int warm = 2;
    const Timing tf = time_layer(c, [&](Stages& st) { layer_fp16(c, rows, seq, 0, false, pf, st); }, restore, reps, warm);
    const Timing tq = time_layer(c, [&](Stages& st) { layer_w4a4(c, rows, seq, 0, false, pq, st); }, restore, reps, warm);
    std::printf("prefill batch %d (%lld tokens): FP16 %.3f ms, W4A4 %.3f ms, speedup %.3fx\n", b,
                static_cast<long long>(rows), tf.ms, tq.ms, tf.ms / tq.ms);
    print_stages("FP16", tf);
    print_stages("W4A4", tq);
    std::snprintf(buf, sizeof buf,
                  "    {\"batch\": %d, \"tokens\": %lld, \"fp16_ms\": %.4f, \"fp16_min_ms\": %.4f, \"w4a4_ms\": %.4f, "
                  "\"w4a4_min_ms\": %.4f, \"speedup\": %.4f,\n",
                  b, static_cast<long long>(rows), tf.ms, tf.min_ms, tq.ms, tq.min_ms, tf.ms / tq.ms);
    json += buf;
    json += "     \"fp16_stages_ms\": " + stages_json(tf) + ",\n     \"w4a4_stages_ms\": " + stages_json(tq) + "}";
    json += bi + 1 < batches.size() ? ",\n" : "\n";
    std::fflush(stdout);
  }
  json += "  ]\n}\n";

  if (!write_text_atomic(out_path, json)) {
    std::fprintf(stderr, "cannot write %s\n", out_path);
    return 1;
  }
  std::printf("wrote %s\n", out_path);
  return 0;
}
