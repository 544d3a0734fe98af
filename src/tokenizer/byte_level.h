#pragma once
// GPT-2's reversible byte <-> printable-character mapping: byte-level BPE vocabularies
// spell every byte as one visible Unicode character so merges never see control bytes.
#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace quarot::byte_level {

// The character (as UTF-8) that spells byte b.
const std::string& byte_to_char(uint8_t b);
// The byte a code point spells, or nullopt when it is not in the byte alphabet.
std::optional<uint8_t> char_to_byte(char32_t cp);
// Spells raw bytes in the byte alphabet.
std::string encode_bytes(std::string_view raw);
// True when every character of the UTF-8 string is in the byte alphabet.
bool is_byte_alphabet(std::string_view utf8);
// Maps byte-alphabet characters back to bytes; other characters keep their UTF-8.
std::string decode_chars(std::string_view utf8);

}  // namespace quarot::byte_level
