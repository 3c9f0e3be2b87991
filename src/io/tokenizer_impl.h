// Private parts of moeq::Tokenizer: the pipeline stages of a Hugging Face tokenizer.json
// (normalizer → pre-tokenizer → model → post-processor; decoder for the way back) and the added
// tokens that are cut out of the text before any of them runs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/tokenizer.h"
#include "io/tokenizer_bpe.h"
#include "io/tokenizer_json.h"
#include "io/tokenizer_text.h"

namespace moeq::tok {

// A span of text on its way to the model. `at_input_start`: it begins at offset 0 of the text
// given to encode (Metaspace's prepend_scheme "first" adds its ▁ only there). The text is a view
// that lives until the callback it is passed to returns.
struct Piece {
  std::string_view text;
  bool at_input_start = false;
};
using PieceSink = FunctionRef<void(const Piece&)>;

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Emits the splits of `piece` in order, never an empty one. Every pre-tokenizer of tokenizers
  // works on each split independently, so pieces stream through the stages to the model one by
  // one instead of being gathered in lists that, for a long text, outgrow the caches.
  virtual void pre_tokenize(const Piece& piece, PieceSink emit) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // tokenizers' decode_chain: token strings in, strings out, concatenated by the caller.
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// Each factory reads one component object of tokenizer.json and fails naming the field for
// anything it does not support.
std::unique_ptr<Normalizer> make_normalizer(const JsonNode& node);
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonNode& node);
std::unique_ptr<Decoder> make_decoder(const JsonNode& node);
// SentencePiece's precompiled_charsmap rules (io/tokenizer_precompiled.cpp); make_normalizer's "Precompiled".
std::unique_ptr<Normalizer> make_precompiled(const JsonNode& node);

// The components listed in `list` (the members of a Sequence), each made by `make`.
template <typename Component>
std::vector<std::unique_ptr<Component>> make_each(const JsonNode& list,
                                                  std::unique_ptr<Component> (*make)(const JsonNode&)) {
  std::vector<std::unique_ptr<Component>> components;
  for (size_t i = 0; i < list.array_size(); ++i) components.push_back(make(list.element(i)));
  return components;
}

// {"String": s} (matched literally) or {"Regex": r}: the pattern of Split and Replace.
Regex read_pattern(const JsonNode& pattern);
std::string replace_all(const Regex& pattern, std::string_view text, std::string_view content);

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// A span of text and, where it is an added token, that token's id.
struct Segment {
  size_t begin = 0;
  size_t end = 0;
  std::optional<int32_t> id;
};

// Added tokens are found in the text before normalization and pre-tokenization (those with
// normalized=false in the raw text, the others in the normalized text), leftmost and longest
// first, honouring their single_word/lstrip/rstrip flags, as tokenizers' AddedVocabulary does.
class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  enum class Stage { Raw, Normalized };
  // Segments covering all of `text`: added tokens and the text between them (never empty).
  std::vector<Segment> split(std::string_view text, Stage stage) const;

  const AddedToken* by_id(int32_t id) const;
  const AddedToken* by_content(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  struct Pattern {
    std::string text;  // the content, normalized for tokens with normalized=true
    size_t token;      // index into tokens_
  };
  struct Found {
    size_t begin;
    size_t end;
    size_t token;  // index into tokens_
  };
  static std::optional<Found> next_match(std::string_view text, size_t from, const std::vector<Pattern>& patterns,
                                         std::vector<size_t>& next_at);

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> index_of_id_;
  std::unordered_map<std::string, size_t, StringHash, std::equal_to<>> index_of_content_;
  std::vector<Pattern> raw_patterns_;
  std::vector<Pattern> normalized_patterns_;
};

// The ids the post-processor puts around a single sequence when add_special_tokens is set
// (TemplateProcessing's "single" template, RobertaProcessing/BertProcessing's cls and sep).
struct SpecialIds {
  std::vector<int32_t> before;
  std::vector<int32_t> after;
};
SpecialIds read_post_processor(const JsonNode& node);

}  // namespace moeq::tok

namespace moeq {

struct Tokenizer::Impl {
  std::filesystem::path file;
  tok::BpeModel model;
  std::unique_ptr<tok::Normalizer> normalizer;      // null: none
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;  // null: the whole text is one word
  std::unique_ptr<tok::Decoder> decoder;             // null: tokens joined by spaces
  tok::AddedVocabulary added;
  tok::SpecialIds special_ids;
  std::optional<int32_t> bos_id;
  std::optional<int32_t> eos_id;

  // Added tokens first, then the model's vocabulary.
  std::optional<int32_t> token_to_id(std::string_view token) const;
};

}  // namespace moeq
