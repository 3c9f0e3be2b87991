// Hugging Face tokenizer.json: byte-level BPE (GPT-2 / Llama-3 / Qwen style) and
// SentencePiece-style BPE (metaspace, byte fallback: Mixtral / Llama-2 style).
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
  // Reads tokenizer.json (and tokenizer_config.json beside it when present).
  // Throws moeq::Error naming the file and field on malformed input.
  static Tokenizer load(const std::filesystem::path& tokenizer_json);

  // Text → ids. add_special_tokens applies the post-processor (e.g. a BOS), as HF's
  // tokenizer(text, add_special_tokens=...) does.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  int64_t vocab_size() const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace moeq
