// moeq::Tokenizer: runs the pipeline of a Hugging Face tokenizer.json, stage by stage as
// tokenizers' Tokenizer::encode does: added tokens → normalizer → added tokens (normalized) →
// pre-tokenizer → BPE per piece → post-processor. Loading is in tokenizer_load.cpp.
#include "io/tokenizer.h"

#include <algorithm>

#include "core/error.h"
#include "io/tokenizer_impl.h"

namespace moeq {

using tok::AddedVocabulary;
using tok::Piece;
using tok::Segment;

std::optional<int32_t> Tokenizer::Impl::token_to_id(std::string_view token) const {
  if (const tok::AddedToken* added_token = added.by_content(token)) return added_token->id;
  return model.token_to_id(token);
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  if (const auto bad = tok::find_invalid_utf8(text))
    fail("tokenizer: the text to encode is not valid UTF-8 (at byte {})", *bad);
  const Impl& im = *impl_;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3);
  if (add_special_tokens) ids = im.special_ids.before;
  tok::BpeModel::Cache cache;
  for (const Segment& raw : im.added.split(text, AddedVocabulary::Stage::Raw)) {
    if (raw.id) {
      ids.push_back(*raw.id);
      continue;
    }
    std::string normalized(text.substr(raw.begin, raw.end - raw.begin));
    if (im.normalizer) im.normalizer->normalize(normalized);
    for (const Segment& segment : im.added.split(normalized, AddedVocabulary::Stage::Normalized)) {
      if (segment.id) {
        ids.push_back(*segment.id);
        continue;
      }
      const Piece piece{std::string_view(normalized).substr(segment.begin, segment.end - segment.begin),
                        raw.begin == 0 && segment.begin == 0};
      const auto encode_piece = [&](const Piece& word) { im.model.encode(word.text, &cache, ids); };
      if (im.pre_tokenizer) {
        im.pre_tokenizer->pre_tokenize(piece, encode_piece);
      } else {
        encode_piece(piece);
      }
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), im.special_ids.after.begin(), im.special_ids.after.end());
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  const Impl& im = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int32_t id : ids) {
    const tok::AddedToken* added_token = im.added.by_id(id);
    const std::string* token = added_token ? &added_token->content : im.model.id_to_token(id);
    // Ids outside the vocabulary are skipped, as tokenizers does (models often pad their
    // embedding matrix beyond the vocabulary).
    if (!token) continue;
    if (skip_special_tokens) {
      const tok::AddedToken* special = im.added.by_content(*token);
      if (special && special->special) continue;
    }
    tokens.push_back(*token);
  }
  std::string text;
  if (!im.decoder) {
    for (size_t i = 0; i < tokens.size(); ++i) text += (i ? " " : "") + tokens[i];
    return text;
  }
  im.decoder->decode_chain(tokens);
  for (const std::string& piece : tokens) text += piece;
  return text;
}

int64_t Tokenizer::vocab_size() const {
  int64_t size = impl_->model.size();
  for (const tok::AddedToken& token : impl_->added.tokens()) size = std::max(size, int64_t(token.id) + 1);
  return size;
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const { return impl_->token_to_id(token); }
std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos_id; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos_id; }

}  // namespace moeq
