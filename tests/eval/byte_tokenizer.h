#pragma once
// Test tokenizer shared by the eval tests.
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace quarot {

// One token per byte: ids 0..255 fit the tiny synthetic model's vocabulary, and the
// expected token split of every string is obvious.
class ByteTokenizer : public Tokenizer {
 public:
  explicit ByteTokenizer(bool bos) : bos_(bos) {}
  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
    std::vector<int32_t> ids;
    if (add_bos) ids.push_back(1);
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string s;
    for (int32_t i : ids) s += static_cast<char>(i);
    return s;
  }
  std::string token_text(int32_t id) const override { return std::string(1, static_cast<char>(id)); }
  int64_t vocab_size() const override { return 256; }
  int32_t bos_id() const override { return 1; }
  int32_t eos_id() const override { return 2; }
  bool add_bos_default() const override { return bos_; }
  std::string chat_template() const override { return ""; }
  std::string describe() const override { return "bytes"; }
  std::string to_hf_json() const override { return "{}"; }
  std::string to_hf_config_json() const override { return "{}"; }

 private:
  bool bos_;
};

}  // namespace quarot
