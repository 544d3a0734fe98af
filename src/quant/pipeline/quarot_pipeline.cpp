#include "quant/pipeline/quarot_pipeline.h"

#include <chrono>
#include <functional>
#include <memory>

#include <fmt/format.h>

#include "common/error.h"
#include "common/half.h"
#include "common/progress.h"
#include "kernels/backend.h"
#include "kernels/cpu/fake_quant.h"
#include "model/llama_model.h"
#include "quant/claq.h"
#include "quant/gptq.h"
#include "quant/quantized_model.h"
#include "quant/rtn.h"

namespace quarot {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The seven linears of a decoder layer, with the activation slot whose inputs they read.
struct LinearRef {
  const char* name;
  const char* field;  // as quant/quantized_model.h names it

  Tensor LayerWeights::*weight;
  QuantizedMatrix QuantizedLayer::*quantized;
  LinearSlot slot;
};
constexpr LinearRef kLayerLinears[] = {
    {"q_proj", "wq", &LayerWeights::wq, &QuantizedLayer::wq, LinearSlot::kQkv},
    {"k_proj", "wk", &LayerWeights::wk, &QuantizedLayer::wk, LinearSlot::kQkv},
    {"v_proj", "wv", &LayerWeights::wv, &QuantizedLayer::wv, LinearSlot::kQkv},
    {"o_proj", "wo", &LayerWeights::wo, &QuantizedLayer::wo, LinearSlot::kO},
    {"gate_proj", "w_gate", &LayerWeights::w_gate, &QuantizedLayer::w_gate, LinearSlot::kGateUp},
    {"up_proj", "w_up", &LayerWeights::w_up, &QuantizedLayer::w_up, LinearSlot::kGateUp},
    {"down_proj", "w_down", &LayerWeights::w_down, &QuantizedLayer::w_down, LinearSlot::kDown},
};

std::string linear_name(int64_t layer, const char* name) { return fmt::format("layer {} {}", layer, name); }

ClaqOptions claq_options(const QuantizeOptions& o) {
  ClaqOptions c;
  c.bits = o.resolved_w_bits();
  c.outlier_fraction = o.outlier_fraction;
  c.seed = o.seed;
  c.gptq = o.gptq;
  return c;
}

WeightQuantSpec weight_spec(const QuantizeOptions& o, int bits) {
  WeightQuantSpec s;
  s.bits = bits;
  s.symmetric = o.w_sym;
  s.group = o.w_group;
  s.clip_search = o.w_clip_search;
  return s;
}

// A one-layer model holding decoder layer `li` of w, to run that layer alone over
// calibration hidden states (LlamaModel::run_layer). Its vocabulary is a single
// zero token so building it does not copy the embedding table.
ModelWeights single_layer_model(const ModelWeights& w, int64_t li) {
  ModelWeights m;
  m.config = w.config;
  m.config.n_layers = 1;
  m.config.vocab_size = 1;
  m.config.tied_embeddings = true;
  m.config.bos_id = m.config.eos_id = -1;
  m.tok_embeddings = Tensor({1, w.config.hidden});
  m.output_norm = w.output_norm;
  m.layers = {w.layers[li]};
  return m;
}

void quantize_layers_rtn(QuantizationResult& r, const WeightQuantSpec& spec) {
  const int64_t n_layers = r.weights.config.n_layers;
  ProgressBar bar("rtn", n_layers, "layer");
  for (int64_t li = 0; li < n_layers; ++li) {
    LayerWeights& lw = r.weights.layers[li];
    QuantizedLayer& ql = r.layers[li];
    for (const LinearRef& l : kLayerLinears) {
      ql.*l.quantized = quantize_rtn(lw.*l.weight, spec, linear_name(li, l.name));
      lw.*l.weight = (ql.*l.quantized).dequantize();
    }
    bar.add(1, fmt::format("layer {}/{}", li + 1, n_layers));
  }
  bar.finish();
}

// GPTQ, sequential over layers: layer i is calibrated on the hidden states that the
// already quantized layers < i produce. Within a layer all seven linears see the
// inputs of the layer's FP weights (one Hessian pass per layer, not QuaRot's four
// "true sequential" sub-passes), and activation / KV quantization is off during
// calibration (as in QuaRot, which enables the activation quantizers after GPTQ).
// Quantizes one linear of layer `li` against its Hessian and returns the dequantized
// weight (what the next layer's calibration runs on); stores the encoded form itself.
using CalibratedQuantizer =
    std::function<Tensor(int64_t li, const LinearRef& l, const Tensor& w, const std::vector<double>& h)>;

void quantize_layers_calibrated(QuantizationResult& r, const QuantizeOptions& o, const std::shared_ptr<const Backend>& backend,
                                const std::vector<std::vector<int32_t>>& windows, const char* label,
                                const CalibratedQuantizer& quantize_one) {
  const LlamaConfig& c = r.weights.config;
  if (windows.empty()) fail("{} needs calibration data (no calibration windows given)", label);
  const int64_t n_windows = static_cast<int64_t>(windows.size());
  const int64_t seqlen = static_cast<int64_t>(windows.front().size());
  if (seqlen <= 0) fail("calibration: empty window");
  for (const auto& w : windows) {
    if (static_cast<int64_t>(w.size()) != seqlen)
      fail("calibration: windows differ in length ({} and {} tokens)", seqlen, w.size());
    for (int32_t t : w) {
      if (t < 0 || t >= c.vocab_size)
        fail("calibration: token id {} is outside the vocabulary (size {})", t, c.vocab_size);
    }
  }
  const int64_t H = c.hidden;
  // Hidden states of every window between layers: [windows, seqlen, hidden].
  std::vector<float> hidden(static_cast<size_t>(n_windows * seqlen * H));
  for (int64_t w = 0; w < n_windows; ++w)
    for (int64_t t = 0; t < seqlen; ++t)
      std::copy_n(r.weights.tok_embeddings.row(windows[w][t]), H, hidden.data() + (w * seqlen + t) * H);

  // The paper's calibration: the rotations only. With calib_quantized the layers run
  // as deployed (activation and KV quantization on) and each Hessian is built from
  // the quantized inputs its linear will multiply.
  RuntimeRecipe calib_recipe;
  calib_recipe.qk_rotation = r.recipe.qk_rotation;
  calib_recipe.o_proj_input = r.recipe.o_proj_input;
  calib_recipe.down_proj_input = r.recipe.down_proj_input;
  calib_recipe.norms_folded = r.recipe.norms_folded;
  if (o.calib_quantized) apply_quant_specs(o, calib_recipe);
  std::vector<float> quantized_input;
  auto hessian_input = [&](LinearSlot slot, const float* x, int64_t n, int64_t dim) -> const float* {
    const ActQuantSpec& a = calib_recipe.act_for(slot);
    if (!a.enabled()) return x;
    quantized_input.assign(x, x + n * dim);
    fake_quant_rows(quantized_input.data(), n, dim, a.bits, a.clip_ratio, a.group, a.symmetric);
    return quantized_input.data();
  };

  std::vector<float> scratch(static_cast<size_t>(seqlen * H));
  double calib_seconds = 0.0;
  ProgressBar bar(label, c.n_layers * 2 * n_windows, "win");
  for (int64_t li = 0; li < c.n_layers; ++li) {
    const std::string where = fmt::format("layer {}/{}", li + 1, c.n_layers);
    const auto t0 = Clock::now();
    HessianAccumulator h_qkv(H), h_o(c.q_dim()), h_gate_up(H), h_down(c.intermediate);
    {
      LlamaModel layer(single_layer_model(r.weights, li), calib_recipe, backend);
      layer.set_activation_hook([&](int, LinearSlot slot, const float* raw, int64_t n, int64_t dim) {
        const float* x = hessian_input(slot, raw, n, dim);
        switch (slot) {
          case LinearSlot::kQkv: h_qkv.add(x, n, dim); break;
          case LinearSlot::kO: h_o.add(x, n, dim); break;
          case LinearSlot::kGateUp: h_gate_up.add(x, n, dim); break;
          case LinearSlot::kDown: h_down.add(x, n, dim); break;
          case LinearSlot::kLmHead: break;
        }
      });
      for (int64_t w = 0; w < n_windows; ++w) {
        std::copy_n(hidden.data() + w * seqlen * H, seqlen * H, scratch.data());
        layer.run_layer(0, scratch.data(), seqlen);
        bar.add(1, where + " hessians");
      }
    }
    const std::vector<double> hessians[] = {h_qkv.finalize(), h_o.finalize(), h_gate_up.finalize(),
                                            h_down.finalize()};
    calib_seconds += seconds_since(t0);
    auto hessian_of = [&](LinearSlot s) -> const std::vector<double>& {
      switch (s) {
        case LinearSlot::kQkv: return hessians[0];
        case LinearSlot::kO: return hessians[1];
        case LinearSlot::kGateUp: return hessians[2];
        default: return hessians[3];
      }
    };
    LayerWeights& lw = r.weights.layers[li];
    for (const LinearRef& l : kLayerLinears) lw.*l.weight = quantize_one(li, l, lw.*l.weight, hessian_of(l.slot));
    // The next layer's inputs come from this layer as quantized.
    const auto t1 = Clock::now();
    LlamaModel layer(single_layer_model(r.weights, li), calib_recipe, backend);
    for (int64_t w = 0; w < n_windows; ++w) {
      layer.run_layer(0, hidden.data() + w * seqlen * H, seqlen);
      bar.add(1, where + " propagate");
    }
    calib_seconds += seconds_since(t1);
  }
  bar.finish();
  r.report.calib_windows = n_windows;
  r.report.calib_seqlen = seqlen;
  r.report.calibrate_seconds = calib_seconds;
}

std::string describe_act(const ActQuantSpec& a) {
  if (!a.enabled()) return "FP";
  return fmt::format("{}-bit {} per {} (clip {})", a.bits, a.symmetric ? "sym" : "asym",
                     a.group > 0 ? fmt::format("group of {}", a.group) : std::string("token"), a.clip_ratio);
}

nlohmann::json overrides_json(const RuntimeRecipe& r) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [slot, spec] : r.act_overrides) j[linear_slot_name(slot)] = describe_act(spec);
  return j;
}

std::string describe_kv(const KvQuantSpec& k, int64_t head_dim) {
  if (!k.enabled()) return "FP";
  return fmt::format("{}-bit {} group {} (clip {})", k.bits, k.symmetric ? "sym" : "asym",
                     k.group > 0 ? k.group : head_dim, k.clip_ratio);
}

}  // namespace

QuantizationResult quantize_model(const ModelWeights& fp, const QuantizeOptions& options,
                                  const std::vector<std::vector<int32_t>>& calib_windows,
                                  const std::shared_ptr<const Backend>& calibration_backend) {
  const auto t_start = Clock::now();
  const std::string source = fp.config.name.empty() ? "model" : fp.config.name;
  options.validate_for(fp.config, source);

  if (options.seed_trials > 1) {
    // Pick the seed, then run the pass once with it.
    SeedSearchResult search = search_rotation_seed(fp, options, calib_windows, calibration_backend);
    QuantizeOptions chosen = options;
    chosen.seed = search.best_seed;
    chosen.seed_trials = 1;
    QuantizationResult r = quantize_model(fp, chosen, calib_windows, calibration_backend);
    r.report.seed_search = std::move(search);
    r.report.total_seconds = seconds_since(t_start);
    return r;
  }

  QuantizationResult r;
  r.weights = fp;
  r.report.model = fp.config.name;
  r.report.scheme = options.scheme.name;
  r.report.head_dim = fp.config.head_dim;
  r.report.seed = options.seed;

  const auto t_rot = Clock::now();
  r.report.rotation = apply_rotation_stage(r.weights, r.recipe, to_string(options.rotate), options.seed);
  r.report.rotate_seconds = seconds_since(t_rot);

  const auto t_quant = Clock::now();
  if (options.scheme.quantizes_weights()) {
    const WeightQuantSpec spec = weight_spec(options, options.scheme.w_bits);
    r.report.weight_method = to_string(options.weights);
    if (options.weights == WeightMethod::kGptq) {
      r.layers.resize(fp.config.n_layers);
      quantize_layers_calibrated(r, options, calibration_backend, calib_windows, "gptq",
                                 [&](int64_t li, const LinearRef& l, const Tensor& w, const std::vector<double>& h) {
                                   QuantizedMatrix& q = r.layers[li].*l.quantized;
                                   q = quantize_gptq(w, h, spec, options.gptq, linear_name(li, l.name));
                                   return q.dequantize();
                                 });
    } else if (options.weights == WeightMethod::kClaq) {
      const ClaqOptions claq = claq_options(options);
      r.report.w_bits_budget = claq.bits;
      r.report.outlier_fraction = claq.outlier_fraction;
      r.report.codebook_bits = CodebookBits{};
      quantize_layers_calibrated(r, options, calibration_backend, calib_windows, "claq",
                                 [&](int64_t li, const LinearRef& l, const Tensor& w, const std::vector<double>& h) {
                                   CodebookMatrix q = quantize_claq(w, h, claq, linear_name(li, l.name));
                                   *r.report.codebook_bits += q.storage_bits();
                                   Tensor dq = q.dequantize();
                                   r.codebooks[fmt::format("layers.{}.{}", li, l.field)] = std::move(q);
                                   return dq;
                                 });
    } else {
      r.layers.resize(fp.config.n_layers);
      quantize_layers_rtn(r, spec);
    }
  } else {
    r.report.weight_method = "none";
  }
  if (options.lm_head_bits < 16) {
    // lm_head by RTN: its Hessian would need the whole calibrated model's final states.
    Tensor& head = r.weights.lm_head.empty() ? r.weights.tok_embeddings : r.weights.lm_head;
    if (r.weights.lm_head.empty()) {
      r.weights.lm_head = head;  // untie: the embedding table stays FP
      r.weights.config.tied_embeddings = false;
    }
    r.lm_head = quantize_rtn(r.weights.lm_head, weight_spec(options, options.lm_head_bits), "lm_head");
    r.weights.lm_head = r.lm_head->dequantize();
  }
  if (options.embed_bits < 16) {
    // Per-row symmetric grid: a token's row is what a lookup reads.
    WeightQuantSpec spec = weight_spec(options, options.embed_bits);
    spec.group = 0;
    spec.symmetric = true;
    r.embedding = quantize_rtn(r.weights.tok_embeddings, spec, "tok_embeddings");
    r.weights.tok_embeddings = r.embedding->dequantize();
  }
  // The file keeps the FP embedding table and lm_head in 16 bits: round them here, so
  // that the result evaluated in memory is exactly the model a saved file holds.
  auto round_to_fp16 = [](Tensor& t) {
    for (float& v : t.data) v = fp16_to_fp32(fp32_to_fp16(v));
  };
  if (options.embed_bits == 16) round_to_fp16(r.weights.tok_embeddings);
  if (options.lm_head_bits == 16 && !r.weights.lm_head.empty()) round_to_fp16(r.weights.lm_head);
  r.report.quantize_seconds = seconds_since(t_quant);

  apply_quant_specs(options, r.recipe);
  r.report.recipe = r.recipe;
  r.report.total_seconds = seconds_since(t_start);
  return r;
}

std::map<std::string, QuantizedMatrix> quantized_weight_map(const QuantizationResult& r) {
  static const std::pair<const char*, QuantizedMatrix QuantizedLayer::*> fields[] = {
      {"wq", &QuantizedLayer::wq},         {"wk", &QuantizedLayer::wk},     {"wv", &QuantizedLayer::wv},
      {"wo", &QuantizedLayer::wo},         {"w_gate", &QuantizedLayer::w_gate}, {"w_up", &QuantizedLayer::w_up},
      {"w_down", &QuantizedLayer::w_down}};
  std::map<std::string, QuantizedMatrix> m;
  for (size_t i = 0; i < r.layers.size(); ++i)
    for (const auto& [name, field] : fields) m[fmt::format("layers.{}.{}", i, name)] = r.layers[i].*field;
  if (r.lm_head) m["lm_head"] = *r.lm_head;
  if (r.embedding) m["tok_embeddings"] = *r.embedding;
  return m;
}

void save_quantization_result(const std::string& path, const QuantizationResult& r, const QuantizeOptions& options,
                              const std::string& tokenizer_json, const std::string& source_path,
                              const std::string& tokenizer_config_json) {
  nlohmann::json rotation = r.report.to_json()["rotation"];
  rotation["seed"] = r.report.seed;
  rotation["description"] = r.report.rotation.residual;
  nlohmann::json info = {{"scheme", options.scheme.name},
                               {"options", to_json(options)},
                               {"rotation", rotation},
                               {"report", r.report.to_json()},
                               {"source", {{"path", source_path}}}};
  // tokenizer.json cannot hold EOS or the chat template (HF rejects unknown keys);
  // tokenizer_config.json carries them, as in an HF checkpoint.
  if (!tokenizer_config_json.empty()) info["tokenizer_config"] = tokenizer_config_json;
  QuantizedModelWriteOptions write;
  write.fp16_embedding = options.embed_bits == 16;
  write.fp16_lm_head = options.lm_head_bits == 16;
  std::map<std::string, WeightEncoding> codebooks;
  for (const auto& [name, m] : r.codebooks) codebooks.emplace(name, m.encode());
  save_quantized_model(path, r.weights, quantized_weight_map(r), r.recipe, info, tokenizer_json, write, codebooks);
}

nlohmann::json QuantizeReport::to_json() const {
  nlohmann::json rot = {{"mode", rotation.mode},
                        {"residual", rotation.residual},
                        {"qk", rotation.qk},
                        {"v_head", rotation.v_head},
                        {"o_proj", rotation.o_proj},
                        {"down_proj", rotation.down_proj},
                        {"all_exact_hadamard", rotation.all_exact_hadamard},
                        {"max_orthogonality_error", rotation.max_orthogonality_error},
                        {"fallbacks", rotation.fallbacks}};
  nlohmann::json search = nullptr;
  if (seed_search) {
    nlohmann::json trials = nlohmann::json::array();
    for (const SeedTrial& t : seed_search->trials)
      trials.push_back({{"seed", t.seed}, {"calib_nll", t.calib_nll}, {"seconds", t.seconds}});
    search = {{"best_seed", seed_search->best_seed}, {"windows", seed_search->windows},
              {"seqlen", seed_search->seqlen}, {"proxy", seed_search->proxy}, {"trials", trials}};
  }
  return {{"model", model},
          {"scheme", scheme},
          {"seed", seed},
          {"seed_search", search},
          {"weight_method", weight_method},
          {"rotation", rot},
          {"activations", describe_act(recipe.act)},
          {"activation_overrides", overrides_json(recipe)},
          {"lm_head_activations", describe_act(recipe.lm_head_act)},
          {"k_cache", describe_kv(recipe.k_cache, head_dim)},
          {"v_cache", describe_kv(recipe.v_cache, head_dim)},
          {"intact_kv", recipe.intact_kv},
          {"calib_windows", calib_windows},
          {"calib_seqlen", calib_seqlen},
          {"claq", claq_json()},
          {"rotate_seconds", rotate_seconds},
          {"calibrate_seconds", calibrate_seconds},
          {"quantize_seconds", quantize_seconds},
          {"total_seconds", total_seconds}};
}

nlohmann::json QuantizeReport::claq_json() const {
  if (!codebook_bits) return nullptr;
  const CodebookBits& b = *codebook_bits;
  const double n = static_cast<double>(std::max<int64_t>(1, b.weights));
  return {{"w_bits_budget", w_bits_budget},
          {"outlier_fraction", outlier_fraction},
          {"weights", b.weights},
          {"outliers", b.outliers},
          {"index_bits_per_weight", b.index_width / n},
          {"index_stream_bits_per_weight", b.index / n},
          {"codebook_bits_per_weight", b.codebook / n},
          {"outlier_bits_per_weight", b.outlier / n},
          {"effective_bits_per_weight", b.total() / n}};
}

std::string QuantizeReport::to_text() const {
  std::string s;
  s += fmt::format("model        {}\n", model);
  s += fmt::format("scheme       {}  (weights: {})\n", scheme, weight_method);
  s += fmt::format("activations  {}; lm_head input {}\n", describe_act(recipe.act), describe_act(recipe.lm_head_act));
  for (const auto& [slot, spec] : recipe.act_overrides)
    s += fmt::format("             {} input: {}\n", linear_slot_name(slot), describe_act(spec));
  s += fmt::format("KV cache     K {}, V {}{}\n", describe_kv(recipe.k_cache, head_dim), describe_kv(recipe.v_cache, head_dim),
                   recipe.intact_kv ? ", first token intact (IntactKV)" : "");
  s += fmt::format("rotation     {}: residual {}\n", rotation.mode, rotation.residual);
  s += fmt::format("             q/k per head {}; v/o per head {}\n", rotation.qk, rotation.v_head);
  s += fmt::format("             o_proj input {}; down_proj input {}\n", rotation.o_proj, rotation.down_proj);
  if (!rotation.fallbacks.empty()) {
    std::string lines = rotation.fallbacks;
    if (!lines.empty() && lines.back() == '\n') lines.pop_back();
    size_t pos = 0;
    while ((pos = lines.find('\n', pos)) != std::string::npos) {
      lines.replace(pos, 1, "\n             ");
      pos += 14;
    }
    s += fmt::format("fallbacks    {}\n", lines);
  }
  if (seed_search) {
    s += fmt::format("seed search  {} seeds on {} calibration windows of {} tokens, scored as {}; best seed {}\n",
                     seed_search->trials.size(), seed_search->windows, seed_search->seqlen, seed_search->proxy,
                     seed_search->best_seed);
    for (const SeedTrial& t : seed_search->trials)
      s += fmt::format("             seed {:<4} calib NLL {:.5f}{}\n", t.seed, t.calib_nll,
                       t.seed == seed_search->best_seed ? "  <- chosen" : "");
  }
  if (codebook_bits) {
    const CodebookBits& b = *codebook_bits;
    const double n = static_cast<double>(std::max<int64_t>(1, b.weights));
    s += fmt::format("CLAQ         budget {:.3f} index bits, {:.3f}% outliers kept FP16\n", w_bits_budget,
                     100.0 * outlier_fraction);
    s += fmt::format("             bits/weight: index widths {:.4f}; stored: indices {:.4f} + codebooks {:.4f} + "
                     "outliers {:.4f} = {:.4f} effective\n",
                     b.index_width / n, b.index / n, b.codebook / n, b.outlier / n, b.total() / n);
  }
  if (calib_windows > 0) s += fmt::format("calibration  {} windows x {} tokens\n", calib_windows, calib_seqlen);
  s += fmt::format("time         rotate {:.1f} s, quantize weights {:.1f} s", rotate_seconds, quantize_seconds);
  if (calib_windows > 0) s += fmt::format(" (forwards + Hessians {:.1f} s)", calibrate_seconds);
  s += fmt::format(", total {:.1f} s\n", total_seconds);
  return s;
}

}  // namespace quarot
