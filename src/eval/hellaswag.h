#pragma once
// HellaSwag (Zellers et al., 2019) zero-shot accuracy, scored as lm-evaluation-harness
// does: each of the four endings is the continuation " " + ending of the context;
// its score is the sum of the log-probabilities of its tokens given the context.
//   acc      = argmax of the raw sum
//   acc_norm = argmax of sum / len(ending), len in characters (Unicode code points,
//              as Python's len(); equal to bytes for ASCII text) of the ending alone,
//              without the " " delimiter: lm-eval's multiple-choice scoring divides by
//              completion_len = [len(c) for c in doc_to_choice(doc)], the choices
//              before target_delimiter is prepended to form the continuations.
// Standard errors are those of a mean of 0/1 outcomes: sqrt(p (1 - p) / (n - 1)).
//
// Data: the layout llama.cpp's hellaswag scorer reads, 6 lines per task:
// "activity_label: ctx", the gold label (0-3), then the four endings. Files ending in
// .bz2 are decompressed on the fly.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/value_range.h"
#include "eval/task_runner.h"
#include "model/llama_model.h"
#include "tokenizer/tokenizer.h"

namespace quarot {

struct HellaswagTask {
  std::string context;
  int label = 0;
  std::array<std::string, 4> endings;
};

// Throws Error("<source>: line N: ...") on a truncated task or a bad label.
std::vector<HellaswagTask> parse_hellaswag(const std::string& text, const std::string& source);
// Reads a plain or .bz2 task file. Throws Error naming the path when missing, corrupt or malformed.
std::vector<HellaswagTask> load_hellaswag(const std::string& path);
// Whole content of a bzip2 file (concatenated streams included). Throws Error naming the path.
std::string read_bz2_file(const std::string& path);

// Token ids of one task as lm-eval builds them: context tokens (BOS first when the
// tokenizer adds it) and, per ending, the tokens that encode(context + " " + ending)
// has beyond the context's own encoding.
struct HellaswagTaskTokens {
  std::vector<int32_t> context;
  std::array<std::vector<int32_t>, 4> continuations;
  std::array<int64_t, 4> ending_chars{};  // len(ending) in code points, delimiter excluded
};
HellaswagTaskTokens tokenize_hellaswag_task(const Tokenizer& tokenizer, const HellaswagTask& task);

// Sum of log p(continuation token | everything before it), per ending. The context
// runs once; each ending continues from a copy of its KV cache.
std::array<double, 4> score_hellaswag_endings(const LlamaModel& model, const HellaswagTaskTokens& tokens);

struct HellaswagOptions {
  static constexpr ValueRange<int64_t> kLimit{0, int64_t{1} << 30};

  int64_t limit = 0;  // first N tasks (0 = all)
  bool progress = true;
  // Tasks one per thread (eval/task_runner.h); the scores are the same either way.
  TaskParallelism parallel_tasks = TaskParallelism::kAuto;
};

struct HellaswagResult {
  int64_t tasks = 0;
  double acc = 0.0, acc_stderr = 0.0;
  double acc_norm = 0.0, acc_norm_stderr = 0.0;
  double seconds = 0.0;
  bool concurrent = false;  // tasks ran one per thread
};

HellaswagResult evaluate_hellaswag(const LlamaModel& model, const Tokenizer& tokenizer,
                                   const std::vector<HellaswagTask>& tasks, const HellaswagOptions& options);

// Index of the best ending for acc (raw sums) and acc_norm (per character of the ending).
int hellaswag_choice(const std::array<double, 4>& loglik);
int hellaswag_choice_normalized(const std::array<double, 4>& loglik, const std::array<int64_t, 4>& chars);

}  // namespace quarot
