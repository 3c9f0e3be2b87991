// Text primitives for the tokenizer: UTF-8 walking, PCRE2 regexes, Unicode character classes and
// GPT-2's byte-level alphabet. Unicode data comes from PCRE2 and utf8proc, never from our own tables.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

struct pcre2_real_code_8;

namespace moeq::tok {

struct Span {
  size_t begin = 0;
  size_t end = 0;
};

// A non-owning reference to a callable, for callbacks that run before the call returns. Unlike
// std::function it never allocates, which matters when it is made once per pre-tokenized piece.
template <typename Signature>
class FunctionRef;
template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  template <typename F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef> && std::is_invocable_r_v<R, F&, Args...>)
  FunctionRef(F&& callable)  // NOLINT(google-explicit-constructor): a lambda converts where a callback is taken
      : object_(const_cast<void*>(static_cast<const void*>(std::addressof(callable)))),
        call_([](void* object, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(object))(std::forward<Args>(args)...);
        }) {}
  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

// Byte length of the UTF-8 sequence that starts with `lead` (1 for a stray byte).
size_t utf8_length(unsigned char lead);
// Decodes the code point at `pos` (text must be valid UTF-8).
char32_t utf8_decode(std::string_view text, size_t pos);
void utf8_append(std::string& out, char32_t cp);
// Offset of the first byte that is not part of valid UTF-8, or nullopt when all of it is.
std::optional<size_t> find_invalid_utf8(std::string_view text);
// Rust's String::from_utf8_lossy: each maximal ill-formed subsequence becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

// A compiled PCRE2 pattern in UTF + UCP mode (\p{L}, \s and \w mean their Unicode classes).
// Immutable after construction and safe to share between threads.
class Regex {
 public:
  enum class Kind { Pattern, Literal };
  // `where` prefixes the error message when the pattern does not compile.
  Regex(std::string_view pattern, Kind kind, std::string_view where);

  // Non-overlapping matches from left to right. An empty match right where the previous match
  // ended is skipped, as Rust's regex and Oniguruma (which Hugging Face tokenizers use) do.
  void for_each_match(std::string_view text, FunctionRef<void(Span)> on_match) const;
  std::vector<Span> find_all(std::string_view text) const;
  // Length of the match anchored at `pos`, or nullopt.
  std::optional<size_t> match_at(std::string_view text, size_t pos) const;

 private:
  int match(std::string_view text, size_t pos, uint32_t options, Span& found) const;
  std::shared_ptr<pcre2_real_code_8> code_;
};

// Rust's char::is_whitespace (the Unicode White_Space property).
bool is_white_space(char32_t cp);
// Rust regex's \w: Alphabetic, marks, decimal digits, connector punctuation, joiners.
bool is_word_char(char32_t cp);
// Byte offset where the run of trailing white space begins (text.size() when there is none).
size_t trailing_white_space_begin(std::string_view text);
// Byte length of the run of leading white space.
size_t leading_white_space_end(std::string_view text);

// GPT-2's bytes_to_unicode(): the 188 printable Latin-1 bytes stand for themselves, the other
// 68 bytes map in order to U+0100, U+0101, ... so that every byte is a visible character.
class ByteLevelAlphabet {
 public:
  static const ByteLevelAlphabet& get();
  // Appends the UTF-8 of the character standing for each byte of `text`.
  void encode(std::string_view text, std::string& out) const;
  // The byte a character stands for, or -1 when it is not in the alphabet.
  int byte_of(char32_t cp) const;

 private:
  ByteLevelAlphabet();
  std::array<std::string, 256> char_of_byte_;
  std::array<int16_t, 324> byte_of_char_{};
};

}  // namespace moeq::tok
