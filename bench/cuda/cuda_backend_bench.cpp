// The CUDA backend on a model of SmolLM2-135M's shape with random weights (no model
// file needed on the GPU machine): prefill and decode timings for the FP model
// (FP16 path) and a QuaRot W4A4 KV4 model (integer path: rotations, int4 GEMMs,
// 4-bit KV cache), plus model-scale agreement checks of the logits against the CPU
// backends on the same prompt (FP; W4A4 with an FP and a 4-bit KV cache; one decoder
// layer alone).
//   cuda_backend_bench OUT.json [--prefill 512] [--decode 64] [--check 64]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/rng.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cuda/cuda_backend.h"
#include "model/llama_model.h"
#include "model/rope.h"
#include "transform/random_orthogonal.h"

namespace {

using namespace quarot;
using Clock = std::chrono::steady_clock;

LlamaConfig smollm2_shape() {
  LlamaConfig c;
  c.name = "smollm2-135m-shaped (random weights)";
  c.vocab_size = 49152;
  c.hidden = 576;
  c.intermediate = 1536;
  c.n_layers = 30;
  c.n_heads = 9;
  c.n_kv_heads = 3;
  c.head_dim = 64;
  c.max_context = 8192;
  c.rope_theta = 100000.0f;
  c.tied_embeddings = true;
  return c;
}

// The rotations' dense factors (transform/random_orthogonal.h), as OnlineRotation holds them.
std::vector<float> random_orthogonal_f32(int64_t k, uint64_t seed) {
  const std::vector<double> m = random_orthogonal(k, seed);
  return {m.begin(), m.end()};
}

WeightEncoding rtn4(const Tensor& t) {
  const int64_t rows = t.shape[0], cols = t.shape[1];
  std::vector<uint8_t> codes(rows * cols);
  std::vector<float> scales(rows);
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0;
    for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(t.data[r * cols + c]));
    scales[r] = amax > 0 ? amax / 7.0f : 1.0f;
    for (int64_t c = 0; c < cols; ++c)
      codes[r * cols + c] = static_cast<uint8_t>(
          std::clamp(static_cast<int>(std::nearbyint(t.data[r * cols + c] / scales[r])), -8, 7) + 8);
  }
  return make_int_grid_weight(4, true, 0, rows, cols, codes, scales, {});
}

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

nlohmann::json time_model(const LlamaModel& m, const std::vector<int32_t>& prompt, int decode) {
  std::vector<float> logits;
  {  // warm-up: allocations, cuBLAS heuristics, first launches
    KvCache warm = m.make_cache(64);
    m.forward(prompt.data(), std::min<int64_t>(16, prompt.size()), warm, logits, false);
  }
  KvCache cache = m.make_cache(static_cast<int64_t>(prompt.size()) + decode + 1);
  const auto t0 = Clock::now();
  m.forward(prompt.data(), static_cast<int64_t>(prompt.size()), cache, logits, false);
  const double prefill_ms = ms_since(t0);
  int32_t tok = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  const auto t1 = Clock::now();
  for (int i = 0; i < decode; ++i) {
    m.forward(&tok, 1, cache, logits, false);
    tok = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  const double decode_ms = ms_since(t1);
  return {{"prefill_tokens", prompt.size()},
          {"prefill_ms", prefill_ms},
          {"prefill_tokens_per_s", prompt.size() / (prefill_ms / 1000.0)},
          {"decode_tokens", decode},
          {"decode_ms_per_token", decode_ms / decode}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: cuda_backend_bench OUT.json [--prefill N] [--decode N] [--check N]\n");
    return 2;
  }
  int prefill = 512, decode = 64, check = 64;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const int v = std::atoi(argv[i + 1]);
    if (a == "--prefill") prefill = v;
    else if (a == "--decode") decode = v;
    else if (a == "--check") check = v;
  }
  try {
    const LlamaConfig c = smollm2_shape();
    const ModelWeights w = make_synthetic_model(c, 2024);
    const std::shared_ptr<const Backend> gpu = make_cuda_backend();
    Rng rng(7);
    std::vector<int32_t> prompt(prefill);
    for (auto& t : prompt) t = static_cast<int32_t>(rng.below(c.vocab_size));

    RuntimeRecipe q;
    q.act.bits = 4;
    q.qk_rotation.p = c.head_dim;
    q.o_proj_input = OnlineRotation{c.n_heads, 1, c.head_dim, random_orthogonal_f32(c.n_heads, 3)};
    q.down_proj_input = OnlineRotation{12, 128, 1, random_orthogonal_f32(12, 4)};
    q.k_cache.bits = q.v_cache.bits = 4;
    WeightEncodings enc;
    for (int64_t li = 0; li < c.n_layers; ++li)
      for (const LayerLinear& l : kLayerLinears) enc[layer_linear_name(li, l)] = rtn4(w.layers[li].*l.weight);

    nlohmann::json out;
    out["backend"] = gpu->name();
    out["model"] = c.name;
    {
      const LlamaModel fp(w, RuntimeRecipe{}, gpu);
      out["fp16"] = time_model(fp, prompt, decode);
    }
    const LlamaModel w4(w, q, gpu, enc);
    out["w4a4_kv4"] = time_model(w4, prompt, decode);
    const CudaStepStats st = cuda_step_stats(*gpu);
    out["recorded_steps"] = {{"direct", st.direct},     {"warmups", st.warmups},   {"captures", st.captures},
                             {"replays", st.replays},   {"failures", st.failures}, {"last_failure", st.last_failure}};
    {
      // The same models with every op queued one by one (no CUDA graphs).
      const std::shared_ptr<const Backend> plain = make_cuda_backend(CudaBackendOptions{0, false, false});
      const LlamaModel fp(w, RuntimeRecipe{}, plain);
      out["fp16_no_graphs"] = time_model(fp, prompt, decode);
      const LlamaModel w4p(w, q, plain, enc);
      out["w4a4_kv4_no_graphs"] = time_model(w4p, prompt, decode);
    }

    if (check > 0) {
      // Agreement with the CPU backends on all logits of a prompt. A W4A4 model whose
      // residual stream is not rotated (random weights, outlier channels) amplifies a
      // single flipped activation code layer by layer, so the CPU integer backend
      // against the CPU FP32 reference (same codes up to float rounding of the GEMM
      // sums) is printed beside it as the scale of that chaos; layer 0 alone shows
      // the per-layer agreement.
      const std::vector<int32_t> p(prompt.begin(), prompt.begin() + std::min<int64_t>(check, prompt.size()));
      const int64_t n = static_cast<int64_t>(p.size());
      const auto cpu_int = make_cpu_backend(CpuBackendOptions{false, ""});
      const auto cpu_fp = make_cpu_backend(CpuBackendOptions{true, ""});
      auto logits = [&](const LlamaModel& m) {
        std::vector<float> lg;
        KvCache cache = m.make_cache(n);
        m.forward(p.data(), n, cache, lg, true);
        return lg;
      };
      auto compare = [&](const std::vector<float>& a, const std::vector<float>& b) {
        double max_diff = 0, max_abs = 0;
        int64_t agree = 0;
        const int64_t V = c.vocab_size;
        for (size_t i = 0; i < a.size(); ++i) {
          max_diff = std::max(max_diff, std::fabs(static_cast<double>(a[i]) - b[i]));
          max_abs = std::max(max_abs, std::fabs(static_cast<double>(b[i])));
        }
        for (int64_t t = 0; t < n; ++t)
          agree += std::max_element(a.begin() + t * V, a.begin() + (t + 1) * V) - a.begin() ==
                   std::max_element(b.begin() + t * V, b.begin() + (t + 1) * V) - b.begin();
        return nlohmann::json{{"positions", n}, {"max_abs_logit", max_abs}, {"max_abs_diff", max_diff},
                              {"argmax_agree", agree}};
      };
      nlohmann::json chk;
      {
        const std::vector<float> g = logits(LlamaModel(w, RuntimeRecipe{}, gpu));
        const std::vector<float> f = logits(LlamaModel(w, RuntimeRecipe{}, cpu_fp));
        chk["fp16_gpu_vs_fp32_cpu"] = compare(g, f);
      }
      RuntimeRecipe q_fpkv = q;
      q_fpkv.k_cache = q_fpkv.v_cache = KvQuantSpec{};
      for (const auto& [label, recipe] : {std::pair{"w4a4", q_fpkv}, std::pair{"w4a4_kv4", q}}) {
        const LlamaModel mg(w, recipe, gpu, enc), mi(w, recipe, cpu_int, enc), mf(w, recipe, cpu_fp, enc);
        const std::vector<float> g = logits(mg), i = logits(mi), f = logits(mf);
        chk[std::string(label) + "_gpu_vs_cpu_int"] = compare(g, i);
        chk[std::string(label) + "_cpu_int_vs_cpu_fp32"] = compare(i, f);
        // One decoder layer from the same input rows.
        std::vector<float> x0(n * c.hidden);
        mi.embed(p.data(), n, x0.data());
        std::vector<float> xg = x0, xi = x0;
        mg.run_layer(0, xg.data(), n);
        mi.run_layer(0, xi.data(), n);
        double d = 0, a = 0;
        int64_t differ = 0;
        for (size_t k = 0; k < xg.size(); ++k) {
          d = std::max(d, std::fabs(static_cast<double>(xg[k]) - xi[k]));
          a = std::max(a, std::fabs(static_cast<double>(xi[k])));
          differ += xg[k] != xi[k];
        }
        chk[std::string(label) + "_layer0_gpu_vs_cpu_int"] = {
            {"max_abs", a}, {"max_abs_diff", d}, {"values_differing", differ}, {"values", xg.size()}};
      }
      // Layer 0's attention with the 4-bit cache, step by step: the CPU integer
      // backend computes q, k, v; the GPU then (a) stores the CPU's k, v rows and
      // attends with the CPU's q, (b) applies its own RoPE + rotation to the CPU's
      // pre-RoPE q, k first. (a) isolates the cache and attention kernels; (b) adds
      // RoPE's last-ulp differences (CUDA's sinf/cosf vs glibc) and the cache codes
      // they flip.
      {
        const LayerWeights& L = w.layers[0];
        const Backend& ci = *cpu_int;
        const std::vector<float> inv = rope_inverse_frequencies(c);
        const LlamaModel mi(w, q, cpu_int, enc);
        std::vector<float> x0(n * c.hidden), h(n * c.hidden);
        mi.embed(p.data(), n, x0.data());
        ci.rmsnorm(x0.data(), L.attn_norm.data.data(), n, c.hidden, c.rms_eps, h.data());
        auto lin = [&](const char* field, int64_t rows, std::vector<float>& y) {
          const auto pw = ci.pack(enc.at(std::string("layers.0.") + field));
          LinearOp op;
          op.weight = pw.get();
          op.act = q.act;
          y.resize(n * rows);
          ci.linear(op, h.data(), n, y.data());
        };
        std::vector<float> qv, kv, vv;
        lin("wq", c.q_dim(), qv);
        lin("wk", c.kv_dim(), kv);
        lin("wv", c.kv_dim(), vv);
        const std::vector<float> q_pre = qv, k_pre = kv;
        ci.rope(qv.data(), n, c.n_heads, c.head_dim, 0, inv.data());
        ci.rope(kv.data(), n, c.n_kv_heads, c.head_dim, 0, inv.data());
        ci.rotate(q.qk_rotation, qv.data(), n * c.n_heads, c.head_dim, qv.data());
        ci.rotate(q.qk_rotation, kv.data(), n * c.n_kv_heads, c.head_dim, kv.data());
        KvCacheSpec spec;
        spec.n_layers = 1;
        spec.n_kv_heads = c.n_kv_heads;
        spec.head_dim = c.head_dim;
        spec.capacity = n;
        spec.k = q.k_cache;
        spec.v = q.v_cache;
        const AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim};
        const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
        std::vector<float> att_cpu(n * c.q_dim());
        {
          auto st = ci.make_kv_storage(spec);
          st->append(0, 0, n, kv.data(), vv.data());
          ci.attention(qv.data(), n, 0, *st, 0, shape, scale, att_cpu.data());
        }
        auto gpu_attention = [&](bool own_rope, int64_t* k_differ) {
          const BackendBuffer gq = gpu->upload(own_rope ? q_pre.data() : qv.data(), n * c.q_dim());
          const BackendBuffer gk = gpu->upload(own_rope ? k_pre.data() : kv.data(), n * c.kv_dim());
          const BackendBuffer gv = gpu->upload(vv.data(), n * c.kv_dim());
          const BackendBuffer gi = gpu->upload(inv.data(), static_cast<int64_t>(inv.size()));
          if (own_rope) {
            gpu->rope(gq.data(), n, c.n_heads, c.head_dim, 0, gi.data());
            gpu->rope(gk.data(), n, c.n_kv_heads, c.head_dim, 0, gi.data());
            gpu->rotate(q.qk_rotation, gq.data(), n * c.n_heads, c.head_dim, gq.data());
            gpu->rotate(q.qk_rotation, gk.data(), n * c.n_kv_heads, c.head_dim, gk.data());
            std::vector<float> kg(n * c.kv_dim());
            gpu->download(gk.data(), n * c.kv_dim(), kg.data());
            *k_differ = 0;
            for (size_t i = 0; i < kg.size(); ++i) *k_differ += kg[i] != kv[i];
          }
          auto st = gpu->make_kv_storage(spec);
          st->append(0, 0, n, gk.data(), gv.data());
          const BackendBuffer go = gpu->alloc(n * c.q_dim());
          gpu->attention(gq.data(), n, 0, *st, 0, shape, scale, go.data());
          std::vector<float> o(n * c.q_dim());
          gpu->download(go.data(), n * c.q_dim(), o.data());
          return o;
        };
        auto diff = [&](const std::vector<float>& a) {
          double d = 0, m = 0;
          for (size_t i = 0; i < a.size(); ++i) {
            d = std::max(d, std::fabs(static_cast<double>(a[i]) - att_cpu[i]));
            m = std::max(m, std::fabs(static_cast<double>(att_cpu[i])));
          }
          return std::pair{d, m};
        };
        int64_t k_differ = 0;
        const auto [da, ma] = diff(gpu_attention(false, nullptr));
        const auto [db, mb] = diff(gpu_attention(true, &k_differ));
        chk["kv4_layer0_attention"] = {{"max_abs", ma},
                                       {"same_qkv_max_abs_diff", da},
                                       {"gpu_rope_max_abs_diff", db},
                                       {"gpu_rope_k_values_differing", k_differ},
                                       {"k_values", n * c.kv_dim()}};
      }
      out["agreement"] = chk;
    }
    const std::string text = out.dump(2);
    std::printf("%s\n", text.c_str());
    std::ofstream(argv[1]) << text << "\n";
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_backend_bench: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
