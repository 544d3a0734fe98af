#include "tokenizer/pre_tokenizer.h"

#include "tokenizer/unicode.h"

namespace quarot {
namespace {

using unicode::CharClass;

const std::string kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const std::string kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct CharsWithClass {
  std::vector<unicode::DecodedChar> chars;
  std::vector<CharClass> classes;
  explicit CharsWithClass(std::string_view text) : chars(unicode::decode_utf8(text)) {
    classes.reserve(chars.size());
    for (const auto& c : chars) classes.push_back(unicode::classify(c.cp));
  }
  size_t size() const { return chars.size(); }
  char32_t cp(size_t i) const { return chars[i].cp; }
  CharClass cls(size_t i) const { return classes[i]; }
  size_t run_end(size_t i, CharClass c) const {
    while (i < size() && classes[i] == c) ++i;
    return i;
  }
};

bool is_cr_or_lf(char32_t cp) { return cp == U'\r' || cp == U'\n'; }

// Length in chars of a contraction ('s 't 're 've 'm 'll 'd) at i, 0 when none.
size_t contraction_length(const CharsWithClass& t, size_t i, bool case_insensitive) {
  if (t.cp(i) != U'\'' || i + 1 >= t.size()) return 0;
  auto fold = [&](char32_t c) -> char32_t {
    if (!case_insensitive) return c;
    if (c >= U'A' && c <= U'Z') return c - U'A' + U'a';
    if (c == U'\u017F') return U's';  // LATIN SMALL LETTER LONG S case-folds to 's'
    return c;
  };
  const char32_t a = fold(t.cp(i + 1));
  if (a == U's' || a == U't' || a == U'm' || a == U'd') return 2;
  if (i + 2 >= t.size()) return 0;
  const char32_t b = fold(t.cp(i + 2));
  if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) return 3;
  return 0;
}

// \s+(?!\S)|\s+ at a whitespace char i: the run, minus its last char when a
// non-space follows and the run is longer than one char.
size_t trailing_whitespace_end(const CharsWithClass& t, size_t i) {
  const size_t end = t.run_end(i, CharClass::kWhitespace);
  if (end == t.size() || end - i == 1) return end;
  return end - 1;
}

size_t next_gpt2_piece(const CharsWithClass& t, size_t i) {
  if (size_t len = contraction_length(t, i, false)) return i + len;
  size_t j = i;
  if (t.cp(i) == U' ' && i + 1 < t.size() && t.cls(i + 1) != CharClass::kWhitespace) j = i + 1;
  const CharClass c = t.cls(j);
  if (c != CharClass::kWhitespace) return t.run_end(j, c);  // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
  return trailing_whitespace_end(t, i);
}

size_t next_llama3_piece(const CharsWithClass& t, size_t i, size_t max_digits) {
  if (size_t len = contraction_length(t, i, true)) return i + len;
  const CharClass c = t.cls(i);
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (c == CharClass::kLetter) return t.run_end(i, CharClass::kLetter);
  if (c != CharClass::kNumber && !is_cr_or_lf(t.cp(i)) && i + 1 < t.size() && t.cls(i + 1) == CharClass::kLetter)
    return t.run_end(i + 1, CharClass::kLetter);
  // \p{N}{1,max}
  if (c == CharClass::kNumber) {
    size_t j = i;
    while (j < t.size() && j - i < max_digits && t.cls(j) == CharClass::kNumber) ++j;
    return j;
  }
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  size_t j = i;
  if (t.cp(i) == U' ' && i + 1 < t.size() && t.cls(i + 1) == CharClass::kOther) j = i + 1;
  if (t.cls(j) == CharClass::kOther) {
    j = t.run_end(j, CharClass::kOther);
    while (j < t.size() && is_cr_or_lf(t.cp(j))) ++j;
    return j;
  }
  // \s*[\r\n]+ : whitespace up to and including the run's last CR/LF.
  const size_t run_end = t.run_end(i, CharClass::kWhitespace);
  for (size_t k = run_end; k > i; --k)
    if (is_cr_or_lf(t.cp(k - 1))) return k;
  return trailing_whitespace_end(t, i);
}

}  // namespace

const std::string& split_pattern_regex(SplitPattern pattern) {
  switch (pattern) {
    case SplitPattern::kGpt2: return kGpt2Regex;
    case SplitPattern::kLlama3: return kLlama3Regex;
    case SplitPattern::kQwen2: return kQwen2Regex;
  }
  return kGpt2Regex;
}

std::string_view split_pattern_name(SplitPattern pattern) {
  switch (pattern) {
    case SplitPattern::kGpt2: return "gpt2";
    case SplitPattern::kLlama3: return "llama3";
    case SplitPattern::kQwen2: return "qwen2";
  }
  return "?";
}

std::optional<SplitPattern> split_pattern_from_regex(std::string_view regex) {
  for (SplitPattern p : {SplitPattern::kGpt2, SplitPattern::kLlama3, SplitPattern::kQwen2})
    if (regex == split_pattern_regex(p)) return p;
  return std::nullopt;
}

std::vector<std::string_view> split_by_pattern(std::string_view text, SplitPattern pattern) {
  const CharsWithClass t(text);
  std::vector<std::string_view> pieces;
  size_t i = 0;
  while (i < t.size()) {
    size_t end = 0;
    switch (pattern) {
      case SplitPattern::kGpt2: end = next_gpt2_piece(t, i); break;
      case SplitPattern::kLlama3: end = next_llama3_piece(t, i, 3); break;
      case SplitPattern::kQwen2: end = next_llama3_piece(t, i, 1); break;
    }
    const size_t begin_byte = t.chars[i].byte_offset;
    const size_t end_byte = end < t.size() ? t.chars[end].byte_offset : text.size();
    pieces.push_back(text.substr(begin_byte, end_byte - begin_byte));
    i = end;
  }
  return pieces;
}

std::vector<std::string_view> split_digits(std::string_view text, bool individual_digits) {
  const CharsWithClass t(text);
  std::vector<std::string_view> pieces;
  size_t i = 0;
  while (i < t.size()) {
    const bool numeric = t.cls(i) == CharClass::kNumber;
    size_t end = i + 1;
    if (!numeric || !individual_digits)
      while (end < t.size() && (t.cls(end) == CharClass::kNumber) == numeric) ++end;
    const size_t begin_byte = t.chars[i].byte_offset;
    const size_t end_byte = end < t.size() ? t.chars[end].byte_offset : text.size();
    pieces.push_back(text.substr(begin_byte, end_byte - begin_byte));
    i = end;
  }
  return pieces;
}

}  // namespace quarot
