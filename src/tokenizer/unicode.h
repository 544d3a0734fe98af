#pragma once
// UTF-8 decoding and the character classes the pre-tokenizer regexes use.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace quarot::unicode {

enum class CharClass : uint8_t { kLetter, kNumber, kWhitespace, kOther };

CharClass classify(char32_t cp);
inline bool is_letter(char32_t cp) { return classify(cp) == CharClass::kLetter; }
inline bool is_number(char32_t cp) { return classify(cp) == CharClass::kNumber; }
inline bool is_whitespace(char32_t cp) { return classify(cp) == CharClass::kWhitespace; }

// One decoded code point and where its bytes lie in the source string.
struct DecodedChar {
  char32_t cp;
  uint32_t byte_offset;
  uint32_t byte_length;
};

// Decodes UTF-8. Invalid sequences never throw: each bad byte becomes U+FFFD of
// length 1 so offsets still cover every input byte (HF receives valid Python str,
// so this only matters for robustness on arbitrary bytes).
std::vector<DecodedChar> decode_utf8(std::string_view text);

void append_utf8(std::string& out, char32_t cp);
std::string to_utf8(char32_t cp);

}  // namespace quarot::unicode
