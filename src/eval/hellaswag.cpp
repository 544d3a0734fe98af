#include "eval/hellaswag.h"

#include <bzlib.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "common/error.h"
#include "common/progress.h"
#include "eval/perplexity.h"

namespace quarot {

namespace {

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

int64_t count_code_points(const std::string& s) {
  int64_t n = 0;
  for (unsigned char ch : s) n += (ch & 0xC0u) != 0x80u;  // skip UTF-8 continuation bytes
  return n;
}

double stderr_of_rate(double p, int64_t n) { return n > 1 ? std::sqrt(p * (1.0 - p) / static_cast<double>(n - 1)) : 0.0; }

}  // namespace

std::string read_bz2_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) fail("{}: no such file", path);
  std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) fail("{}: cannot open", path);
  std::string out;
  std::vector<char> buf(1 << 16);
  // A .bz2 file may hold several concatenated streams (as pbzip2 writes them).
  std::vector<char> unused;
  for (;;) {
    int err = BZ_OK;
    BZFILE* bz = BZ2_bzReadOpen(&err, f.get(), 0, 0, unused.empty() ? nullptr : unused.data(),
                                static_cast<int>(unused.size()));
    if (err != BZ_OK) {
      BZ2_bzReadClose(&err, bz);
      fail("{}: cannot start bzip2 decompression", path);
    }
    while (err == BZ_OK) {
      const int n = BZ2_bzRead(&err, bz, buf.data(), static_cast<int>(buf.size()));
      if (err == BZ_OK || err == BZ_STREAM_END) out.append(buf.data(), n);
    }
    if (err != BZ_STREAM_END) {
      const char* why = err == BZ_UNEXPECTED_EOF ? "file is truncated"
                        : err == BZ_DATA_ERROR_MAGIC ? "not a bzip2 file"
                        : err == BZ_DATA_ERROR ? "corrupt bzip2 data"
                        : err == BZ_MEM_ERROR ? "out of memory"
                                              : "read error";
      int ignore = BZ_OK;
      BZ2_bzReadClose(&ignore, bz);
      fail("{}: bzip2: {}", path, why);
    }
    void* rest = nullptr;
    int n_rest = 0;
    BZ2_bzReadGetUnused(&err, bz, &rest, &n_rest);
    unused.assign(static_cast<char*>(rest), static_cast<char*>(rest) + n_rest);
    BZ2_bzReadClose(&err, bz);
    if (unused.empty()) {
      const int next = std::fgetc(f.get());
      if (next == EOF) break;
      std::ungetc(next, f.get());
    }
  }
  return out;
}

std::vector<HellaswagTask> parse_hellaswag(const std::string& text, const std::string& source) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (lines.empty()) fail("{}: no HellaSwag tasks", source);
  if (lines.size() % 6 != 0)
    fail("{}: {} lines is not a whole number of tasks (6 lines each: context, label, 4 endings); the last task "
         "starting at line {} is truncated",
         source, lines.size(), lines.size() / 6 * 6 + 1);
  std::vector<HellaswagTask> tasks(lines.size() / 6);
  for (size_t t = 0; t < tasks.size(); ++t) {
    const size_t base = t * 6;
    HellaswagTask& task = tasks[t];
    task.context = lines[base];
    const std::string& label = lines[base + 1];
    if (label.size() != 1 || label[0] < '0' || label[0] > '3')
      fail("{}: line {}: gold label must be 0, 1, 2 or 3, got '{}'", source, base + 2, label);
    task.label = label[0] - '0';
    for (int e = 0; e < 4; ++e) {
      task.endings[e] = lines[base + 2 + e];
      if (task.endings[e].empty()) fail("{}: line {}: empty ending", source, base + 3 + e);
    }
    if (task.context.empty()) fail("{}: line {}: empty context", source, base + 1);
  }
  return tasks;
}

std::vector<HellaswagTask> load_hellaswag(const std::string& path) {
  std::string text;
  if (path.size() >= 4 && path.compare(path.size() - 4, 4, ".bz2") == 0) {
    text = read_bz2_file(path);
  } else {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) fail("{}: no such file", path);
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("{}: cannot open", path);
    std::ostringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  }
  return parse_hellaswag(text, path);
}

HellaswagTaskTokens tokenize_hellaswag_task(const Tokenizer& tokenizer, const HellaswagTask& task) {
  const bool bos = tokenizer.add_bos_default() && tokenizer.bos_id() >= 0;
  // lm-eval moves trailing spaces of the context onto the continuation.
  std::string context = task.context;
  std::string moved;
  while (!context.empty() && context.back() == ' ') {
    context.pop_back();
    moved += ' ';
  }
  HellaswagTaskTokens out;
  out.context = tokenizer.encode(context, bos);
  if (out.context.empty()) fail("HellaSwag context '{}' encodes to no tokens", task.context);
  for (int e = 0; e < 4; ++e) {
    const std::string continuation = moved + " " + task.endings[e];
    const std::vector<int32_t> whole = tokenizer.encode(context + continuation, bos);
    if (whole.size() <= out.context.size())
      fail("HellaSwag ending '{}' adds no tokens to its context", task.endings[e]);
    out.continuations[e].assign(whole.begin() + static_cast<std::ptrdiff_t>(out.context.size()), whole.end());
    out.ending_chars[e] = count_code_points(task.endings[e]);
  }
  return out;
}

std::array<double, 4> score_hellaswag_endings(const LlamaModel& model, const HellaswagTaskTokens& tokens) {
  const int64_t vocab = model.config().vocab_size;
  const int64_t n_ctx = static_cast<int64_t>(tokens.context.size());
  int64_t longest = 0;
  for (const auto& c : tokens.continuations) longest = std::max<int64_t>(longest, static_cast<int64_t>(c.size()));
  KvCache context_cache = model.make_cache(n_ctx + longest);
  std::vector<float> last;
  model.forward(tokens.context.data(), n_ctx, context_cache, last, false);

  std::array<double, 4> loglik{};
  std::vector<float> logits;
  for (int e = 0; e < 4; ++e) {
    const std::vector<int32_t>& cont = tokens.continuations[e];
    double sum = -token_nll(last.data(), vocab, cont[0]);
    // Every continuation token but the last is fed to predict the next one.
    const int64_t fed = static_cast<int64_t>(cont.size()) - 1;
    if (fed > 0) {
      KvCache cache = context_cache;
      model.forward(cont.data(), fed, cache, logits, true);
      for (int64_t j = 1; j <= fed; ++j) sum -= token_nll(logits.data() + (j - 1) * vocab, vocab, cont[j]);
    }
    loglik[e] = sum;
  }
  return loglik;
}

int hellaswag_choice(const std::array<double, 4>& loglik) {
  int best = 0;
  for (int e = 1; e < 4; ++e)
    if (loglik[e] > loglik[best]) best = e;
  return best;
}

int hellaswag_choice_normalized(const std::array<double, 4>& loglik, const std::array<int64_t, 4>& chars) {
  std::array<double, 4> normalized{};
  for (int e = 0; e < 4; ++e) normalized[e] = loglik[e] / static_cast<double>(std::max<int64_t>(chars[e], 1));
  return hellaswag_choice(normalized);
}

HellaswagResult evaluate_hellaswag(const LlamaModel& model, const Tokenizer& tokenizer,
                                   const std::vector<HellaswagTask>& tasks, const HellaswagOptions& options) {
  HellaswagOptions::kLimit.check(options.limit, "HellaSwag task limit");
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t n = options.limit > 0 ? std::min<int64_t>(options.limit, static_cast<int64_t>(tasks.size()))
                                      : static_cast<int64_t>(tasks.size());
  if (n == 0) fail("HellaSwag: no tasks to evaluate");
  // Tokenized up front, on this thread: the tokenizer may keep a cache.
  std::vector<HellaswagTaskTokens> tokens;
  tokens.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) tokens.push_back(tokenize_hellaswag_task(tokenizer, tasks[i]));

  const TaskRunner runner(options.parallel_tasks, model.backend(), n);
  std::vector<char> hit(static_cast<size_t>(n)), hit_norm(static_cast<size_t>(n));
  int64_t finished = 0, correct = 0, correct_norm = 0;  // for the progress line, in completion order
  std::unique_ptr<ProgressBar> bar;
  if (options.progress) bar = std::make_unique<ProgressBar>("hellaswag", n, "task");
  runner.run(
      [&](int64_t i, int) {
        const std::array<double, 4> loglik = score_hellaswag_endings(model, tokens[i]);
        hit[i] = hellaswag_choice(loglik) == tasks[i].label;
        hit_norm[i] = hellaswag_choice_normalized(loglik, tokens[i].ending_chars) == tasks[i].label;
      },
      [&](int64_t i) {
        ++finished;
        correct += hit[i];
        correct_norm += hit_norm[i];
        if (bar)
          bar->update(finished, fmt::format("acc {:.3f} acc_norm {:.3f}", static_cast<double>(correct) / finished,
                                            static_cast<double>(correct_norm) / finished));
      });
  if (bar) bar->finish();
  HellaswagResult r;
  r.tasks = n;
  r.acc = static_cast<double>(correct) / n;
  r.acc_norm = static_cast<double>(correct_norm) / n;
  r.acc_stderr = stderr_of_rate(r.acc, n);
  r.acc_norm_stderr = stderr_of_rate(r.acc_norm, n);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.concurrent = runner.concurrent();
  return r;
}

}  // namespace quarot
