#include "tokenizer/byte_level.h"

#include <unordered_map>

#include "tokenizer/unicode.h"

namespace quarot::byte_level {
namespace {

struct ByteAlphabet {
  std::array<char32_t, 256> char_of_byte{};
  std::array<std::string, 256> utf8_of_byte;
  std::unordered_map<char32_t, uint8_t> byte_of_char;

  ByteAlphabet() {
    // Printable Latin-1 bytes spell themselves; the rest are shifted past U+00FF in order.
    auto spells_itself = [](int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
    char32_t next_shifted = 256;
    for (int b = 0; b < 256; ++b) {
      char_of_byte[b] = spells_itself(b) ? static_cast<char32_t>(b) : next_shifted++;
      utf8_of_byte[b] = unicode::to_utf8(char_of_byte[b]);
      byte_of_char[char_of_byte[b]] = static_cast<uint8_t>(b);
    }
  }
};

const ByteAlphabet& alphabet() {
  static const ByteAlphabet instance;
  return instance;
}

}  // namespace

const std::string& byte_to_char(uint8_t b) { return alphabet().utf8_of_byte[b]; }

std::optional<uint8_t> char_to_byte(char32_t cp) {
  const auto& map = alphabet().byte_of_char;
  auto it = map.find(cp);
  if (it == map.end()) return std::nullopt;
  return it->second;
}

std::string encode_bytes(std::string_view raw) {
  const auto& a = alphabet();
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char b : raw) out += a.utf8_of_byte[b];
  return out;
}

bool is_byte_alphabet(std::string_view utf8) {
  for (const auto& c : unicode::decode_utf8(utf8))
    if (!char_to_byte(c.cp)) return false;
  return true;
}

std::string decode_chars(std::string_view utf8) {
  std::string out;
  out.reserve(utf8.size());
  for (const auto& c : unicode::decode_utf8(utf8)) {
    if (auto b = char_to_byte(c.cp))
      out.push_back(static_cast<char>(*b));
    else
      out.append(utf8.substr(c.byte_offset, c.byte_length));
  }
  return out;
}

}  // namespace quarot::byte_level
