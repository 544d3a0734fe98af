#include "tokenizer/unicode.h"

#include <algorithm>

#include "tokenizer/unicode_tables.h"

namespace quarot::unicode {
namespace {

using unicode_tables::CodepointRange;

bool in_ranges(const CodepointRange* ranges, size_t count, char32_t cp) {
  const CodepointRange* end = ranges + count;
  // First range whose last >= cp; cp is inside when first <= cp.
  const CodepointRange* it =
      std::lower_bound(ranges, end, cp, [](const CodepointRange& r, char32_t c) { return r.last < c; });
  return it != end && it->first <= cp;
}

struct AsciiClassTable {
  CharClass table[128];
  AsciiClassTable() {
    for (char32_t c = 0; c < 128; ++c) {
      if (in_ranges(unicode_tables::kWhitespaceRanges, unicode_tables::kWhitespaceRanges_count, c))
        table[c] = CharClass::kWhitespace;
      else if (in_ranges(unicode_tables::kLetterRanges, unicode_tables::kLetterRanges_count, c))
        table[c] = CharClass::kLetter;
      else if (in_ranges(unicode_tables::kNumberRanges, unicode_tables::kNumberRanges_count, c))
        table[c] = CharClass::kNumber;
      else
        table[c] = CharClass::kOther;
    }
  }
};

}  // namespace

CharClass classify(char32_t cp) {
  static const AsciiClassTable ascii;
  if (cp < 128) return ascii.table[cp];
  if (in_ranges(unicode_tables::kLetterRanges, unicode_tables::kLetterRanges_count, cp)) return CharClass::kLetter;
  if (in_ranges(unicode_tables::kNumberRanges, unicode_tables::kNumberRanges_count, cp)) return CharClass::kNumber;
  if (in_ranges(unicode_tables::kWhitespaceRanges, unicode_tables::kWhitespaceRanges_count, cp))
    return CharClass::kWhitespace;
  return CharClass::kOther;
}

std::vector<DecodedChar> decode_utf8(std::string_view text) {
  std::vector<DecodedChar> out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char lead = s[i];
    char32_t cp = 0xFFFD;
    size_t len = 1;
    size_t need = 0;
    char32_t min_value = 0;
    if (lead < 0x80) {
      cp = lead;
    } else if ((lead & 0xE0) == 0xC0) {
      need = 1, cp = lead & 0x1F, min_value = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      need = 2, cp = lead & 0x0F, min_value = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      need = 3, cp = lead & 0x07, min_value = 0x10000;
    }
    if (need > 0) {
      bool valid = i + need < n;  // all continuation bytes present
      for (size_t k = 1; valid && k <= need; ++k) {
        if ((s[i + k] & 0xC0) != 0x80) valid = false;
        else cp = (cp << 6) | (s[i + k] & 0x3F);
      }
      if (valid && cp >= min_value && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF)) {
        len = need + 1;
      } else {
        cp = 0xFFFD;
      }
    } else if (lead >= 0x80) {
      cp = 0xFFFD;
    }
    out.push_back({cp, static_cast<uint32_t>(i), static_cast<uint32_t>(len)});
    i += len;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string to_utf8(char32_t cp) {
  std::string s;
  append_utf8(s, cp);
  return s;
}

}  // namespace quarot::unicode
