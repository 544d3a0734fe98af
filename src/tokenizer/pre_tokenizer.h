#pragma once
// Hand-written equivalents of the pre-tokenizer split regexes used by byte-level BPE
// models. Each splitter walks the text once, trying the regex alternatives in order
// at every position exactly as a backtracking (Oniguruma) engine would, so the pieces
// equal those of HF tokenizers' Split(regex, behavior="isolated").
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace quarot {

enum class SplitPattern {
  // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kGpt2,
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kLlama3,
  // Same as kLlama3 with \p{N} (one digit per piece).
  kQwen2,
};

// The regex text HF writes for a pattern (tokenizer.json "Split" pre-tokenizer).
const std::string& split_pattern_regex(SplitPattern pattern);
// Recognizes one of the supported regexes; nullopt for any other.
std::optional<SplitPattern> split_pattern_from_regex(std::string_view regex);
std::string_view split_pattern_name(SplitPattern pattern);

// Pieces of text (views into it), in order, covering it completely.
std::vector<std::string_view> split_by_pattern(std::string_view text, SplitPattern pattern);

// HF Digits pre-tokenizer: numeric characters isolated from the rest, each on its
// own when individual_digits, else as runs.
std::vector<std::string_view> split_digits(std::string_view text, bool individual_digits);

}  // namespace quarot
