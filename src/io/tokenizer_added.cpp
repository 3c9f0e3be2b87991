// Added (and special) tokens: cut out of the text before normalization and pre-tokenization.
#include <algorithm>

#include "io/tokenizer_impl.h"

namespace moeq::tok {
namespace {

constexpr size_t kNone = std::string_view::npos;

// Rust regex's `\w$` and `^\w`, which tokenizers uses for single_word.
bool ends_with_word(std::string_view text) {
  if (text.empty()) return false;
  size_t begin = text.size() - 1;
  while (begin > 0 && (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80) --begin;
  return is_word_char(utf8_decode(text, begin));
}

bool starts_with_word(std::string_view text) { return !text.empty() && is_word_char(utf8_decode(text, 0)); }

}  // namespace

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& token = tokens_[i];
    index_of_id_.emplace(token.id, i);
    index_of_content_.emplace(token.content, i);
    if (token.content.empty()) continue;
    if (!token.normalized) {
      raw_patterns_.push_back({token.content, i});
      continue;
    }
    // Tokens with normalized=true are looked for in normalized text, so in normalized form.
    std::string text = token.content;
    if (normalizer) normalizer->normalize(text);
    if (!text.empty()) normalized_patterns_.push_back({std::move(text), i});
  }
}

const AddedToken* AddedVocabulary::by_id(int32_t id) const {
  const auto it = index_of_id_.find(id);
  return it == index_of_id_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::by_content(std::string_view content) const {
  const auto it = index_of_content_.find(content);
  return it == index_of_content_.end() ? nullptr : &tokens_[it->second];
}

// The leftmost match at or after `from`, the longest where several start there (aho-corasick's
// LeftmostLongest). `next_at` caches each pattern's next occurrence so that a long text is
// scanned once per pattern rather than once per match.
auto AddedVocabulary::next_match(std::string_view text, size_t from, const std::vector<Pattern>& patterns,
                                 std::vector<size_t>& next_at) -> std::optional<Found> {
  size_t best = kNone;
  for (size_t i = 0; i < patterns.size(); ++i) {
    if (next_at[i] != kNone && next_at[i] < from) next_at[i] = text.find(patterns[i].text, from);
    if (next_at[i] == kNone) continue;
    if (best == kNone || next_at[i] < next_at[best] ||
        (next_at[i] == next_at[best] && patterns[i].text.size() > patterns[best].text.size()))
      best = i;
  }
  if (best == kNone) return std::nullopt;
  return Found{next_at[best], next_at[best] + patterns[best].text.size(), patterns[best].token};
}

std::vector<Segment> AddedVocabulary::split(std::string_view text, Stage stage) const {
  const std::vector<Pattern>& patterns = stage == Stage::Raw ? raw_patterns_ : normalized_patterns_;
  std::vector<Segment> segments;
  if (text.empty()) return segments;
  std::vector<size_t> next_at(patterns.size());
  for (size_t i = 0; i < patterns.size(); ++i) next_at[i] = text.find(patterns[i].text);

  size_t done = 0;
  for (size_t from = 0; const auto match = next_match(text, from, patterns, next_at);) {
    from = match->end;
    const AddedToken& token = tokens_[match->token];
    size_t begin = match->begin;
    size_t end = match->end;
    if (token.single_word && (ends_with_word(text.substr(0, begin)) || starts_with_word(text.substr(end))))
      continue;
    // lstrip never reaches back into what an earlier match already took.
    if (token.lstrip) begin = std::max(trailing_white_space_begin(text.substr(0, begin)), done);
    if (token.rstrip) end += leading_white_space_end(text.substr(end));
    if (done < begin) segments.push_back({done, begin, std::nullopt});
    segments.push_back({begin, end, token.id});
    done = end;
  }
  if (done < text.size()) segments.push_back({done, text.size(), std::nullopt});
  return segments;
}

}  // namespace moeq::tok
