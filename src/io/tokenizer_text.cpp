#include "io/tokenizer_text.h"

#include <pcre2.h>

#include "core/error.h"

namespace moeq::tok {
namespace {

// Length of the well-formed UTF-8 sequence at `pos` (0 when ill-formed). `maximal` receives the
// length of its longest well-formed prefix (at least 1): the unit that Unicode's "substitution of
// maximal subparts" (and Rust's from_utf8_lossy) replaces by one U+FFFD.
size_t sequence_at(std::string_view s, size_t pos, size_t& maximal) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  maximal = 1;
  if (b0 < 0x80) return 1;
  size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte; later bytes are always 80..BF
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // beyond U+10FFFF
  } else {
    return 0;
  }
  size_t k = 1;
  for (; k < need && pos + k < s.size(); ++k) {
    const auto b = static_cast<unsigned char>(s[pos + k]);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
  }
  maximal = k;
  return k == need ? need : 0;
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};
struct MatchContextDeleter {
  void operator()(pcre2_match_context* context) const { pcre2_match_context_free(context); }
};
struct JitStackDeleter {
  void operator()(pcre2_jit_stack* stack) const { pcre2_jit_stack_free(stack); }
};

// Per-search state. The JIT's default 32 KiB stack overflows on very long runs of white space
// under `\s+(?!\S)`; only then is a larger stack made, so ordinary searches stay allocation-light.
class Matcher {
 public:
  explicit Matcher(const pcre2_code* code)
      : code_(code), data_(pcre2_match_data_create_from_pattern(code, nullptr)) {
    if (!data_) throw std::bad_alloc();
  }

  bool find(std::string_view text, size_t pos, uint32_t options, Span& found) {
    int rc = run(text, pos, options);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !stack_) {
      stack_.reset(pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr));
      context_.reset(pcre2_match_context_create(nullptr));
      if (!stack_ || !context_) throw std::bad_alloc();
      pcre2_jit_stack_assign(context_.get(), nullptr, stack_.get());
      rc = run(text, pos, options);
    }
    if (rc == PCRE2_ERROR_NOMATCH) return false;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof message);
      fail("tokenizer: regex search failed: {}", reinterpret_cast<const char*>(message));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data_.get());
    found = {ovector[0], ovector[1]};
    return true;
  }

 private:
  int run(std::string_view text, size_t pos, uint32_t options) {
    // The whole input was validated once in Tokenizer::encode; re-checking every call would make
    // repeated searches over one long text quadratic.
    return pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos,
                       options | PCRE2_NO_UTF_CHECK, data_.get(), context_.get());
  }

  const pcre2_code* code_;
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> data_;
  std::unique_ptr<pcre2_match_context, MatchContextDeleter> context_;
  std::unique_ptr<pcre2_jit_stack, JitStackDeleter> stack_;
};

bool matches_char(const Regex& regex, char32_t cp) {
  std::string utf8;
  utf8_append(utf8, cp);
  return regex.match_at(utf8, 0).has_value();
}

}  // namespace

size_t utf8_length(unsigned char lead) {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

char32_t utf8_decode(std::string_view text, size_t pos) {
  const auto b0 = static_cast<unsigned char>(text[pos]);
  const size_t n = utf8_length(b0);
  if (n == 1) return b0;
  char32_t cp = b0 & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(text[pos + k]) & 0x3F);
  return cp;
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::optional<size_t> find_invalid_utf8(std::string_view text) {
  size_t maximal = 0;
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = sequence_at(text, pos, maximal);
    if (n == 0) return pos;
    pos += n;
  }
  return std::nullopt;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t maximal = 0;
  for (size_t pos = 0; pos < bytes.size();) {
    const size_t n = sequence_at(bytes, pos, maximal);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      pos += maximal;
    } else {
      out.append(bytes.substr(pos, n));
      pos += n;
    }
  }
  return out;
}

Regex::Regex(std::string_view pattern, Kind kind, std::string_view where) {
  // PCRE2_LITERAL admits no UCP (a literal has no character classes to widen).
  const uint32_t options = PCRE2_UTF | (kind == Kind::Literal ? PCRE2_LITERAL : PCRE2_UCP);
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options, &error, &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof message);
    fail("{}: bad regex at offset {}: {}", where, offset, reinterpret_cast<const char*>(message));
  }
  // JIT is an optimisation only: where it is unavailable pcre2_match interprets the pattern.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_.reset(code, pcre2_code_free);
}

void Regex::for_each_match(std::string_view text, FunctionRef<void(Span)> on_match) const {
  Matcher matcher(code_.get());
  std::optional<size_t> previous_end;
  size_t pos = 0;
  Span found;
  while (pos <= text.size() && matcher.find(text, pos, 0, found)) {
    if (found.begin != found.end) {
      on_match(found);
      previous_end = found.end;
      pos = found.end;
      continue;
    }
    if (previous_end != found.end) {
      on_match(found);
      previous_end = found.end;
    }
    if (found.end >= text.size()) break;
    pos = found.end + utf8_length(static_cast<unsigned char>(text[found.end]));
  }
}

std::vector<Span> Regex::find_all(std::string_view text) const {
  std::vector<Span> matches;
  for_each_match(text, [&](Span match) { matches.push_back(match); });
  return matches;
}

std::optional<size_t> Regex::match_at(std::string_view text, size_t pos) const {
  Matcher matcher(code_.get());
  Span found;
  if (!matcher.find(text, pos, PCRE2_ANCHORED, found)) return std::nullopt;
  return found.end - found.begin;
}

bool is_white_space(char32_t cp) {
  static const Regex white_space(R"(\p{White_Space})", Regex::Kind::Pattern, "white space class");
  return matches_char(white_space, cp);
}

bool is_word_char(char32_t cp) {
  static const Regex word(R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}])",
                          Regex::Kind::Pattern, "word class");
  return matches_char(word, cp);
}

size_t leading_white_space_end(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size() && is_white_space(utf8_decode(text, pos)))
    pos += utf8_length(static_cast<unsigned char>(text[pos]));
  return pos;
}

size_t trailing_white_space_begin(std::string_view text) {
  size_t end = text.size();
  while (end > 0) {
    size_t begin = end - 1;
    while (begin > 0 && (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80) --begin;
    if (!is_white_space(utf8_decode(text, begin))) break;
    end = begin;
  }
  return end;
}

const ByteLevelAlphabet& ByteLevelAlphabet::get() {
  static const ByteLevelAlphabet alphabet;
  return alphabet;
}

ByteLevelAlphabet::ByteLevelAlphabet() {
  byte_of_char_.fill(-1);
  char32_t next_extra = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const char32_t cp = printable ? char32_t(b) : next_extra++;
    utf8_append(char_of_byte_[b], cp);
    byte_of_char_[cp] = int16_t(b);
  }
}

void ByteLevelAlphabet::encode(std::string_view text, std::string& out) const {
  for (char c : text) out += char_of_byte_[static_cast<unsigned char>(c)];
}

int ByteLevelAlphabet::byte_of(char32_t cp) const {
  return cp < byte_of_char_.size() ? byte_of_char_[cp] : -1;
}

}  // namespace moeq::tok
