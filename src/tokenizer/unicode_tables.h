#pragma once
// Generated Unicode character-class ranges (see tools/gen_unicode_tables.py).
#include <cstddef>
#include <cstdint>

namespace quarot::unicode_tables {

struct CodepointRange {
  uint32_t first;
  uint32_t last;  // inclusive
};

extern const CodepointRange kLetterRanges[];      // general category L*
extern const size_t kLetterRanges_count;
extern const CodepointRange kNumberRanges[];      // general category N*
extern const size_t kNumberRanges_count;
extern const CodepointRange kWhitespaceRanges[];  // White_Space property (regex \s)
extern const size_t kWhitespaceRanges_count;
extern const char kUnicodeVersion[];

}  // namespace quarot::unicode_tables
