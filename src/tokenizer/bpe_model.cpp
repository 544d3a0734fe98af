#include "tokenizer/bpe_model.h"

#include <fmt/format.h>

#include <queue>

#include "common/error.h"
#include "tokenizer/unicode.h"

namespace quarot {
namespace {

constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kMaxCacheEntries = 200000;

}  // namespace

BpeModel::BpeModel(std::vector<std::string> vocab, const std::vector<std::pair<std::string, std::string>>& merges,
                   BpeOptions options, const std::string& source)
    : vocab_(std::move(vocab)), options_(std::move(options)) {
  token_to_id_.reserve(vocab_.size());
  // Later duplicates win, as when HF builds its vocabulary map from a token list.
  for (size_t id = 0; id < vocab_.size(); ++id) token_to_id_[vocab_[id]] = static_cast<int32_t>(id);
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    auto l = find(left), r = find(right), m = find(left + right);
    if (!l || !r || !m)
      fail("{}: merge '{} {}' (rank {}) uses a token missing from the vocabulary", source, left, right, rank);
    merges_[pair_key(*l, *r)] = MergeTarget{static_cast<int32_t>(rank), *m};
  }
  merge_count_ = merges.size();
  if (options_.unk_token) {
    unk_id_ = find(*options_.unk_token);
    if (!unk_id_) fail("{}: unk_token '{}' is not in the vocabulary", source, *options_.unk_token);
  }
  for (int b = 0; b < 256; ++b) {
    auto id = find(fmt::format("<0x{:02X}>", b));
    byte_token_ids_[b] = id ? *id : -1;
  }
}

std::optional<int32_t> BpeModel::find(std::string_view token) const {
  auto it = token_to_id_.find(std::string(token));
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    if (auto id = find(word)) {
      out.push_back(*id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  std::string key;
  if (cacheable) {
    key.assign(word);
    std::lock_guard lock(cache_mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  merge_word(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::move(key), std::move(ids));
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  // Initial symbols: one per character; characters outside the vocabulary become
  // byte tokens (byte fallback) or unk, or are dropped when there is neither.
  std::vector<int32_t> ids;
  bool previous_was_unk = false;
  for (const auto& c : unicode::decode_utf8(word)) {
    std::string_view ch = word.substr(c.byte_offset, c.byte_length);
    if (auto id = find(ch)) {
      ids.push_back(*id);
      previous_was_unk = false;
      continue;
    }
    if (options_.byte_fallback) {
      bool all_bytes_known = true;
      for (unsigned char b : ch) all_bytes_known = all_bytes_known && byte_token_ids_[b] >= 0;
      if (all_bytes_known) {
        for (unsigned char b : ch) ids.push_back(byte_token_ids_[b]);
        previous_was_unk = false;
        continue;
      }
    }
    if (unk_id_) {
      if (!(options_.fuse_unk && previous_was_unk)) ids.push_back(*unk_id_);
      previous_was_unk = true;
    }
  }
  const int n = static_cast<int>(ids.size());
  std::vector<int> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (int i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;

  struct Candidate {
    int32_t rank;
    int pos;
    int32_t merged_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto push_pair = [&](int left) {
    const int right = next[left];
    if (right < 0) return;
    auto it = merges_.find(pair_key(ids[left], ids[right]));
    if (it != merges_.end()) queue.push({it->second.rank, left, it->second.merged_id});
  };
  for (int i = 0; i + 1 < n; ++i) push_pair(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    if (!alive[top.pos] || next[top.pos] < 0) continue;
    const int right = next[top.pos];
    // Entries go stale when a neighbour merged since they were pushed.
    auto it = merges_.find(pair_key(ids[top.pos], ids[right]));
    if (it == merges_.end() || it->second.merged_id != top.merged_id) continue;
    ids[top.pos] = top.merged_id;
    alive[right] = false;
    next[top.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = top.pos;
    if (prev[top.pos] >= 0) push_pair(prev[top.pos]);
    push_pair(top.pos);
  }
  for (int i = 0; i < n; ++i)
    if (alive[i]) out.push_back(ids[i]);
}

}  // namespace quarot
