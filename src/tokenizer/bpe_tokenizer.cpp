#include "tokenizer/bpe_tokenizer.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/error.h"
#include "common/json_number.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/unicode.h"

namespace quarot {
namespace {

using nlohmann::json;

const std::string kMetaspace = "\u2581";

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool special = true;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
};

struct NormalizerStep {
  enum class Kind { kPrepend, kReplace } kind;
  std::string pattern;  // kReplace
  std::string content;  // text to prepend / replacement
};

struct PreTokenizerStep {
  enum class Kind { kByteLevel, kSplit, kDigits, kMetaspace } kind;
  bool add_prefix_space = false;  // kByteLevel
  std::optional<SplitPattern> regex;  // kByteLevel (when use_regex) and kSplit
  bool individual_digits = false;     // kDigits
  std::string replacement = kMetaspace;  // kMetaspace
  enum class Prepend { kAlways, kFirst, kNever } prepend = Prepend::kAlways;
  bool split = true;
};

struct DecoderSpec {
  bool byte_level = false;       // map byte-alphabet characters back to bytes
  std::string metaspace;         // non-empty: replace it with a space
  bool byte_fallback = false;    // <0xNN> tokens are raw bytes
  size_t strip_leading_spaces = 0;
};

// A piece of text moving through the pre-tokenizer; at_text_start marks the piece
// that begins at offset 0 of the original input (Metaspace prepend_scheme "first").
struct Piece {
  std::string text;
  bool at_text_start;
};

const json& require(const json& j, const char* key, const std::string& source, const char* where) {
  auto it = j.find(key);
  if (it == j.end()) fail("{}: {} has no '{}'", source, where, key);
  return *it;
}

template <typename T>
T value_or(const json& j, const char* key, T def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  return it->get<T>();
}

void parse_normalizer(const json& j, std::vector<NormalizerStep>& steps, const std::string& source) {
  if (j.is_null()) return;
  const std::string type = value_or<std::string>(j, "type", "");
  if (type == "Sequence") {
    for (const auto& sub : require(j, "normalizers", source, "normalizer Sequence")) parse_normalizer(sub, steps, source);
  } else if (type == "Prepend") {
    steps.push_back({NormalizerStep::Kind::kPrepend, "", require(j, "prepend", source, "Prepend").get<std::string>()});
  } else if (type == "Replace") {
    const json& pattern = require(j, "pattern", source, "Replace");
    if (!pattern.contains("String")) fail("{}: normalizer Replace with a regex pattern is not supported", source);
    steps.push_back({NormalizerStep::Kind::kReplace, pattern["String"].get<std::string>(),
                     require(j, "content", source, "Replace").get<std::string>()});
  } else {
    fail("{}: unsupported normalizer type '{}'", source, type);
  }
}

PreTokenizerStep::Prepend parse_prepend_scheme(const json& j, const std::string& source) {
  if (j.contains("prepend_scheme")) {
    const std::string s = j["prepend_scheme"].get<std::string>();
    if (s == "always") return PreTokenizerStep::Prepend::kAlways;
    if (s == "first") return PreTokenizerStep::Prepend::kFirst;
    if (s == "never") return PreTokenizerStep::Prepend::kNever;
    fail("{}: unknown Metaspace prepend_scheme '{}'", source, s);
  }
  // Older files carry only add_prefix_space.
  return value_or<bool>(j, "add_prefix_space", true) ? PreTokenizerStep::Prepend::kAlways
                                                     : PreTokenizerStep::Prepend::kNever;
}

void parse_pre_tokenizer(const json& j, std::vector<PreTokenizerStep>& steps, const std::string& source) {
  if (j.is_null()) return;
  const std::string type = value_or<std::string>(j, "type", "");
  PreTokenizerStep step;
  if (type == "Sequence") {
    for (const auto& sub : require(j, "pretokenizers", source, "pre_tokenizer Sequence"))
      parse_pre_tokenizer(sub, steps, source);
    return;
  } else if (type == "ByteLevel") {
    step.kind = PreTokenizerStep::Kind::kByteLevel;
    step.add_prefix_space = value_or<bool>(j, "add_prefix_space", true);
    if (value_or<bool>(j, "use_regex", true)) step.regex = SplitPattern::kGpt2;
  } else if (type == "Split") {
    step.kind = PreTokenizerStep::Kind::kSplit;
    const json& pattern = require(j, "pattern", source, "Split");
    if (!pattern.contains("Regex")) fail("{}: Split pre-tokenizer with a plain string pattern is not supported", source);
    const std::string regex = pattern["Regex"].get<std::string>();
    step.regex = split_pattern_from_regex(regex);
    if (!step.regex) fail("{}: unsupported Split pre-tokenizer regex '{}'", source, regex);
    const std::string behavior = value_or<std::string>(j, "behavior", "Isolated");
    if (behavior != "Isolated" || value_or<bool>(j, "invert", false))
      fail("{}: unsupported Split behavior '{}' (only Isolated, not inverted)", source, behavior);
  } else if (type == "Digits") {
    step.kind = PreTokenizerStep::Kind::kDigits;
    step.individual_digits = value_or<bool>(j, "individual_digits", false);
  } else if (type == "Metaspace") {
    step.kind = PreTokenizerStep::Kind::kMetaspace;
    step.replacement = value_or<std::string>(j, "replacement", kMetaspace);
    step.prepend = parse_prepend_scheme(j, source);
    step.split = value_or<bool>(j, "split", true);
  } else {
    fail("{}: unsupported pre_tokenizer type '{}'", source, type);
  }
  steps.push_back(step);
}

void parse_decoder(const json& j, DecoderSpec& d, const std::string& source) {
  if (j.is_null()) return;
  const std::string type = value_or<std::string>(j, "type", "");
  if (type == "Sequence") {
    for (const auto& sub : require(j, "decoders", source, "decoder Sequence")) parse_decoder(sub, d, source);
  } else if (type == "ByteLevel") {
    d.byte_level = true;
  } else if (type == "Replace") {
    const json& pattern = require(j, "pattern", source, "Replace decoder");
    const std::string content = value_or<std::string>(j, "content", "");
    if (!pattern.contains("String") || content != " ")
      fail("{}: unsupported Replace decoder (only a string replaced by a space)", source);
    d.metaspace = pattern["String"].get<std::string>();
  } else if (type == "ByteFallback") {
    d.byte_fallback = true;
  } else if (type == "Fuse") {
    // Tokens are always fused into one string here.
  } else if (type == "Strip") {
    if (value_or<std::string>(j, "content", " ") != " " || value_or<size_t>(j, "stop", 0) != 0)
      fail("{}: unsupported Strip decoder (only leading spaces)", source);
    d.strip_leading_spaces = value_or<size_t>(j, "start", 0);
  } else if (type == "Metaspace") {
    d.metaspace = value_or<std::string>(j, "replacement", kMetaspace);
    d.strip_leading_spaces = parse_prepend_scheme(j, source) == PreTokenizerStep::Prepend::kNever ? 0 : 1;
  } else {
    fail("{}: unsupported decoder type '{}'", source, type);
  }
}

// JSON text of j. Strings that came from a GGUF are raw bytes and JSON cannot hold
// invalid UTF-8 (nlohmann throws its own type_error): such a tokenizer cannot be
// written out, which is an Error for the caller, not a crash (found by fuzz_gguf_tokenizer).
std::string dump_json(const json& j, const char* what) {
  try {
    return j.dump();
  } catch (const json::type_error& e) {
    fail("cannot write {}: a token or template is not valid UTF-8 ({})", what, e.what());
  }
}

std::vector<std::pair<std::string, std::string>> parse_merges(const json& merges, const std::string& source) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (const auto& m : merges) {
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        fail("{}: merge '{}' is not two tokens separated by one space", source, s);
      out.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      fail("{}: malformed merge entry {}", source, m.dump());
    }
  }
  return out;
}

std::optional<std::string> token_content(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) return j["content"].get<std::string>();
  return std::nullopt;
}

class BpeTokenizer final : public Tokenizer {
 public:
  BpeTokenizer(json tokenizer_json, TokenizerConfig config, const std::string& source)
      : json_(std::move(tokenizer_json)), config_(std::move(config)) {
    try {
      build(source);
    } catch (const nlohmann::json::exception& e) {
      fail("{}: malformed tokenizer.json: {}", source, e.what());
    }
  }

  std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 2);
    if (add_bos && bos_id_ >= 0) ids.push_back(bos_id_);
    size_t pos = 0;
    while (pos < text.size()) {
      const auto match = find_added_token(text, pos);
      const size_t segment_end = match ? match->begin : text.size();
      if (segment_end > pos) encode_segment(text.substr(pos, segment_end - pos), pos == 0, ids);
      if (!match) break;
      ids.push_back(match->id);
      pos = match->end;
    }
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string out;
    for (int32_t id : ids) out += token_text(id);
    size_t strip = 0;
    while (strip < decoder_.strip_leading_spaces && strip < out.size() && out[strip] == ' ') ++strip;
    return out.substr(strip);
  }

  std::string token_text(int32_t id) const override {
    if (id < 0 || id >= vocab_size_) fail("token id {} out of range [0, {})", id, vocab_size_);
    if (auto it = added_by_id_.find(id); it != added_by_id_.end()) return it->second;
    const std::string& token = model_->vocab()[id];
    if (decoder_.byte_fallback && token.size() == 6 && token.starts_with("<0x") && token.back() == '>') {
      const int value = std::stoi(token.substr(3, 2), nullptr, 16);
      return std::string(1, static_cast<char>(value));
    }
    std::string text = decoder_.byte_level ? byte_level::decode_chars(token) : token;
    if (!decoder_.metaspace.empty()) {
      for (size_t at = text.find(decoder_.metaspace); at != std::string::npos;
           at = text.find(decoder_.metaspace, at + 1))
        text.replace(at, decoder_.metaspace.size(), " ");
    }
    return text;
  }

  int64_t vocab_size() const override { return vocab_size_; }
  int32_t bos_id() const override { return bos_id_; }
  int32_t eos_id() const override { return eos_id_; }
  bool add_bos_default() const override { return add_bos_; }
  std::string chat_template() const override { return config_.chat_template; }

  std::string describe() const override {
    const bool byte_level = decoder_.byte_level;
    return fmt::format("{} ({} pre-tokenizer), {} tokens, {} merges",
                       byte_level ? "byte-level BPE" : "SentencePiece-style BPE with byte fallback", pre_name_,
                       vocab_size_, model_->merge_count());
  }

  std::string to_hf_json() const override { return dump_json(json_, "tokenizer.json"); }
  std::string to_hf_config_json() const override {
    return dump_json(tokenizer_config_to_json(config_), "tokenizer_config.json");
  }

 private:
  struct AddedMatch {
    size_t begin, end;
    int32_t id;
  };

  void build(const std::string& source) {
    if (!json_.is_object()) fail("{}: tokenizer.json is not a JSON object", source);
    const json& model = require(json_, "model", source, "tokenizer.json");
    const std::string type = value_or<std::string>(model, "type", "");
    if (type != "BPE") fail("{}: unsupported model type '{}'", source, type);
    if (!value_or<std::string>(model, "continuing_subword_prefix", "").empty() ||
        !value_or<std::string>(model, "end_of_word_suffix", "").empty())
      fail("{}: BPE continuing_subword_prefix / end_of_word_suffix are not supported", source);

    const json& vocab_json = require(model, "vocab", source, "model");
    if (!vocab_json.is_object()) fail("{}: model.vocab is not an object", source);
    std::vector<std::string> vocab(vocab_json.size());
    std::vector<bool> seen(vocab_json.size(), false);
    for (const auto& [token, id_json] : vocab_json.items()) {
      const int64_t id = json_number<int64_t>(id_json, fmt::format("{}: the id of vocab token '{}'", source, token));
      if (id < 0 || id >= static_cast<int64_t>(vocab.size()) || seen[id])
        fail("{}: vocab ids are not 0..{} without gaps (token '{}' has id {})", source, vocab.size() - 1, token, id);
      vocab[id] = token;
      seen[id] = true;
    }
    BpeOptions options;
    options.byte_fallback = value_or<bool>(model, "byte_fallback", false);
    options.fuse_unk = value_or<bool>(model, "fuse_unk", false);
    options.ignore_merges = value_or<bool>(model, "ignore_merges", false);
    if (model.contains("unk_token") && !model["unk_token"].is_null())
      options.unk_token = model["unk_token"].get<std::string>();
    const auto merges = parse_merges(require(model, "merges", source, "model"), source);
    model_ = std::make_unique<BpeModel>(std::move(vocab), merges, options, source);
    vocab_size_ = static_cast<int64_t>(model_->vocab().size());

    if (json_.contains("added_tokens")) {
      for (const auto& t : json_["added_tokens"]) {
        AddedToken a;
        a.id = json_number<int32_t>(require(t, "id", source, "added token"), source + ": an added token id");
        a.content = require(t, "content", source, "added token").get<std::string>();
        a.special = value_or<bool>(t, "special", false);
        a.lstrip = value_or<bool>(t, "lstrip", false);
        a.rstrip = value_or<bool>(t, "rstrip", false);
        a.single_word = value_or<bool>(t, "single_word", false);
        if (a.id < 0) fail("{}: added token '{}' has negative id {}", source, a.content, a.id);
        if (a.content.empty()) fail("{}: added token {} has empty content", source, a.id);
        vocab_size_ = std::max<int64_t>(vocab_size_, int64_t{a.id} + 1);
        added_by_id_[a.id] = a.content;
        added_.push_back(std::move(a));
      }
    }
    // Longest first so the first hit at a position is the leftmost-longest match.
    std::stable_sort(added_.begin(), added_.end(),
                     [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
    for (size_t i = 0; i < added_.size(); ++i)
      added_by_first_byte_[static_cast<unsigned char>(added_[i].content[0])].push_back(i);

    parse_normalizer(value_or<json>(json_, "normalizer", json()), normalizer_, source);
    parse_pre_tokenizer(value_or<json>(json_, "pre_tokenizer", json()), pre_tokenizer_, source);
    parse_decoder(value_or<json>(json_, "decoder", json()), decoder_, source);
    pre_name_ = describe_pre_tokenizer();

    // BOS from tokenizer_config.json when given, else from the post-processor template.
    std::optional<int32_t> template_bos;
    if (json_.contains("post_processor") && json_["post_processor"].is_object()) {
      const json& post = json_["post_processor"];
      if (value_or<std::string>(post, "type", "") == "TemplateProcessing" && post.contains("single") &&
          !post["single"].empty() && post["single"][0].contains("SpecialToken")) {
        const std::string name = post["single"][0]["SpecialToken"]["id"].get<std::string>();
        template_bos = lookup_token(name);
        if (!template_bos) fail("{}: post_processor special token '{}' is not a token", source, name);
      }
    }
    add_bos_ = config_.add_bos_token.value_or(template_bos.has_value());
    bos_id_ = -1;
    if (config_.bos_token) {
      auto id = lookup_token(*config_.bos_token);
      if (!id) fail("{}: bos_token '{}' is not a token", source, *config_.bos_token);
      bos_id_ = *id;
    } else if (template_bos) {
      bos_id_ = *template_bos;
    }
    if (add_bos_ && bos_id_ < 0) fail("{}: add_bos_token is set but no BOS token is defined", source);
    if (config_.eos_token) {
      auto id = lookup_token(*config_.eos_token);
      if (!id) fail("{}: eos_token '{}' is not a token", source, *config_.eos_token);
      eos_id_ = *id;
    }
  }

  std::optional<int32_t> lookup_token(const std::string& content) const {
    for (const auto& a : added_)
      if (a.content == content) return a.id;
    return model_->find(content);
  }

  std::string describe_pre_tokenizer() const {
    std::string name;
    for (const auto& s : pre_tokenizer_) {
      std::string part;
      switch (s.kind) {
        case PreTokenizerStep::Kind::kByteLevel: part = s.regex ? std::string(split_pattern_name(*s.regex)) : "bytes"; break;
        case PreTokenizerStep::Kind::kSplit: part = std::string(split_pattern_name(*s.regex)); break;
        case PreTokenizerStep::Kind::kDigits: part = "digits"; break;
        case PreTokenizerStep::Kind::kMetaspace: part = "metaspace"; break;
      }
      if (s.kind == PreTokenizerStep::Kind::kByteLevel && !s.regex && !name.empty()) continue;
      name += (name.empty() ? "" : "+") + part;
    }
    if (!normalizer_.empty()) name = (name.empty() ? "" : name + "+") + "sentencepiece-normalizer";
    return name.empty() ? "no" : name;
  }

  static bool is_word_char(char32_t cp) {
    return cp == U'_' || unicode::is_letter(cp) || unicode::is_number(cp);
  }

  // Leftmost-longest added token at or after pos, widened by lstrip/rstrip.
  std::optional<AddedMatch> find_added_token(std::string_view text, size_t pos) const {
    if (added_.empty()) return std::nullopt;
    for (size_t start = pos; start < text.size(); ++start) {
      const auto& candidates = added_by_first_byte_[static_cast<unsigned char>(text[start])];
      for (size_t index : candidates) {
        const AddedToken& a = added_[index];
        if (text.compare(start, a.content.size(), a.content) != 0) continue;
        size_t begin = start, end = start + a.content.size();
        if (a.single_word && !is_single_word(text, begin, end)) continue;
        if (a.lstrip)
          while (begin > pos && unicode::is_whitespace(static_cast<unsigned char>(text[begin - 1]))) --begin;
        if (a.rstrip)
          while (end < text.size() && unicode::is_whitespace(static_cast<unsigned char>(text[end]))) ++end;
        return AddedMatch{begin, end, a.id};
      }
    }
    return std::nullopt;
  }

  static bool is_single_word(std::string_view text, size_t begin, size_t end) {
    if (begin > 0) {
      const auto before = unicode::decode_utf8(text.substr(0, begin));
      if (!before.empty() && is_word_char(before.back().cp)) return false;
    }
    if (end < text.size()) {
      const auto after = unicode::decode_utf8(text.substr(end, std::min<size_t>(4, text.size() - end)));
      if (!after.empty() && is_word_char(after.front().cp)) return false;
    }
    return true;
  }

  void encode_segment(std::string_view segment, bool at_text_start, std::vector<int32_t>& ids) const {
    std::string normalized(segment);
    for (const auto& n : normalizer_) {
      if (n.kind == NormalizerStep::Kind::kPrepend) {
        if (!normalized.empty()) normalized = n.content + normalized;
      } else {
        normalized = replace_all(normalized, n.pattern, n.content);
      }
    }
    std::vector<Piece> pieces{{std::move(normalized), at_text_start}};
    for (const auto& step : pre_tokenizer_) pieces = apply_step(step, std::move(pieces));
    for (const auto& p : pieces) model_->encode_word(p.text, ids);
  }

  static std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
    if (from.empty()) return s;
    std::string out;
    size_t pos = 0;
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, pos)) {
      out.append(s, pos, at - pos);
      out += to;
      pos = at + from.size();
    }
    out.append(s, pos);
    return out;
  }

  static void push_views(std::vector<Piece>& out, const std::vector<std::string_view>& views, bool first_at_start) {
    for (size_t i = 0; i < views.size(); ++i)
      if (!views[i].empty()) out.push_back({std::string(views[i]), first_at_start && i == 0});
  }

  static std::vector<Piece> apply_step(const PreTokenizerStep& step, std::vector<Piece> pieces) {
    std::vector<Piece> out;
    out.reserve(pieces.size());
    for (auto& piece : pieces) {
      switch (step.kind) {
        case PreTokenizerStep::Kind::kByteLevel: {
          if (step.add_prefix_space && !piece.text.starts_with(' ')) piece.text.insert(0, 1, ' ');
          if (step.regex) {
            bool first = piece.at_text_start;
            for (std::string_view v : split_by_pattern(piece.text, *step.regex)) {
              out.push_back({byte_level::encode_bytes(v), first});
              first = false;
            }
          } else {
            out.push_back({byte_level::encode_bytes(piece.text), piece.at_text_start});
          }
          break;
        }
        case PreTokenizerStep::Kind::kSplit:
          push_views(out, split_by_pattern(piece.text, *step.regex), piece.at_text_start);
          break;
        case PreTokenizerStep::Kind::kDigits:
          push_views(out, split_digits(piece.text, step.individual_digits), piece.at_text_start);
          break;
        case PreTokenizerStep::Kind::kMetaspace: {
          std::string text = replace_all(piece.text, " ", step.replacement);
          const bool prepend = step.prepend == PreTokenizerStep::Prepend::kAlways ||
                               (step.prepend == PreTokenizerStep::Prepend::kFirst && piece.at_text_start);
          if (prepend && !text.starts_with(step.replacement)) text = step.replacement + text;
          if (!step.split) {
            out.push_back({std::move(text), piece.at_text_start});
            break;
          }
          // Each replacement character starts a new piece (HF MergedWithNext).
          size_t begin = 0;
          for (size_t at = text.find(step.replacement, 1); at != std::string::npos;
               at = text.find(step.replacement, at + 1)) {
            if (at > begin) out.push_back({text.substr(begin, at - begin), piece.at_text_start && begin == 0});
            begin = at;
          }
          if (begin < text.size()) out.push_back({text.substr(begin), piece.at_text_start && begin == 0});
          break;
        }
      }
    }
    return out;
  }

  json json_;
  TokenizerConfig config_;
  std::unique_ptr<BpeModel> model_;
  int64_t vocab_size_ = 0;
  std::vector<AddedToken> added_;
  std::array<std::vector<size_t>, 256> added_by_first_byte_;
  std::unordered_map<int32_t, std::string> added_by_id_;
  std::vector<NormalizerStep> normalizer_;
  std::vector<PreTokenizerStep> pre_tokenizer_;
  DecoderSpec decoder_;
  std::string pre_name_;
  int32_t bos_id_ = -1;
  int32_t eos_id_ = -1;
  bool add_bos_ = false;
};

}  // namespace

TokenizerConfig parse_tokenizer_config(const json& config, const std::string& source) {
  TokenizerConfig out;
  if (config.is_null()) return out;
  if (!config.is_object()) fail("{}: tokenizer_config.json is not a JSON object", source);
  if (config.contains("bos_token")) out.bos_token = token_content(config["bos_token"]);
  if (config.contains("eos_token")) out.eos_token = token_content(config["eos_token"]);
  if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean())
    out.add_bos_token = config["add_bos_token"].get<bool>();
  if (config.contains("chat_template")) {
    const json& t = config["chat_template"];
    if (t.is_string()) {
      out.chat_template = t.get<std::string>();
    } else if (t.is_array()) {  // named templates: use "default"
      for (const auto& entry : t)
        if (entry.value("name", "") == "default") out.chat_template = entry.value("template", "");
    }
  }
  return out;
}

json tokenizer_config_to_json(const TokenizerConfig& config) {
  json j = json::object();
  if (config.bos_token) j["bos_token"] = *config.bos_token;
  if (config.eos_token) j["eos_token"] = *config.eos_token;
  if (config.add_bos_token) j["add_bos_token"] = *config.add_bos_token;
  if (!config.chat_template.empty()) j["chat_template"] = config.chat_template;
  return j;
}

std::unique_ptr<Tokenizer> make_bpe_tokenizer(json tokenizer_json, TokenizerConfig config, const std::string& source) {
  return std::make_unique<BpeTokenizer>(std::move(tokenizer_json), std::move(config), source);
}

}  // namespace quarot
