#pragma once
// Perplexity on a token stream, with the two protocols users compare against:
//  - gptq (default; GPTQ/QuaRot papers): the text tokenized once, cut into
//    non-overlapping windows of seqlen tokens (a trailing partial window is
//    dropped), every token after the first of each window scored,
//    ppl = exp(mean over windows of the window's mean NLL).
//  - llama.cpp (llama-perplexity): windows of seqlen (default 512) tokens, the
//    first token of each replaced by BOS, only the second half of each window
//    scored, ppl = exp(mean NLL over all scored tokens).
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/vec_ops.h"  // token_nll
#include "model/llama_model.h"

namespace quarot {

enum class PplProtocol { kGptq, kLlamaCpp };
PplProtocol parse_ppl_protocol(const std::string& name);

struct PerplexityOptions {
  PplProtocol protocol = PplProtocol::kGptq;
  int64_t seqlen = 2048;
  int64_t max_chunks = 0;  // 0 = all windows
  int32_t bos_id = -1;     // needed by the llama.cpp protocol
  bool progress = true;
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
};

PerplexityResult evaluate_perplexity(const LlamaModel& model, const std::vector<int32_t>& ids,
                                     const PerplexityOptions& opt);

}  // namespace quarot
