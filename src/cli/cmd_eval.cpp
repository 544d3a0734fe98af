#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "cli/numeric_option.h"
#include "common/error.h"
#include "common/threads.h"
#include "eval/hellaswag.h"
#include "eval/model_session.h"

namespace quarot::cli {

void add_eval(CLI::App& app, Action& action) {
  struct Opts {
    std::string model = "smollm2-135m", task = "hellaswag", data;
    int64_t limit = 0;
    bool json = false;
    std::string parallel_tasks = "auto";
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("eval", "zero-shot task accuracy (HellaSwag, lm-eval-harness scoring)");
  cmd->add_option("-m,--model", o->model, "model: name, .gguf, HF dir or quantized file")->capture_default_str();
  cmd->add_option("--task", o->task, "task: hellaswag")->capture_default_str();
  cmd->add_option("--data", o->data,
                  "task file, 6 lines per task, plain or .bz2 (default: hellaswag_val_full.txt.bz2 from "
                  "$QUAROT_DATA or ../shared/data)");
  add_number(cmd, "--limit", o->limit, "evaluate only the first N tasks (0 = all)", HellaswagOptions::kLimit);
  cmd->add_flag("--json", o->json, "print the result as JSON on stdout");
  add_parallel_tasks_option(cmd, o->parallel_tasks);
  cmd->callback([o, &action] {
    action = [o]() -> int {
      if (o->task != "hellaswag") fail("--task: unknown task '{}' (available: hellaswag)", o->task);
      const std::string data = o->data.empty() ? default_data_path("hellaswag_val_full.txt.bz2") : o->data;
      const std::vector<HellaswagTask> tasks = load_hellaswag(data);
      ModelSession s = open_model(o->model, cli_backend());
      HellaswagOptions opt;
      opt.limit = o->limit;
      opt.parallel_tasks = parse_task_parallelism(o->parallel_tasks);
      const HellaswagResult r = evaluate_hellaswag(*s.model, *s.tokenizer, tasks, opt);
      if (o->json) {
        const nlohmann::json j = {{"task", "hellaswag"},
                                  {"tasks", r.tasks},
                                  {"acc", r.acc},
                                  {"acc_stderr", r.acc_stderr},
                                  {"acc_norm", r.acc_norm},
                                  {"acc_norm_stderr", r.acc_norm_stderr},
                                  {"seconds", r.seconds},
                                  {"model", s.path},
                                  {"model_kind", s.description},
                                  {"data", data},
                                  {"backend", s.backend->name()},
                                  {"threads", num_threads()},
                                  {"parallel_tasks", r.concurrent}};
        std::printf("%s\n", j.dump(2).c_str());
      } else {
        std::printf("model     %s (%s)\ntask      hellaswag, %lld of %zu tasks (%s)\n"
                    "acc       %.4f +- %.4f\nacc_norm  %.4f +- %.4f\ntime      %.1f s on %s\n",
                    s.path.c_str(), s.description.c_str(), static_cast<long long>(r.tasks), tasks.size(),
                    data.c_str(), r.acc, r.acc_stderr, r.acc_norm, r.acc_norm_stderr, r.seconds,
                    s.backend->name().c_str());
      }
      return 0;
    };
  });
}

}  // namespace quarot::cli
