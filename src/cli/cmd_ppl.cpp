#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "cli/numeric_option.h"
#include "common/atomic_file.h"
#include "common/threads.h"
#include "eval/model_session.h"
#include "eval/perplexity.h"

namespace quarot::cli {

void add_ppl(CLI::App& app, Action& action) {
  struct Opts {
    std::string model = "smollm2-135m", text, protocol = "gptq", tokens_out;
    int64_t seqlen = 0, max_chunks = 0, batch = PerplexityOptions{}.batch;
    bool json = false;
    std::string parallel_tasks = "auto";
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("ppl", "perplexity of a model on a text file (GPTQ/QuaRot or llama.cpp protocol)");
  cmd->add_option("-m,--model", o->model, "model: name, .gguf, HF dir or quantized file")->capture_default_str();
  cmd->add_option("--text", o->text, "text file (default: WikiText-2 test from $QUAROT_DATA or ../shared/data)");
  cmd->add_option("--protocol", o->protocol, "gptq (non-overlapping windows) or llama.cpp (llama-perplexity's rules)")
      ->capture_default_str();
  add_number(cmd, "--seqlen", o->seqlen, "window length in tokens (default 2048; 512 for llama.cpp)",
             PerplexityOptions::kSeqlen);
  add_number(cmd, "--max-chunks", o->max_chunks, "score only the first N windows (0 = all)",
             PerplexityOptions::kMaxChunks);
  add_number(cmd, "--batch", o->batch, "llama.cpp protocol: tokens per forward call (llama-perplexity's -b)",
             PerplexityOptions::kBatch)
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "print the result as JSON on stdout");
  add_parallel_tasks_option(cmd, o->parallel_tasks);
  cmd->add_option("--tokens-out", o->tokens_out,
                  "also write the token ids the windows are cut from (JSON) to this file, e.g. to score the same "
                  "windows with another engine");
  cmd->callback([o, &action] {
    action = [o]() -> int {
      const PplProtocol protocol = parse_ppl_protocol(o->protocol);
      const std::string text_path =
          o->text.empty() ? default_data_path("wikitext-2-raw-v1.test.txt") : o->text;
      const std::string text = read_text_file(text_path);
      ModelSession s = open_model(o->model, cli_backend());
      PerplexityOptions opt;
      opt.protocol = protocol;
      opt.seqlen = o->seqlen > 0 ? o->seqlen : (protocol == PplProtocol::kLlamaCpp ? 512 : 2048);
      opt.max_chunks = o->max_chunks;
      opt.batch = o->batch;
      opt.parallel_tasks = parse_task_parallelism(o->parallel_tasks);
      const std::vector<int32_t> ids = tokenize_for_perplexity(*s.tokenizer, text, opt);
      if (!o->tokens_out.empty()) {
        const nlohmann::json t = {{"text", text_path},     {"protocol", o->protocol}, {"seqlen", opt.seqlen},
                                  {"bos", opt.add_bos},    {"model", s.path},         {"ids", ids}};
        write_file_atomic(o->tokens_out, [&](std::ostream& f) { f << t.dump() << "\n"; });
      }
      const PerplexityResult r = evaluate_perplexity(*s.model, ids, opt);
      if (o->json) {
        nlohmann::json j = {{"ppl", r.ppl},         {"nll", r.nll},
                            {"tokens", r.tokens},   {"scored_tokens", r.scored_tokens},
                            {"chunks", r.chunks},   {"seqlen", r.seqlen},
                            {"seconds", r.seconds}, {"protocol", r.protocol},
                            {"bos", opt.add_bos},   {"model", s.path},
                            {"model_kind", s.description},
                            {"text", text_path},    {"backend", s.backend->name()},
                            {"threads", num_threads()},
                            {"parallel_tasks", r.concurrent}};
        if (protocol == PplProtocol::kLlamaCpp) j["batch"] = opt.batch;
        std::printf("%s\n", j.dump(2).c_str());
      } else {
        std::printf("model     %s (%s)\ntext      %s (%lld tokens%s)\nprotocol  %s, seqlen %lld, %lld windows\n"
                    "ppl       %.4f   (mean NLL %.6f over %lld scored tokens)\ntime      %.1f s on %s\n",
                    s.path.c_str(), s.description.c_str(), text_path.c_str(), static_cast<long long>(r.tokens),
                    opt.add_bos ? ", BOS first" : ", no BOS", r.protocol.c_str(), static_cast<long long>(r.seqlen),
                    static_cast<long long>(r.chunks), r.ppl, r.nll, static_cast<long long>(r.scored_tokens),
                    r.seconds, s.backend->name().c_str());
      }
      return 0;
    };
  });
}

}  // namespace quarot::cli
