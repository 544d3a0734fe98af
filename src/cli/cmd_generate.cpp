#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>

#include "cli/commands.h"
#include "cli/numeric_option.h"
#include "common/error.h"
#include "eval/chat_template.h"
#include "eval/model_session.h"
#include "model/sampler.h"

namespace quarot::cli {

namespace {
constexpr ValueRange<int64_t> kPredictRange{1, int64_t{1} << 20};  // the model's context limits it further
}  // namespace

void add_generate(CLI::App& app, Action& action) {
  struct Opts {
    std::string model = "smollm2-135m", prompt;
    int64_t n = 64;
    SamplerOptions sampler;
    bool chat = false, json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("generate", "generate text from a prompt (streams to stdout)");
  cmd->add_option("-m,--model", o->model, "model: name, .gguf, HF dir or quantized file")->capture_default_str();
  cmd->add_option("-p,--prompt", o->prompt, "prompt text")->required();
  add_number(cmd, "-n,--n-predict", o->n, "tokens to generate", kPredictRange)->capture_default_str();
  add_number(cmd, "--temperature", o->sampler.temperature, "0 = greedy", SamplerOptions::kTemperature)
      ->capture_default_str();
  add_number(cmd, "--top-k", o->sampler.top_k, "keep the k most likely tokens (0 = all)", SamplerOptions::kTopK)
      ->capture_default_str();
  add_number(cmd, "--top-p", o->sampler.top_p, "nucleus sampling mass", SamplerOptions::kTopP)->capture_default_str();
  cmd->add_option("--seed", o->sampler.seed, "sampling seed")->capture_default_str();
  cmd->add_flag("--chat", o->chat, "wrap the prompt in the model's chat template (user turn)");
  cmd->add_flag("--json", o->json, "print the result (text, token counts, speeds) as JSON instead of streaming");
  cmd->callback([o, &action] {
    action = [o]() -> int {
      ModelSession s = open_model(o->model, cli_backend());
      const Tokenizer& tok = *s.tokenizer;
      std::string text = o->prompt;
      if (o->chat) {
        try {
          text = apply_chat_template(tok.chat_template(), text);
        } catch (const Error& e) {
          fail("--chat: {}", e.what());
        }
      }
      const bool add_bos = tok.add_bos_default() && tok.bos_id() >= 0 && !o->chat;
      std::vector<int32_t> ids = tok.encode(text, add_bos);
      if (ids.empty()) fail("--prompt: the prompt is empty");
      const int64_t ctx = s.model->config().max_context;
      if (static_cast<int64_t>(ids.size()) >= ctx)
        fail("--prompt: the prompt has {} tokens, the model's context is {}", ids.size(), ctx);
      const int64_t budget = std::min<int64_t>(o->n, ctx - static_cast<int64_t>(ids.size()));
      KvCache cache = s.model->make_cache(static_cast<int64_t>(ids.size()) + budget);
      Sampler sampler(o->sampler);
      std::vector<float> logits;
      const auto t0 = std::chrono::steady_clock::now();
      s.model->forward(ids.data(), static_cast<int64_t>(ids.size()), cache, logits, false);
      const auto t1 = std::chrono::steady_clock::now();
      std::string out;
      std::vector<int32_t> generated;
      if (!o->json) {
        std::fputs(o->prompt.c_str(), stdout);
        if (o->chat) std::fputs("\n", stdout);  // the reply is a new turn, not a continuation
        std::fflush(stdout);
      }
      for (int64_t i = 0; i < budget; ++i) {
        const int32_t next = sampler.sample(logits.data(), s.model->config().vocab_size);
        if (next == tok.eos_id()) break;
        generated.push_back(next);
        const std::string piece = tok.token_text(next);
        out += piece;
        if (!o->json) {
          std::fwrite(piece.data(), 1, piece.size(), stdout);
          std::fflush(stdout);
        }
        if (i + 1 < budget) s.model->forward(&next, 1, cache, logits, false);
      }
      const auto t2 = std::chrono::steady_clock::now();
      const double prefill_s = std::chrono::duration<double>(t1 - t0).count();
      const double decode_s = std::chrono::duration<double>(t2 - t1).count();
      if (o->json) {
        nlohmann::json j = {{"prompt", o->prompt},
                            {"text", out},
                            {"prompt_tokens", ids.size()},
                            {"generated_tokens", generated.size()},
                            {"tokens", generated},
                            {"prefill_tokens_per_s", ids.size() / prefill_s},
                            {"decode_tokens_per_s", generated.size() / std::max(decode_s, 1e-9)}};
        std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      } else {
        // The text ends with a newline, on stdout before the timing line goes to stderr:
        // where both reach one pipe or file, stdout is block-buffered and an unflushed
        // newline would land after the timing line.
        const std::string shown = o->prompt + (o->chat ? "\n" : "") + out;
        if (shown.empty() || shown.back() != '\n') std::fputs("\n", stdout);
        std::fflush(stdout);
        std::fprintf(stderr, "[%zu prompt tokens at %.1f tok/s, %zu generated at %.1f tok/s]\n", ids.size(),
                     ids.size() / prefill_s, generated.size(), generated.size() / std::max(decode_s, 1e-9));
      }
      return 0;
    };
  });
}

}  // namespace quarot::cli
