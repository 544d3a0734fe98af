#include "eval/perplexity.h"

#include <chrono>
#include <cmath>

#include "common/error.h"
#include "common/progress.h"

namespace quarot {

PplProtocol parse_ppl_protocol(const std::string& name) {
  if (name == "gptq" || name == "quarot") return PplProtocol::kGptq;
  if (name == "llama.cpp" || name == "llamacpp") return PplProtocol::kLlamaCpp;
  fail("--protocol: unknown protocol '{}' (expected gptq or llama.cpp)", name);
}

PerplexityResult evaluate_perplexity(const LlamaModel& model, const std::vector<int32_t>& ids,
                                     const PerplexityOptions& opt) {
  const bool llamacpp = opt.protocol == PplProtocol::kLlamaCpp;
  const int64_t seqlen = opt.seqlen;
  if (seqlen < 2) fail("--seqlen must be at least 2, got {}", seqlen);
  if (seqlen > model.config().max_context)
    fail("--seqlen {} exceeds the model's context of {} tokens", seqlen, model.config().max_context);
  if (llamacpp && opt.bos_id < 0) fail("the llama.cpp protocol needs a BOS token, and this tokenizer has none");
  int64_t chunks = static_cast<int64_t>(ids.size()) / seqlen;
  if (chunks == 0)
    fail("the text has {} tokens, fewer than one window of --seqlen {}", ids.size(), seqlen);
  if (opt.max_chunks > 0) chunks = std::min(chunks, opt.max_chunks);

  PerplexityResult r;
  r.tokens = static_cast<int64_t>(ids.size());
  r.chunks = chunks;
  r.seqlen = seqlen;
  r.protocol = llamacpp ? "llama.cpp" : "gptq";
  const auto start = std::chrono::steady_clock::now();
  const int64_t vocab = model.config().vocab_size;
  KvCache cache = model.make_cache(seqlen);
  std::vector<float> logits;
  std::vector<int32_t> window(seqlen);
  double total_nll = 0.0;
  int64_t total_count = 0;
  double sum_window_means = 0.0;
  ProgressBar bar(llamacpp ? "ppl (llama.cpp)" : "ppl", chunks, "chunks");
  if (!opt.progress) ProgressBar::set_enabled(false);
  for (int64_t c = 0; c < chunks; ++c) {
    std::copy_n(ids.begin() + c * seqlen, seqlen, window.begin());
    if (llamacpp) window[0] = opt.bos_id;
    cache.clear();
    model.forward(window.data(), seqlen, cache, logits, /*all_logits=*/true);
    const int64_t first = llamacpp ? seqlen / 2 : 0;
    double nll = 0.0;
    int64_t count = 0;
#pragma omp parallel for reduction(+ : nll, count)
    for (int64_t j = first; j < seqlen - 1; ++j) {
      nll += token_nll(logits.data() + j * vocab, vocab, window[j + 1]);
      ++count;
    }
    if (!std::isfinite(nll)) fail("perplexity: non-finite NLL in window {} (the model produced NaN/Inf)", c);
    total_nll += nll;
    total_count += count;
    r.chunk_nll.push_back(nll / count);
    sum_window_means += nll / count;
    const double running = llamacpp ? total_nll / total_count : sum_window_means / (c + 1);
    bar.update(c + 1, fmt::format("ppl {:.4f}", std::exp(running)));
  }
  bar.finish();
  r.scored_tokens = total_count;
  r.nll = llamacpp ? total_nll / total_count : sum_window_means / chunks;
  r.ppl = std::exp(r.nll);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace quarot
