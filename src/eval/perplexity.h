#pragma once
// Perplexity on a token stream, with the two protocols users compare against.
//
// Both score the text tokenized once, with BOS in front only when the vocabulary adds
// BOS (GGUF tokenizer.ggml.add_bos_token / HF add_bos_token): what HF's tokenizer(text)
// and llama.cpp's common_tokenize(text, add_special=true) give (tokenize_for_perplexity).
//  - gptq (default; GPTQ/QuaRot papers): the stream cut into non-overlapping windows
//    of seqlen tokens (a trailing partial window is dropped), every token after the
//    first of each window scored, ppl = exp(mean over windows of the window's mean NLL).
//  - llama.cpp (llama-perplexity, default seqlen 512), rule by rule:
//      * one trailing '\n' of the text is dropped before tokenizing (llama.cpp's -f);
//      * the stream must hold at least 2 windows; windows = tokens / seqlen, cut from
//        the start, a trailing partial window dropped;
//      * the first token of each window is replaced by BOS only when the vocabulary
//        adds BOS (add_bos); otherwise the window is evaluated as it is;
//      * a window is fed in batches of `batch` tokens (n_batch, default 2048) through
//        the KV cache, BOS only in the first; windows are independent (cache cleared);
//      * only the second half is scored: the logits at positions seqlen/2 .. seqlen-2
//        predict the tokens after them, seqlen - 1 - seqlen/2 tokens per window;
//      * ppl = exp(sum of NLL / number of scored tokens), over all windows.
//    Several windows sharing one n_batch in llama.cpp (n_seq = n_batch / seqlen) are
//    separate sequences there too, so evaluating them one after the other is the same.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/value_range.h"
#include "eval/task_runner.h"
#include "kernels/cpu/vec_ops.h"  // token_nll
#include "model/llama_model.h"
#include "tokenizer/tokenizer.h"

namespace quarot {

enum class PplProtocol { kGptq, kLlamaCpp };
PplProtocol parse_ppl_protocol(const std::string& name);

struct PerplexityOptions {
  static constexpr ValueRange<int64_t> kSeqlen{2, int64_t{1} << 20};
  static constexpr ValueRange<int64_t> kMaxChunks{0, int64_t{1} << 30};  // 0 = all
  static constexpr ValueRange<int64_t> kBatch{1, int64_t{1} << 20};

  PplProtocol protocol = PplProtocol::kGptq;
  int64_t seqlen = 2048;
  int64_t max_chunks = 0;  // 0 = all windows
  int32_t bos_id = -1;     // the vocabulary's BOS (llama.cpp protocol with add_bos)
  bool add_bos = false;    // the vocabulary adds BOS: llama.cpp puts it first in every window
  int64_t batch = 2048;    // llama.cpp: tokens per forward call (n_batch)
  bool progress = true;
  // Windows one per thread (eval/task_runner.h); the result is the same either way.
  // Each concurrent window holds its own KV cache and [seqlen, vocab] logits.
  TaskParallelism parallel_tasks = TaskParallelism::kAuto;
};

struct PerplexityResult {
  double ppl = 0.0;
  double nll = 0.0;           // mean NLL (nats) that ppl exponentiates
  int64_t tokens = 0;         // tokens in the whole text
  int64_t scored_tokens = 0;  // tokens whose NLL was summed
  int64_t chunks = 0;
  int64_t seqlen = 0;
  double seconds = 0.0;
  std::string protocol;
  std::vector<double> chunk_nll;  // per-window mean NLL
  bool concurrent = false;        // windows ran one per thread
};

// Encodes `text` as opt.protocol scores it (BOS first only when the tokenizer adds it;
// llama.cpp: one trailing '\n' dropped) and sets opt.bos_id / opt.add_bos from the tokenizer.
std::vector<int32_t> tokenize_for_perplexity(const Tokenizer& tokenizer, std::string_view text,
                                             PerplexityOptions& opt);

PerplexityResult evaluate_perplexity(const LlamaModel& model, const std::vector<int32_t>& ids,
                                     const PerplexityOptions& opt);

}  // namespace quarot
