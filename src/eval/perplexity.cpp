#include "eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "common/error.h"
#include "common/progress.h"

namespace quarot {

PplProtocol parse_ppl_protocol(const std::string& name) {
  if (name == "gptq" || name == "quarot") return PplProtocol::kGptq;
  if (name == "llama.cpp" || name == "llamacpp") return PplProtocol::kLlamaCpp;
  fail("unknown perplexity protocol '{}' (expected gptq or llama.cpp)", name);
}

std::vector<int32_t> tokenize_for_perplexity(const Tokenizer& tokenizer, std::string_view text,
                                             PerplexityOptions& opt) {
  opt.bos_id = tokenizer.bos_id();
  opt.add_bos = tokenizer.add_bos_default() && opt.bos_id >= 0;
  if (opt.protocol == PplProtocol::kLlamaCpp && !text.empty() && text.back() == '\n') text.remove_suffix(1);
  return tokenizer.encode(text, opt.add_bos);
}

PerplexityResult evaluate_perplexity(const LlamaModel& model, const std::vector<int32_t>& ids,
                                     const PerplexityOptions& opt) {
  const bool llamacpp = opt.protocol == PplProtocol::kLlamaCpp;
  const int64_t seqlen = opt.seqlen;
  PerplexityOptions::kSeqlen.check(seqlen, "perplexity window length");
  PerplexityOptions::kMaxChunks.check(opt.max_chunks, "perplexity window count");
  if (seqlen > model.config().max_context)
    fail("perplexity window of {} tokens exceeds the model's context of {} tokens", seqlen, model.config().max_context);
  if (llamacpp && opt.add_bos && opt.bos_id < 0)
    fail("the vocabulary adds BOS but defines no BOS token");
  PerplexityOptions::kBatch.check(opt.batch, "perplexity batch");
  const int64_t n = static_cast<int64_t>(ids.size());
  // llama-perplexity refuses a text shorter than two windows.
  if (llamacpp && n < 2 * seqlen)
    fail("the text has {} tokens; the llama.cpp protocol needs at least 2 windows of {} ({} tokens)", n, seqlen,
         2 * seqlen);
  int64_t chunks = n / seqlen;
  if (chunks == 0) fail("the text has {} tokens, fewer than one window of {}", n, seqlen);
  if (opt.max_chunks > 0) chunks = std::min(chunks, opt.max_chunks);

  PerplexityResult r;
  r.tokens = n;
  r.chunks = chunks;
  r.seqlen = seqlen;
  r.protocol = llamacpp ? "llama.cpp" : "gptq";
  const auto start = std::chrono::steady_clock::now();
  const int64_t vocab = model.config().vocab_size;
  const int64_t batch = llamacpp ? std::min(opt.batch, seqlen) : seqlen;
  const int64_t first = llamacpp ? seqlen / 2 : 0;
  const int64_t count = seqlen - 1 - first;  // scored tokens per window
  const TaskRunner runner(opt.parallel_tasks, model.backend(), chunks);
  // What a worker reuses from one window to the next.
  struct Worker {
    KvCache cache;
    std::vector<float> logits, piece;
    std::vector<int32_t> window;
    std::vector<double> nll;
  };
  std::vector<Worker> workers(static_cast<size_t>(runner.workers()));
  std::vector<double> window_nll(static_cast<size_t>(chunks));  // NLL sum of each window's scored tokens
  int64_t finished = 0;
  double shown_nll = 0.0, shown_means = 0.0;  // for the progress line, in completion order
  std::unique_ptr<ProgressBar> bar;
  if (opt.progress) bar = std::make_unique<ProgressBar>(llamacpp ? "ppl (llama.cpp)" : "ppl", chunks, "chunks");
  runner.run(
      [&](int64_t c, int w) {
        Worker& s = workers[static_cast<size_t>(w)];
        if (s.cache.capacity() == 0) {
          s.cache = model.make_cache(seqlen);
          s.window.resize(static_cast<size_t>(seqlen));
          s.nll.resize(static_cast<size_t>(count));
        }
        std::copy_n(ids.begin() + c * seqlen, seqlen, s.window.begin());
        if (llamacpp && opt.add_bos) s.window[0] = opt.bos_id;
        s.cache.clear();
        if (batch == seqlen) {
          model.forward(s.window.data(), seqlen, s.cache, s.logits, /*all_logits=*/true);
        } else {
          s.logits.resize(static_cast<size_t>(seqlen * vocab));
          for (int64_t b = 0; b < seqlen; b += batch) {
            const int64_t len = std::min(batch, seqlen - b);
            model.forward(s.window.data() + b, len, s.cache, s.piece, /*all_logits=*/true);
            std::copy_n(s.piece.begin(), len * vocab, s.logits.begin() + b * vocab);
          }
        }
        // Per token in parallel, summed in position order: the same bits for any thread count.
        const float* logits = s.logits.data();
        const int32_t* window = s.window.data();
        double* nll_of = s.nll.data();
#pragma omp parallel for schedule(static)
        for (int64_t j = 0; j < count; ++j)
          nll_of[j] = token_nll(logits + (first + j) * vocab, vocab, window[first + j + 1]);
        double nll = 0.0;
        for (int64_t j = 0; j < count; ++j) nll += nll_of[j];
        if (!std::isfinite(nll)) fail("perplexity: non-finite NLL in window {} (the model produced NaN/Inf)", c);
        window_nll[static_cast<size_t>(c)] = nll;
      },
      [&](int64_t c) {
        ++finished;
        shown_nll += window_nll[static_cast<size_t>(c)];
        shown_means += window_nll[static_cast<size_t>(c)] / count;
        const double running = llamacpp ? shown_nll / (finished * count) : shown_means / finished;
        if (bar) bar->update(finished, fmt::format("ppl {:.4f}", std::exp(running)));
      });
  if (bar) bar->finish();
  // Combined in window order, as the serial loop adds them.
  double total_nll = 0.0, sum_window_means = 0.0;
  int64_t total_count = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    const double nll = window_nll[static_cast<size_t>(c)];
    total_nll += nll;
    total_count += count;
    r.chunk_nll.push_back(nll / count);
    sum_window_means += nll / count;
  }
  r.concurrent = runner.concurrent();
  r.scored_tokens = total_count;
  r.nll = llamacpp ? total_nll / total_count : sum_window_means / chunks;
  r.ppl = std::exp(r.nll);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace quarot
