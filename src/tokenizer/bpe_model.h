#pragma once
// The BPE model step of HF tokenizers: turns one pre-tokenized word (already in the
// vocabulary's spelling) into token ids by applying merges lowest-rank-first, with
// optional byte fallback (<0xNN> tokens) and unknown-token handling.
#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace quarot {

struct BpeOptions {
  bool byte_fallback = false;  // unknown chars become their UTF-8 bytes as <0xNN> tokens
  bool fuse_unk = false;       // consecutive unknown chars give one unk token
  bool ignore_merges = false;  // a word that is itself a token is emitted whole
  std::optional<std::string> unk_token;
};

class BpeModel {
 public:
  // vocab[id] is the token's spelling; merges are in rank order. source names the
  // file for error messages.
  BpeModel(std::vector<std::string> vocab, const std::vector<std::pair<std::string, std::string>>& merges,
           BpeOptions options, const std::string& source);

  // Appends the ids of one word.
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> find(std::string_view token) const;
  const std::vector<std::string>& vocab() const { return vocab_; }
  size_t merge_count() const { return merge_count_; }
  const BpeOptions& options() const { return options_; }

 private:
  struct MergeTarget {
    int32_t rank;
    int32_t merged_id;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int32_t> token_to_id_;
  std::unordered_map<uint64_t, MergeTarget> merges_;
  size_t merge_count_ = 0;
  BpeOptions options_;
  std::optional<int32_t> unk_id_;
  std::array<int32_t, 256> byte_token_ids_{};  // <0xNN> ids, -1 when absent

  // Words repeat constantly in text, so merged results are memoized.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace quarot
