// The BPE model of Hugging Face tokenizers: a word (one pre-tokenized piece) → token ids.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/tokenizer_json.h"

namespace moeq::tok {

// Heterogeneous lookup so that string_views find std::string keys without a copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // Words already tokenized during one encode call. Long texts repeat their words many times;
  // a per-call cache needs no locking, so one Tokenizer can encode from many threads.
  class Cache {
   public:
    bool lookup(std::string_view word, std::vector<int32_t>& out) const;
    void store(std::string_view word, const int32_t* ids, size_t count);

   private:
    std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, StringHash, std::equal_to<>> spans_;
    std::vector<int32_t> ids_;
  };

  // Reads the "model" object of tokenizer.json (type BPE).
  static BpeModel from_json(const JsonNode& model);

  // Appends the ids of `word`. `cache` may be null.
  void encode(std::string_view word, Cache* cache, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token's string, or nullptr for an id the vocabulary does not have.
  const std::string* id_to_token(int32_t id) const;
  int64_t size() const { return int64_t(id_to_token_.size()); }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool removed;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
  }

  void read_vocab(const JsonNode& vocab);
  void read_merges(const JsonNode& merges);
  void initial_symbols(std::string_view word, std::vector<Symbol>& symbols) const;
  void merge_all(std::vector<Symbol>& symbols) const;

  Vocab vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::array<int32_t, 256> byte_ids_{};  // <0xNN> tokens for byte_fallback, -1 where absent
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
};

}  // namespace moeq::tok
