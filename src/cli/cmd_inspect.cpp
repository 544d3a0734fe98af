#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "cli/quantized_summary.h"
#include "eval/model_session.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/weight_arena.h"
#include "model/loader.h"
#include "model/model_registry.h"
#include "quant/quantized_model.h"
#include "tokenizer/tokenizer.h"

namespace quarot::cli {
namespace {

nlohmann::json config_json(const LlamaConfig& c) {
  return {{"arch", c.arch},
          {"vocab_size", c.vocab_size},
          {"hidden", c.hidden},
          {"intermediate", c.intermediate},
          {"layers", c.n_layers},
          {"heads", c.n_heads},
          {"kv_heads", c.n_kv_heads},
          {"head_dim", c.head_dim},
          {"context", c.max_context},
          {"rms_eps", c.rms_eps},
          {"rope_theta", c.rope_theta},
          {"rope_scaling", c.rope_scaling.type == RopeScaling::Type::kLlama3   ? "llama3"
                           : c.rope_scaling.type == RopeScaling::Type::kLinear ? "linear"
                                                                               : "none"},
          {"tied_embeddings", c.tied_embeddings},
          {"qkv_bias", c.qkv_bias},
          {"bos_id", c.bos_id},
          {"eos_id", c.eos_id}};
}

}  // namespace

void add_inspect(CLI::App& app, Action& action) {
  struct Opts {
    std::string model = "smollm2-135m";
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "inspect", "architecture, shapes, dtypes, tokenizer, parameter count, memory; for a quantized file what was "
                 "quantized how and the sizes (--json: the full metadata)");
  cmd->add_option("-m,--model", o->model, "model: name, .gguf, HF dir or quantized file")->capture_default_str();
  cmd->add_flag("--json", o->json, "print as JSON (for a quantized file: its whole metadata)");
  cmd->callback([o, &action] {
    action = [o]() -> int {
      const std::string path = resolve_model_path(o->model);
      nlohmann::json j;
      std::unique_ptr<Tokenizer> tok;
      if (is_quantized_model_file(path)) {
        LoadedQuantizedModel q = load_quantized_model(path);
        j["path"] = path;
        j["format"] = fmt::format("quarot quantized (safetensors), format {}",
                                  q.info.value("format_version", nlohmann::json()).dump());
        j["config"] = config_json(q.weights.config);
        j["parameters"] = q.parameter_count();
        j["quantization"] = q.info;
        tok = tokenizer_from_quantized(q, path);
      } else {
        const ModelSummary s = inspect_model(path);
        j["path"] = s.path;
        j["format"] = s.format;
        j["architecture"] = s.architecture;
        j["config"] = config_json(s.config);
        j["tensors"] = s.tensor_count;
        j["tensors_by_dtype"] = s.tensors_by_dtype;
        j["parameters"] = s.parameter_count;
        j["file_bytes"] = s.file_bytes;
        j["fp32_weight_bytes"] = s.fp32_bytes;
        const LlamaConfig& c = s.config;
        j["kv_cache_bytes_per_token_fp32"] = 2 * c.n_layers * c.kv_dim() * 4;
        tok = Tokenizer::load(path);
      }
      j["tokenizer"] = {{"description", tok->describe()},
                        {"vocab_size", tok->vocab_size()},
                        {"bos_id", tok->bos_id()},
                        {"eos_id", tok->eos_id()},
                        {"add_bos", tok->add_bos_default()},
                        {"chat_template", !tok->chat_template().empty()}};
      j["cpu"] = cpu_description();
      j["backend"] = cli_backend()->name();  // what ppl / bench / eval would run on
      j["weight_memory"] = weight_arena::describe();
      if (o->json) {
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
      }
      const auto& c = j["config"];
      std::printf("path         %s\nformat       %s\n", j["path"].get<std::string>().c_str(),
                  j["format"].get<std::string>().c_str());
      std::printf("architecture %s: %lld layers, hidden %lld, ffn %lld, %lld heads / %lld kv heads x %lld, vocab %lld, "
                  "context %lld, rope theta %g (%s), %s embeddings%s\n",
                  c["arch"].get<std::string>().c_str(), c["layers"].get<long long>(), c["hidden"].get<long long>(),
                  c["intermediate"].get<long long>(), c["heads"].get<long long>(), c["kv_heads"].get<long long>(),
                  c["head_dim"].get<long long>(), c["vocab_size"].get<long long>(), c["context"].get<long long>(),
                  c["rope_theta"].get<double>(), c["rope_scaling"].get<std::string>().c_str(),
                  c["tied_embeddings"].get<bool>() ? "tied" : "untied", c["qkv_bias"].get<bool>() ? ", q/k/v bias" : "");
      std::printf("parameters   %.1f M\n", j["parameters"].get<double>() / 1e6);
      if (j.contains("tensors_by_dtype")) {
        std::printf("tensors      %lld:", j["tensors"].get<long long>());
        for (auto& [k, v] : j["tensors_by_dtype"].items()) std::printf(" %s x%lld", k.c_str(), v.get<long long>());
        std::printf("\nmemory       file %.1f MiB, FP32 weights %.1f MiB, KV cache %.1f KiB/token (FP32)\n",
                    j["file_bytes"].get<double>() / 1048576.0, j["fp32_weight_bytes"].get<double>() / 1048576.0,
                    j["kv_cache_bytes_per_token_fp32"].get<double>() / 1024.0);
      }
      if (j.contains("quantization"))
        std::fputs(quantized_file_summary(j["path"].get<std::string>(), j["quantization"]).c_str(), stdout);
      std::printf("tokenizer    %s\ncpu          %s\nbackend      %s\nweights on   %s\n", tok->describe().c_str(),
                  j["cpu"].get<std::string>().c_str(), j["backend"].get<std::string>().c_str(),
                  j["weight_memory"].get<std::string>().c_str());
      return 0;
    };
  });
}

}  // namespace quarot::cli
