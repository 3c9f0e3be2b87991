// Pre-tokenizers of tokenizer.json: ByteLevel, Split, Metaspace, Digits, Punctuation, Whitespace,
// WhitespaceSplit, BertPreTokenizer and Sequence. Each splits pieces into smaller pieces the way
// tokenizers' NormalizedString::split does; the model then encodes every piece on its own.

#include "core/error.h"
#include "io/tokenizer_impl.h"

namespace moeq::tok {
namespace {

// What becomes of the matched delimiters (tokenizers' SplitDelimiterBehavior).
enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// Unicode classes of Rust's regex, which tokenizers' built-in patterns are written in.
constexpr std::string_view kWord = R"(\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control})";
constexpr std::string_view kAsciiPunctuation = R"(!-/:-@\[-`{-~)";

// Receives the matches and the gaps between them, left to right, joins each delimiter to its
// neighbour (or not) as `behavior` says, and emits the parts that are kept. One part is held
// back because whether it grows depends on the next one; the result equals the folds of
// tokenizers' NormalizedString::split.
class PartJoiner {
 public:
  PartJoiner(Behavior behavior, FunctionRef<void(Span)> emit) : behavior_(behavior), emit_(emit) {}

  void push(Span part, bool is_match) {
    if (behavior_ == Behavior::Removed) {
      if (!is_match) emit_(part);
      return;
    }
    if (behavior_ == Behavior::Isolated) {
      emit_(part);
      return;
    }
    bool join = false;
    if (held_) {
      switch (behavior_) {
        case Behavior::Contiguous: join = is_match == previous_match_; break;
        case Behavior::MergedWithPrevious: join = is_match && !previous_match_; break;
        case Behavior::MergedWithNext: join = previous_match_ && !is_match; break;
        default: break;
      }
    }
    if (join) {
      held_->end = part.end;
    } else {
      finish();
      held_ = part;
    }
    previous_match_ = is_match;
  }

  void finish() {
    if (held_) emit_(*held_);
    held_.reset();
  }

 private:
  Behavior behavior_;
  FunctionRef<void(Span)> emit_;
  std::optional<Span> held_;
  bool previous_match_ = false;
};

// Splits `piece` at the matches of `pattern` (at what does not match when `invert`).
void split_piece(const Piece& piece, const Regex& pattern, Behavior behavior, bool invert, PieceSink emit) {
  const std::string_view text = piece.text;
  const auto emit_part = [&](Span part) {
    if (part.begin != part.end)
      emit(Piece{text.substr(part.begin, part.end - part.begin), piece.at_input_start && part.begin == 0});
  };
  PartJoiner joiner(behavior, emit_part);
  size_t done = 0;
  pattern.for_each_match(text, [&](Span match) {
    if (done != match.begin) joiner.push({done, match.begin}, invert);
    joiner.push(match, !invert);
    done = match.end;
  });
  if (done != text.size()) joiner.push({done, text.size()}, invert);
  joiner.finish();
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
  void pre_tokenize(const Piece& piece, PieceSink emit) const override {
    split_piece(piece, pattern_, behavior_, invert_, emit);
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
  void pre_tokenize(const Piece& piece, PieceSink emit) const override {
    static const Regex gpt2(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)",
                            Regex::Kind::Pattern, "GPT-2 pre-tokenizer regex");
    std::string prefixed;
    Piece whole = piece;
    if (add_prefix_space_ && !piece.text.starts_with(' ')) {
      prefixed.reserve(piece.text.size() + 1);
      prefixed.push_back(' ');
      prefixed.append(piece.text);
      whole.text = prefixed;
    }
    const auto map_bytes = [&](const Piece& part) {
      std::string mapped;
      ByteLevelAlphabet::get().encode(part.text, mapped);
      emit(Piece{mapped, part.at_input_start});
    };
    if (use_regex_) {
      split_piece(whole, gpt2, Behavior::Isolated, false, map_bytes);
    } else {
      map_bytes(whole);
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
  void pre_tokenize(const Piece& piece, PieceSink emit) const override {
    std::string replaced;
    const bool prepend = scheme_ == PrependScheme::Always || (scheme_ == PrependScheme::First && piece.at_input_start);
    if (prepend && !piece.text.starts_with(' ') && !piece.text.starts_with(replacement_)) replaced = replacement_;
    for (char c : piece.text) {
      if (c == ' ') {
        replaced += replacement_;
      } else {
        replaced += c;
      }
    }
    const Piece whole{replaced, piece.at_input_start};
    if (split_) {
      split_piece(whole, delimiter_, Behavior::MergedWithNext, false, emit);
    } else {
      emit(whole);
    }
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
  void pre_tokenize(const Piece& piece, PieceSink emit) const override { run(0, piece, emit); }

 private:
  void run(size_t step, const Piece& piece, PieceSink emit) const {
    if (step == steps_.size()) {
      emit(piece);
      return;
    }
    steps_[step]->pre_tokenize(piece, [&](const Piece& part) { run(step + 1, part, emit); });
  }

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
  if (type == "Sequence")
    return std::make_unique<SequenceOfPreTokenizers>(make_each(node.at("pretokenizers"), make_pre_tokenizer));
  if (type == "CharDelimiterSplit") {  // tokenizers splits on the delimiter and drops it
    const JsonNode delimiter = node.at("delimiter");
    return std::make_unique<PatternSplit>(Regex(delimiter.string(), Regex::Kind::Literal, delimiter.where()),
                                          Behavior::Removed, false);
  }
  if (type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    steps.push_back(pattern_split(R"(\p{White_Space})", Behavior::Removed));
    steps.push_back(pattern_split(punctuation_class(), Behavior::Isolated));
    return std::make_unique<SequenceOfPreTokenizers>(std::move(steps));
  }
  node.at("type").fail(fmt::format("is '{}', a pre-tokenizer moeq does not support", type));
}

}  // namespace moeq::tok
