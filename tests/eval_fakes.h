// Stand-ins for the evaluation tests that need no trained model: a word-level tokenizer shaped
// like GPT-2's pre-tokenizer, and a deterministic language model whose logits at each position
// depend on every token before it (so a wrongly shared or forked context changes the scores).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "eval/lm_backend.h"

namespace moeq::testing {

// Pieces: an optional single space followed by a run of non-space characters, or one whitespace
// character. Ids are handed out in order of first sight (0 is reserved for end-of-text).
class WordTokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) {
    std::vector<int32_t> ids;
    size_t i = 0;
    while (i < text.size()) {
      size_t j = i;
      if (text[j] == ' ' && j + 1 < text.size() && !is_space(text[j + 1])) ++j;
      if (is_space(text[j])) {
        j = i + 1;
      } else {
        while (j < text.size() && !is_space(text[j])) ++j;
      }
      ids.push_back(id(text.substr(i, j - i)));
      i = j;
    }
    return ids;
  }
  int32_t id(std::string_view piece) { return vocab_.try_emplace(std::string(piece), int32_t(vocab_.size() + 1)).first->second; }

 private:
  static bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t'; }
  std::map<std::string, int32_t> vocab_;
};

// logits[v] at a position = a hash of (every token up to and including it, v), in [-4, 4).
class HashLm : public LmBackend {
 public:
  explicit HashLm(int64_t vocab) : vocab_(vocab) {}
  struct History : State {
    std::vector<int32_t> tokens;
    uint64_t hash = 1469598103934665603ull;
    int64_t capacity = 0;
  };
  int64_t vocab_size() const override { return vocab_; }
  std::unique_ptr<State> start(int64_t capacity) override {
    auto h = std::make_unique<History>();
    h->capacity = capacity;
    return h;
  }
  std::unique_ptr<State> fork(const State& s) override {
    ++forks;
    return std::make_unique<History>(static_cast<const History&>(s));
  }
  Tensor extend(State& s, std::span<const int32_t> ids, int64_t skip) override {
    auto& h = static_cast<History&>(s);
    Tensor all({int64_t(ids.size()), vocab_});
    for (size_t i = 0; i < ids.size(); ++i) {
      h.tokens.push_back(ids[i]);
      if (int64_t(h.tokens.size()) > h.capacity) overflowed = true;
      h.hash = (h.hash ^ uint64_t(ids[i] + 1)) * 1099511628211ull;
      for (int64_t v = 0; v < vocab_; ++v) {
        uint64_t x = (h.hash ^ uint64_t(v) * 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
        all.row(int64_t(i))[v] = float(double(x >> 40) / double(1ull << 24) * 8.0 - 4.0);
      }
    }
    tokens_run += int64_t(ids.size());
    logits_rows += int64_t(ids.size()) - skip;
    Tensor logits({int64_t(ids.size()) - skip, vocab_});
    std::copy(all.data.begin() + skip * vocab_, all.data.end(), logits.data.begin());
    return logits;
  }
  int64_t tokens_run = 0, logits_rows = 0, forks = 0;
  bool overflowed = false;

 private:
  int64_t vocab_;
};

}  // namespace moeq::testing
