// Hugging Face tokenizer.json: byte-level BPE (GPT-2 / Llama-3 / Qwen style) and
// SentencePiece-style BPE (metaspace, byte fallback: Mixtral / Llama-2 style).
//
// Encoding reproduces Hugging Face tokenizers exactly (checked against tokenizers 0.23 on the
// models' WikiText-2 ids): added tokens are cut out first, then normalizer, pre-tokenizer and the
// BPE model run per piece, then the post-processor. Supported components:
//   model           BPE (merges as "a b" or [a, b]; continuing_subword_prefix, end_of_word_suffix,
//                   ignore_merges, byte_fallback, unk_token, fuse_unk; dropout must be null/0)
//   normalizer      NFC NFD NFKC NFKD Lowercase Prepend Replace Strip Sequence
//   pre_tokenizer   ByteLevel Split Metaspace Digits Punctuation Whitespace WhitespaceSplit
//                   BertPreTokenizer Sequence
//   post_processor  TemplateProcessing ByteLevel RobertaProcessing BertProcessing Sequence
//   decoder         ByteLevel Metaspace ByteFallback Fuse Strip Replace BPEDecoder Sequence
// Anything else fails at load with the file and field named. truncation and padding are not
// applied: callers window and batch ids themselves.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moeq {

class Tokenizer {
 public:
  // Reads tokenizer.json (and tokenizer_config.json beside it when present, for bos/eos).
  // Throws moeq::Error naming the file and field on malformed input.
  static Tokenizer load(const std::filesystem::path& tokenizer_json);

  // Text → ids. add_special_tokens applies the post-processor (e.g. a BOS), as HF's
  // tokenizer(text, add_special_tokens=...) does. Throws moeq::Error if `text` is not valid
  // UTF-8. Safe to call from several threads at once.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const;
  // Ids → text. Ids outside the vocabulary are skipped and byte sequences that are not UTF-8
  // become U+FFFD, both as HF does; skip_special_tokens drops added tokens marked special.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // Largest id (model vocabulary or added token) + 1.
  int64_t vocab_size() const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // tokenizer_config.json's bos_token / eos_token; nullopt when absent or null. The trained
  // models here say bos_token null and eos_token <|endoftext|> (0); their config.json gives
  // bos_token_id 0 as well.
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

 private:
  struct Impl;  // defined in tokenizer_impl.h
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace moeq
