// Normalizers of tokenizer.json: Unicode normal forms (utf8proc), Lowercase, StripAccents,
// Prepend, Replace, Strip, Sequence, ByteLevel, and the two fixed recipes BertNormalizer and Nmt
// (Precompiled has its own file).
#include <cstdlib>

#include <utf8proc.h>

#include "core/error.h"
#include "io/tokenizer_impl.h"
#include "io/tokenizer_text.h"

namespace moeq::tok {
namespace {

bool is_ascii(char c) { return static_cast<unsigned char>(c) < 0x80; }

// NFC/NFD/NFKC/NFKD. Text is cut between two ASCII characters and only the pieces holding
// non-ASCII characters go through utf8proc: ASCII has no decompositions and a pair of ASCII
// starters blocks every composition and reordering across the cut, so the result is the same,
// and mostly-ASCII text (most of what moeq reads) costs a copy instead of a UTF-32 round trip.
class UnicodeForm final : public Normalizer {
 public:
  explicit UnicodeForm(utf8proc_option_t options) : options_(options) {}
  void normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    const size_t n = text.size();
    for (size_t done = 0; done < n;) {
      size_t non_ascii = done;
      while (non_ascii < n && is_ascii(text[non_ascii])) ++non_ascii;
      // The ASCII character in front may compose with what follows (e + U+0301 → é).
      const size_t begin = non_ascii > done ? non_ascii - 1 : non_ascii;
      out.append(text, done, begin - done);
      if (non_ascii == n) {
        out.append(text, begin, n - begin);
        break;
      }
      size_t end = non_ascii + 1;
      while (end < n && !(is_ascii(text[end]) && is_ascii(text[end - 1]))) ++end;
      append_normalized(std::string_view(text).substr(begin, end - begin), out);
      done = end;
    }
    text = std::move(out);
  }

 private:
  void append_normalized(std::string_view chunk, std::string& out) const {
    utf8proc_uint8_t* mapped = nullptr;
    const utf8proc_ssize_t length = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(chunk.data()),
                                                 utf8proc_ssize_t(chunk.size()), &mapped, options_);
    if (length < 0) fail("tokenizer: Unicode normalization failed: {}", utf8proc_errmsg(length));
    out.append(reinterpret_cast<const char*>(mapped), size_t(length));
    std::free(mapped);
  }

  utf8proc_option_t options_;
};

// Rewrites text a code point at a time: emit(cp, out) appends what cp becomes.
template <typename Emit>
void map_code_points(std::string& text, Emit emit) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size(); pos += utf8_length(static_cast<unsigned char>(text[pos])))
    emit(utf8_decode(text, pos), out);
  text = std::move(out);
}

// Rust's str::to_lowercase per character, as tokenizers applies it: the simple lowercase mapping,
// plus the one unconditional multi-character mapping of SpecialCasing.txt (U+0130 → i + U+0307).
class Lowercase final : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    map_code_points(text, [](char32_t cp, std::string& out) {
      if (cp == 0x130) out += "i\xCC\x87";
      else utf8_append(out, char32_t(utf8proc_tolower(utf8proc_int32_t(cp))));
    });
  }
};

utf8proc_category_t category(char32_t cp) { return utf8proc_category_t(utf8proc_category(utf8proc_int32_t(cp))); }

// tokenizers' StripAccents: drops every nonspacing mark (general category Mn), which after NFD
// (its usual place in a Sequence) takes the accents off letters.
class StripAccents final : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    map_code_points(text, [](char32_t cp, std::string& out) {
      if (category(cp) != UTF8PROC_CATEGORY_MN) utf8_append(out, cp);
    });
  }
};

// BertNormalizer's clean_text: drops NUL, U+FFFD and the "other" characters but tab, newline and
// carriage return (categories Cc, Cf, Co; unassigned code points stay, as tokenizers keeps them),
// then turns every white space character (Rust's char::is_whitespace: Zs, Zl, Zp, U+0009–000D,
// U+0085) into a space. U+0085 is Cc, so the first rule has already dropped it.
class BertCleanText final : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    map_code_points(text, [](char32_t cp, std::string& out) {
      const utf8proc_category_t c = category(cp);
      const bool kept_control = cp == '\t' || cp == '\n' || cp == '\r';
      if (cp == 0 || cp == 0xFFFD) return;
      if (!kept_control && (c == UTF8PROC_CATEGORY_CC || c == UTF8PROC_CATEGORY_CF || c == UTF8PROC_CATEGORY_CO))
        return;
      const bool space = (cp >= 0x9 && cp <= 0xD) || c == UTF8PROC_CATEGORY_ZS || c == UTF8PROC_CATEGORY_ZL ||
                         c == UTF8PROC_CATEGORY_ZP;
      utf8_append(out, space ? U' ' : cp);
    });
  }
};

// BertNormalizer's handle_chinese_chars: a space on each side of every character of the CJK
// Unified Ideographs blocks and their extensions A–E and compatibility blocks, BERT's own
// definition of a Chinese character, so that the pre-tokenizer makes each one a word.
class PadChineseCharacters final : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    map_code_points(text, [](char32_t cp, std::string& out) {
      const bool chinese = (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
                           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
                           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
                           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
      if (chinese) out += ' ';
      utf8_append(out, cp);
      if (chinese) out += ' ';
    });
  }
};

// tokenizers' Nmt, SentencePiece's nmt_nfkc clean-up without the NFKC: drops the ASCII and C1
// control characters of the fixed list below and turns the code points that NMT treats as
// white space into a space. NUL stays.
class Nmt final : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    map_code_points(text, [](char32_t cp, std::string& out) {
      const bool dropped = (cp >= 0x1 && cp <= 0x8) || cp == 0xB || (cp >= 0xE && cp <= 0x1F) || cp == 0x7F ||
                           cp == 0x8F || cp == 0x9F;
      if (dropped) return;
      const bool space = cp == 0x9 || cp == 0xA || cp == 0xC || cp == 0xD || cp == 0x1680 ||
                         (cp >= 0x200B && cp <= 0x200F) || cp == 0x2028 || cp == 0x2029 || cp == 0x2581 ||
                         cp == 0xFEFF || cp == 0xFFFD;
      utf8_append(out, space ? U' ' : cp);
    });
  }
};

// tokenizers' ByteLevel normalizer: every byte becomes the character of GPT-2's byte alphabet,
// as the ByteLevel pre-tokenizer does, without its splitting.
class ByteLevelBytes final : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    std::string out;
    ByteLevelAlphabet::get().encode(text, out);
    text = std::move(out);
  }
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class Replace final : public Normalizer {
 public:
  Replace(Regex pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& text) const override { text = replace_all(pattern_, text, content_); }

 private:
  Regex pattern_;
  std::string content_;
};

class Strip final : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    if (right_) text.resize(trailing_white_space_begin(text));
    if (left_) text.erase(0, leading_white_space_end(text));
  }

 private:
  bool left_;
  bool right_;
};

class SequenceOfNormalizers final : public Normalizer {
 public:
  explicit SequenceOfNormalizers(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  void normalize(std::string& text) const override {
    for (const auto& step : steps_) step->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

utf8proc_option_t unicode_form_options(std::string_view type) {
  const auto stable = UTF8PROC_STABLE;
  if (type == "NFC") return utf8proc_option_t(stable | UTF8PROC_COMPOSE);
  if (type == "NFD") return utf8proc_option_t(stable | UTF8PROC_DECOMPOSE);
  if (type == "NFKC") return utf8proc_option_t(stable | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  return utf8proc_option_t(stable | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
}

// BertNormalizer as a sequence of its steps, in tokenizers' order. strip_accents null follows
// lowercase; stripping is NFD and then dropping the nonspacing marks.
std::unique_ptr<Normalizer> make_bert_normalizer(const JsonNode& node) {
  std::vector<std::unique_ptr<Normalizer>> steps;
  if (node.boolean_or("clean_text", true)) steps.push_back(std::make_unique<BertCleanText>());
  if (node.boolean_or("handle_chinese_chars", true)) steps.push_back(std::make_unique<PadChineseCharacters>());
  const bool lowercase = node.boolean_or("lowercase", true);
  if (node.boolean_or("strip_accents", lowercase)) {
    steps.push_back(std::make_unique<UnicodeForm>(unicode_form_options("NFD")));
    steps.push_back(std::make_unique<StripAccents>());
  }
  if (lowercase) steps.push_back(std::make_unique<Lowercase>());
  return std::make_unique<SequenceOfNormalizers>(std::move(steps));
}

}  // namespace

Regex read_pattern(const JsonNode& pattern) {
  if (const auto literal = pattern.find("String")) return Regex(literal->string(), Regex::Kind::Literal, pattern.where());
  if (const auto regex = pattern.find("Regex")) return Regex(regex->string(), Regex::Kind::Pattern, regex->where());
  pattern.fail("must be {\"String\": ...} or {\"Regex\": ...}");
}

std::string replace_all(const Regex& pattern, std::string_view text, std::string_view content) {
  std::string out;
  size_t done = 0;
  for (const Span& match : pattern.find_all(text)) {
    out.append(text.substr(done, match.begin - done));
    out.append(content);
    done = match.end;
  }
  out.append(text.substr(done));
  return out;
}

std::unique_ptr<Normalizer> make_normalizer(const JsonNode& node) {
  const std::string type = node.type();
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD")
    return std::make_unique<UnicodeForm>(unicode_form_options(type));
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "StripAccents") return std::make_unique<StripAccents>();
  if (type == "Prepend") return std::make_unique<Prepend>(node.at("prepend").string());
  if (type == "Replace") return std::make_unique<Replace>(read_pattern(node.at("pattern")), node.at("content").string());
  if (type == "Strip") return std::make_unique<Strip>(node.boolean_or("strip_left", true), node.boolean_or("strip_right", true));
  if (type == "Sequence")
    return std::make_unique<SequenceOfNormalizers>(make_each(node.at("normalizers"), make_normalizer));
  if (type == "BertNormalizer") return make_bert_normalizer(node);
  if (type == "Precompiled") return make_precompiled(node);
  if (type == "ByteLevel") return std::make_unique<ByteLevelBytes>();
  if (type == "Nmt" || type == "NMT") return std::make_unique<Nmt>();  // tokenizers writes "Nmt"
  node.at("type").fail(fmt::format("is '{}', a normalizer moeq does not support", type));
}

}  // namespace moeq::tok
