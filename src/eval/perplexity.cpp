#include "eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>

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
  KvCache cache = model.make_cache(seqlen);
  std::vector<float> logits, piece;
  std::vector<int32_t> window(seqlen);
  double total_nll = 0.0;
  int64_t total_count = 0;
  double sum_window_means = 0.0;
  ProgressBar bar(llamacpp ? "ppl (llama.cpp)" : "ppl", chunks, "chunks");
  if (!opt.progress) ProgressBar::set_enabled(false);
  for (int64_t c = 0; c < chunks; ++c) {
    std::copy_n(ids.begin() + c * seqlen, seqlen, window.begin());
    if (llamacpp && opt.add_bos) window[0] = opt.bos_id;
    cache.clear();
    if (batch == seqlen) {
      model.forward(window.data(), seqlen, cache, logits, /*all_logits=*/true);
    } else {
      logits.resize(static_cast<size_t>(seqlen * vocab));
      for (int64_t b = 0; b < seqlen; b += batch) {
        const int64_t len = std::min(batch, seqlen - b);
        model.forward(window.data() + b, len, cache, piece, /*all_logits=*/true);
        std::copy_n(piece.begin(), len * vocab, logits.begin() + b * vocab);
      }
    }
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
