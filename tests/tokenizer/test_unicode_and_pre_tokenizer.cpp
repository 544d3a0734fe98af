// Character classes, the GPT-2 byte alphabet, and the hand-written split regexes,
// checked against cases worked out by hand from the regex semantics.
#include <gtest/gtest.h>

#include <set>

#include "tokenizer/byte_level.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/unicode.h"

namespace quarot {
namespace {

using Pieces = std::vector<std::string>;

Pieces split(std::string_view text, SplitPattern p) {
  Pieces out;
  for (auto v : split_by_pattern(text, p)) out.emplace_back(v);
  return out;
}

TEST(Unicode, ClassifiesLettersNumbersWhitespace) {
  using unicode::CharClass;
  EXPECT_EQ(unicode::classify(U'a'), CharClass::kLetter);
  EXPECT_EQ(unicode::classify(U'\u00E9'), CharClass::kLetter);   // é
  EXPECT_EQ(unicode::classify(U'\u4E2D'), CharClass::kLetter);   // 中 (Lo)
  EXPECT_EQ(unicode::classify(U'7'), CharClass::kNumber);
  EXPECT_EQ(unicode::classify(U'\u00B2'), CharClass::kNumber);   // superscript two (No)
  EXPECT_EQ(unicode::classify(U'\u0663'), CharClass::kNumber);   // Arabic-Indic three (Nd)
  EXPECT_EQ(unicode::classify(U'\u216B'), CharClass::kNumber);   // Roman numeral twelve (Nl)
  EXPECT_EQ(unicode::classify(U' '), CharClass::kWhitespace);
  EXPECT_EQ(unicode::classify(U'\u00A0'), CharClass::kWhitespace);
  EXPECT_EQ(unicode::classify(U'\u3000'), CharClass::kWhitespace);
  EXPECT_EQ(unicode::classify(U'\u0085'), CharClass::kWhitespace);
  EXPECT_EQ(unicode::classify(U'\u200B'), CharClass::kOther);    // zero width space is Cf, not White_Space
  EXPECT_EQ(unicode::classify(U'\U0001F600'), CharClass::kOther);  // emoji
  EXPECT_EQ(unicode::classify(U'!'), CharClass::kOther);
}

TEST(Unicode, DecodesUtf8AndReplacesInvalidBytes) {
  const auto chars = unicode::decode_utf8("a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80");
  ASSERT_EQ(chars.size(), 4u);
  EXPECT_EQ(chars[1].cp, U'\u00E9');
  EXPECT_EQ(chars[2].cp, U'\u4E2D');
  EXPECT_EQ(chars[3].cp, U'\U0001F600');
  EXPECT_EQ(chars[3].byte_offset, 6u);
  const auto bad = unicode::decode_utf8("\xC3" "a\xFF\xE4\xB8");
  ASSERT_EQ(bad.size(), 5u);  // every bad byte is its own U+FFFD
  EXPECT_EQ(bad[0].cp, U'\uFFFD');
  EXPECT_EQ(bad[1].cp, U'a');
  EXPECT_EQ(bad[4].byte_offset, 4u);
}

TEST(ByteLevel, KnownGpt2Spellings) {
  EXPECT_EQ(byte_level::byte_to_char(' '), "\u0120");   // Ġ
  EXPECT_EQ(byte_level::byte_to_char('\n'), "\u010A");  // Ċ
  EXPECT_EQ(byte_level::byte_to_char(0x00), "\u0100");  // Ā: first shifted byte
  EXPECT_EQ(byte_level::byte_to_char(0xAD), "\u0143");  // Ń: soft hyphen, after 33 + 34 shifted bytes
  EXPECT_EQ(byte_level::byte_to_char('a'), "a");
  EXPECT_EQ(byte_level::byte_to_char(0xE9), "\u00E9");
}

TEST(ByteLevel, RoundTripsEveryByte) {
  std::set<std::string> spellings;
  std::string all;
  for (int b = 0; b < 256; ++b) {
    spellings.insert(byte_level::byte_to_char(static_cast<uint8_t>(b)));
    all.push_back(static_cast<char>(b));
  }
  EXPECT_EQ(spellings.size(), 256u);
  const std::string encoded = byte_level::encode_bytes(all);
  EXPECT_TRUE(byte_level::is_byte_alphabet(encoded));
  EXPECT_EQ(byte_level::decode_chars(encoded), all);
  EXPECT_FALSE(byte_level::is_byte_alphabet("<|\u4E2D|>"));
}

TEST(PreTokenizer, Gpt2Splits) {
  EXPECT_EQ(split("Hello world", SplitPattern::kGpt2), (Pieces{"Hello", " world"}));
  EXPECT_EQ(split("I'm here", SplitPattern::kGpt2), (Pieces{"I", "'m", " here"}));
  EXPECT_EQ(split("they'll we've you're", SplitPattern::kGpt2), (Pieces{"they", "'ll", " we", "'ve", " you", "'re"}));
  EXPECT_EQ(split("DON'T", SplitPattern::kGpt2), (Pieces{"DON", "'", "T"}));  // contractions are case-sensitive
  EXPECT_EQ(split("a  b", SplitPattern::kGpt2), (Pieces{"a", " ", " b"}));
  EXPECT_EQ(split("x \n\n y", SplitPattern::kGpt2), (Pieces{"x", " \n\n", " y"}));
  EXPECT_EQ(split("abc123 !!?", SplitPattern::kGpt2), (Pieces{"abc", "123", " !!?"}));
  EXPECT_EQ(split("end   ", SplitPattern::kGpt2), (Pieces{"end", "   "}));
  EXPECT_EQ(split("\nfoo", SplitPattern::kGpt2), (Pieces{"\n", "foo"}));
  EXPECT_EQ(split(" 2024 caf\xC3\xA9", SplitPattern::kGpt2), (Pieces{" 2024", " caf\xC3\xA9"}));
  EXPECT_EQ(split("", SplitPattern::kGpt2), Pieces{});
}

TEST(PreTokenizer, Llama3Splits) {
  EXPECT_EQ(split("DON'T stop", SplitPattern::kLlama3), (Pieces{"DON", "'T", " stop"}));
  EXPECT_EQ(split("12345", SplitPattern::kLlama3), (Pieces{"123", "45"}));
  EXPECT_EQ(split("  \n  hello", SplitPattern::kLlama3), (Pieces{"  \n", " ", " hello"}));
  EXPECT_EQ(split("(hello)", SplitPattern::kLlama3), (Pieces{"(hello", ")"}));
  EXPECT_EQ(split("x\n\ny", SplitPattern::kLlama3), (Pieces{"x", "\n\n", "y"}));
  EXPECT_EQ(split("...\n\nfoo", SplitPattern::kLlama3), (Pieces{"...\n\n", "foo"}));
  EXPECT_EQ(split("a\tb", SplitPattern::kLlama3), (Pieces{"a", "\tb"}));
  EXPECT_EQ(split("x1y", SplitPattern::kLlama3), (Pieces{"x", "1", "y"}));
  EXPECT_EQ(split("12345", SplitPattern::kQwen2), (Pieces{"1", "2", "3", "4", "5"}));
}

TEST(PreTokenizer, RegexTextsRoundTrip) {
  for (SplitPattern p : {SplitPattern::kGpt2, SplitPattern::kLlama3, SplitPattern::kQwen2})
    EXPECT_EQ(split_pattern_from_regex(split_pattern_regex(p)), p);
  EXPECT_FALSE(split_pattern_from_regex("\\w+").has_value());
}

TEST(PreTokenizer, Digits) {
  auto digits = [](std::string_view t, bool individual) {
    Pieces out;
    for (auto v : split_digits(t, individual)) out.emplace_back(v);
    return out;
  };
  EXPECT_EQ(digits("ab12c", true), (Pieces{"ab", "1", "2", "c"}));
  EXPECT_EQ(digits("ab12c", false), (Pieces{"ab", "12", "c"}));
  EXPECT_EQ(digits("7", true), (Pieces{"7"}));
}

TEST(PreTokenizer, PiecesCoverInvalidUtf8) {
  const std::string text = "a\xFF\xFE b\xC3";
  std::string joined;
  for (auto v : split_by_pattern(text, SplitPattern::kLlama3)) joined += v;
  EXPECT_EQ(joined, text);
}

}  // namespace
}  // namespace quarot
