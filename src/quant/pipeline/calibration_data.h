#pragma once
// Calibration data for GPTQ: random windows of tokens from a calibration text (the
// GPTQ/QuaRot recipe: seqlen-token windows at uniformly random offsets of the
// tokenized text). Calibrating on the evaluation text would leak the test set into
// the quantized weights, so files that look like a test split are refused.
#include <cstdint>
#include <string>
#include <vector>

namespace quarot {

class Tokenizer;

// n_windows windows of exactly seqlen tokens, starts drawn from Rng(seed). When the
// text holds fewer than n_windows non-overlapping windows, only that many are drawn
// (a note goes to stderr) so calibration never sees the same tokens many times over.
// Throws Error when the text is shorter than one window or the counts are not positive.
std::vector<std::vector<int32_t>> sample_calibration_windows(const std::vector<int32_t>& ids, int64_t n_windows,
                                                             int64_t seqlen, uint64_t seed);

// True when the file name (not the directories above it) contains "test", any case: what
// an evaluation split is called.
bool looks_like_evaluation_split(const std::string& path);
// Throws Error("<path>: ...") when looks_like_evaluation_split(path), unless `force`.
void check_calibration_file(const std::string& path, bool force);

// Reads and tokenizes a calibration text file (after check_calibration_file), with
// BOS as the tokenizer adds it by default. Throws Error when missing or empty.
std::vector<int32_t> load_calibration_tokens(const std::string& path, const Tokenizer& tokenizer, bool force);

}  // namespace quarot
