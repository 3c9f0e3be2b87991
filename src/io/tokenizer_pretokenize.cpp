// Pre-tokenizers of tokenizer.json: ByteLevel, Split, Metaspace, Digits, Punctuation, Whitespace,
// WhitespaceSplit, BertPreTokenizer and Sequence. Each splits pieces into smaller pieces the way
// tokenizers' NormalizedString::split does; the model then encodes every piece on its own.
#include <algorithm>

#include "core/error.h"
#include "io/tokenizer_impl.h"

namespace moeq::tok {
namespace {

// What becomes of the matched delimiters (tokenizers' SplitDelimiterBehavior).
enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

struct Part {
  size_t begin;
  size_t end;
  bool flag;  // before resolve(): a match; after: to be removed
};

// Unicode classes of Rust's regex, which tokenizers' built-in patterns are written in.
constexpr std::string_view kWord = R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control})";
constexpr std::string_view kAsciiPunctuation = R"(!-/:-@\[-`{-~)";

// The matches and the gaps between them, covering all of `text`.
std::vector<Part> cover(std::string_view text, const Regex& pattern, bool invert) {
  std::vector<Part> parts;
  size_t done = 0;
  for (const Span& match : pattern.find_all(text)) {
    if (done != match.begin) parts.push_back({done, match.begin, invert});
    parts.push_back({match.begin, match.end, !invert});
    done = match.end;
  }
  if (done != text.size() || text.empty()) parts.push_back({done, text.size(), invert});
  return parts;
}

// Joins a delimiter to its neighbour (or not) and marks what is removed.
std::vector<Part> resolve(const std::vector<Part>& parts, Behavior behavior) {
  std::vector<Part> out;
  bool previous_match = false;
  switch (behavior) {
    case Behavior::Removed:
      return parts;
    case Behavior::Isolated:
      for (const Part& part : parts) out.push_back({part.begin, part.end, false});
      return out;
    case Behavior::Contiguous:
    case Behavior::MergedWithPrevious:
      for (const Part& part : parts) {
        const bool join = behavior == Behavior::Contiguous ? part.flag == previous_match
                                                           : part.flag && !previous_match;
        if (join && !out.empty()) {
          out.back().end = part.end;
        } else {
          out.push_back({part.begin, part.end, false});
        }
        previous_match = part.flag;
      }
      return out;
    case Behavior::MergedWithNext:
      for (auto part = parts.rbegin(); part != parts.rend(); ++part) {
        if (part->flag && !previous_match && !out.empty()) {
          out.back().begin = part->begin;
        } else {
          out.push_back({part->begin, part->end, false});
        }
        previous_match = part->flag;
      }
      std::reverse(out.begin(), out.end());
      return out;
  }
  return out;
}

void split_pieces(std::vector<Piece>& pieces, const Regex& pattern, Behavior behavior, bool invert = false) {
  std::vector<Piece> out;
  out.reserve(pieces.size());
  for (const Piece& piece : pieces) {
    for (const Part& part : resolve(cover(piece.text, pattern, invert), behavior)) {
      if (part.flag || part.begin == part.end) continue;
      out.push_back({piece.text.substr(part.begin, part.end - part.begin),
                     piece.at_input_start && part.begin == 0});
    }
  }
  pieces = std::move(out);
}

Behavior read_behavior(const JsonNode& node) {
  const std::string name = node.string();
  if (name == "Removed") return Behavior::Removed;
  if (name == "Isolated") return Behavior::Isolated;
  if (name == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::MergedWithNext;
  if (name == "Contiguous") return Behavior::Contiguous;
  node.fail(fmt::format("is '{}', not a split behavior", name));
}

// Splits on one pattern with one behavior: Split, Digits, Punctuation, Whitespace(Split).
class PatternSplit final : public PreTokenizer {
 public:
  PatternSplit(Regex pattern, Behavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_pieces(pieces, pattern_, behavior_, invert_);
  }

 private:
  Regex pattern_;
  Behavior behavior_;
  bool invert_;
};

// GPT-2 style: optionally a leading space, optionally GPT-2's regex split, then every byte
// becomes its character in the byte-level alphabet.
class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    static const Regex gpt2(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)",
                            Regex::Kind::Pattern, "GPT-2 pre-tokenizer regex");
    if (add_prefix_space_) {
      for (Piece& piece : pieces)
        if (!piece.text.empty() && piece.text[0] != ' ') piece.text.insert(0, 1, ' ');
    }
    if (use_regex_) split_pieces(pieces, gpt2, Behavior::Isolated);
    const ByteLevelAlphabet& alphabet = ByteLevelAlphabet::get();
    for (Piece& piece : pieces) {
      std::string mapped;
      mapped.reserve(piece.text.size() * 2);
      alphabet.encode(piece.text, mapped);
      piece.text = std::move(mapped);
    }
  }

 private:
  bool add_prefix_space_;
  bool use_regex_;
};

enum class PrependScheme { Always, First, Never };

// SentencePiece style: spaces become ▁, a ▁ is put in front, and pieces split before each ▁.
class Metaspace final : public PreTokenizer {
 public:
  Metaspace(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split),
        delimiter_(replacement_, Regex::Kind::Literal, "Metaspace replacement") {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (Piece& piece : pieces) {
      std::string replaced;
      for (char c : piece.text) {
        if (c == ' ') {
          replaced += replacement_;
        } else {
          replaced += c;
        }
      }
      const bool prepend = scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && piece.at_input_start);
      if (prepend && !replaced.empty() && !replaced.starts_with(replacement_)) replaced.insert(0, replacement_);
      piece.text = std::move(replaced);
    }
    if (split_) split_pieces(pieces, delimiter_, Behavior::MergedWithNext);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
  Regex delimiter_;
};

class SequenceOfPreTokenizers final : public PreTokenizer {
 public:
  explicit SequenceOfPreTokenizers(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& step : steps_) step->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

std::unique_ptr<PreTokenizer> pattern_split(std::string_view pattern, Behavior behavior, bool invert = false) {
  return std::make_unique<PatternSplit>(Regex(pattern, Regex::Kind::Pattern, "built-in pre-tokenizer"), behavior, invert);
}

std::string punctuation_class() { return fmt::format(R"([\p{{P}}{}])", kAsciiPunctuation); }

PrependScheme read_prepend_scheme(const JsonNode& node) {
  const auto scheme = node.find("prepend_scheme");
  // Files from before prepend_scheme existed say add_prefix_space instead.
  if (!scheme) return node.boolean_or("add_prefix_space", true) ? PrependScheme::Always : PrependScheme::Never;
  const std::string name = scheme->string();
  if (name == "always") return PrependScheme::Always;
  if (name == "first") return PrependScheme::First;
  if (name == "never") return PrependScheme::Never;
  scheme->fail(fmt::format("is '{}', not always/first/never", name));
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonNode& node) {
  const std::string type = node.type();
  if (type == "ByteLevel")
    return std::make_unique<ByteLevel>(node.boolean_or("add_prefix_space", true), node.boolean_or("use_regex", true));
  if (type == "Split")
    return std::make_unique<PatternSplit>(read_pattern(node.at("pattern")), read_behavior(node.at("behavior")),
                                          node.boolean_or("invert", false));
  if (type == "Metaspace")
    return std::make_unique<Metaspace>(node.string_or("replacement", "\xE2\x96\x81"), read_prepend_scheme(node),
                                       node.boolean_or("split", true));
  if (type == "Digits")
    return pattern_split(R"(\p{N})", node.boolean_or("individual_digits", false) ? Behavior::Isolated : Behavior::Contiguous);
  if (type == "Punctuation") {
    const auto behavior = node.find("behavior");
    return pattern_split(punctuation_class(), behavior ? read_behavior(*behavior) : Behavior::Isolated);
  }
  if (type == "Whitespace")  // keeps the runs of word characters and of other non-space characters
    return pattern_split(fmt::format(R"([{0}]+|[^{0}\p{{White_Space}}]+)", kWord), Behavior::Removed, true);
  if (type == "WhitespaceSplit") return pattern_split(R"(\p{White_Space})", Behavior::Removed);
  if (type == "Sequence" || type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    if (type == "BertPreTokenizer") {
      steps.push_back(pattern_split(R"(\p{White_Space})", Behavior::Removed));
      steps.push_back(pattern_split(punctuation_class(), Behavior::Isolated));
    } else {
      const JsonNode list = node.at("pretokenizers");
      for (size_t i = 0; i < list.array_size(); ++i) steps.push_back(make_pre_tokenizer(list.element(i)));
    }
    return std::make_unique<SequenceOfPreTokenizers>(std::move(steps));
  }
  node.at("type").fail(fmt::format("is '{}', a pre-tokenizer moeq does not support", type));
}

}  // namespace moeq::tok
