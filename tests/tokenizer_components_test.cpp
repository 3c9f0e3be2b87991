// The pre-tokenizers, normalizers and added-token matching that the models' own tokenizer.json
// does not use, one by one. Expected splits are the examples of Hugging Face tokenizers' own
// tests (normalizer.rs, pre_tokenizers/*.rs) unless a comment derives them.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "io/tokenizer_impl.h"
#include "tokenizer_test_util.h"

namespace moeq {
namespace {

using nlohmann::json;
using Strings = std::vector<std::string>;

const std::string kFile = "test.json";

Strings pre_tokenize(const json& spec, std::string_view text) {
  const auto pre_tokenizer = tok::make_pre_tokenizer(tok::JsonNode(spec, kFile, "pre_tokenizer"));
  Strings pieces;
  pre_tokenizer->pre_tokenize(tok::Piece{text, true}, [&](const tok::Piece& piece) { pieces.emplace_back(piece.text); });
  return pieces;
}

std::string normalize(const json& spec, std::string text) {
  tok::make_normalizer(tok::JsonNode(spec, kFile, "normalizer"))->normalize(text);
  return text;
}

json split_on_dash(const char* behavior) {
  return {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", false}};
}

TEST(TokenizerComponents, SplitBehaviors) {
  const std::string text = "The-final--countdown";
  EXPECT_EQ(pre_tokenize(split_on_dash("Removed"), text), (Strings{"The", "final", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_on_dash("Isolated"), text), (Strings{"The", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_on_dash("MergedWithPrevious"), text), (Strings{"The-", "final-", "-", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_on_dash("MergedWithNext"), text), (Strings{"The", "-final", "-", "-countdown"}));
  EXPECT_EQ(pre_tokenize(split_on_dash("Contiguous"), text), (Strings{"The", "-", "final", "--", "countdown"}));
  // Delimiters at both ends (derived from the same folds): nothing before the first to merge into.
  EXPECT_EQ(pre_tokenize(split_on_dash("MergedWithPrevious"), "-a-"), (Strings{"-", "a-"}));
  EXPECT_EQ(pre_tokenize(split_on_dash("MergedWithNext"), "-a-"), (Strings{"-a", "-"}));
}

TEST(TokenizerComponents, SplitInvertedRegex) {
  const json spec = {{"type", "Split"}, {"pattern", {{"Regex", R"(\w+|[^\w\s]+)"}}}, {"behavior", "Removed"}, {"invert", true}};
  EXPECT_EQ(pre_tokenize(spec, "How are you doing?"), (Strings{"How", "are", "you", "doing", "?"}));
}

TEST(TokenizerComponents, WhitespacePunctuationDigits) {
  EXPECT_EQ(pre_tokenize({{"type", "Whitespace"}}, "Hey friend!     How are you?!?"),
            (Strings{"Hey", "friend", "!", "How", "are", "you", "?!?"}));
  EXPECT_EQ(pre_tokenize({{"type", "WhitespaceSplit"}}, "Hey, man, Good?"), (Strings{"Hey,", "man,", "Good?"}));
  EXPECT_EQ(pre_tokenize({{"type", "Punctuation"}, {"behavior", "Isolated"}}, "Hey friend!     How are you?!?"),
            (Strings{"Hey friend", "!", "     How are you", "?", "!", "?"}));
  EXPECT_EQ(pre_tokenize({{"type", "Digits"}, {"individual_digits", true}}, "Hey 123 friend!"),
            (Strings{"Hey ", "1", "2", "3", " friend!"}));
  EXPECT_EQ(pre_tokenize({{"type", "Digits"}, {"individual_digits", false}}, "Hey 123 friend!"),
            (Strings{"Hey ", "123", " friend!"}));
  EXPECT_EQ(pre_tokenize({{"type", "BertPreTokenizer"}}, "Hey friend!     How are you?!?"),
            (Strings{"Hey", "friend", "!", "How", "are", "you", "?", "!", "?"}));
}

TEST(TokenizerComponents, ByteLevelPrefixSpaceAndRegex) {
  const json spec = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  EXPECT_EQ(pre_tokenize(spec, "Hello my friend, how is your day going?"),
            (Strings{"\u0120Hello", "\u0120my", "\u0120friend", ",", "\u0120how", "\u0120is", "\u0120your", "\u0120day",
                     "\u0120going", "?"}));
  // Without the regex the piece stays whole; bytes map to GPT-2's alphabet (space → Ġ, \n → Ċ).
  const json plain = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  EXPECT_EQ(pre_tokenize(plain, "a b\n\xC3\xA9"), (Strings{"a\u0120b\u010A\u00C3\u00A9"}));
}

TEST(TokenizerComponents, MetaspaceSplit) {
  const json spec = {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "always"}, {"split", true}};
  EXPECT_EQ(pre_tokenize(spec, "Hey friend!"), (Strings{"\u2581Hey", "\u2581friend!"}));
  EXPECT_EQ(pre_tokenize(spec, "Hey   friend!"), (Strings{"\u2581Hey", "\u2581", "\u2581", "\u2581friend!"}));
}

TEST(TokenizerComponents, Normalizers) {
  EXPECT_EQ(normalize({{"type", "NFD"}}, "\xC3\xA9"), "e\xCC\x81");
  EXPECT_EQ(normalize({{"type", "NFC"}}, "e\xCC\x81 and A\xCC\x8A"), "\xC3\xA9 and \xC3\x85");
  EXPECT_EQ(normalize({{"type", "NFKC"}}, "\xEF\xAC\x81 \xE2\x91\xA0"), "fi 1");     // ﬁ ligature, circled 1
  EXPECT_EQ(normalize({{"type", "NFKD"}}, "\xEF\xAC\x81\xC3\xA9"), "fie\xCC\x81");
  // Rust's to_lowercase: İ (U+0130) becomes i + U+0307; Σ simply σ (no final-sigma rule per char).
  EXPECT_EQ(normalize({{"type", "Lowercase"}}, "HeLLo \xC4\xB0 \xCE\xA3"), "hello i\xCC\x87 \xCF\x83");
  // StripAccents drops nonspacing marks: after NFD "é" and "ñ" lose theirs; a precomposed "é"
  // (no mark to drop) and the spacing ´ (U+00B4, category Sk) stay.
  const json nfd_strip = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFD"}}, {{"type", "StripAccents"}}}}};
  EXPECT_EQ(normalize(nfd_strip, "caf\xC3\xA9 ma\xC3\xB1" "ana"), "cafe manana");
  EXPECT_EQ(normalize({{"type", "StripAccents"}}, "\xC3\xA9" "e\xCC\x81\xC2\xB4"), "\xC3\xA9" "e\xC2\xB4");
  EXPECT_EQ(normalize({{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}}, "  This is an example  "),
            "This is an example");
  EXPECT_EQ(normalize({{"type", "Strip"}, {"strip_left", false}, {"strip_right", true}}, "\u3000 x \n\u00a0"), "\u3000 x");
  EXPECT_EQ(normalize({{"type", "Replace"}, {"pattern", {{"Regex", R"(\s+)"}}}, {"content", "_"}}, " Hello   friend "),
            "_Hello_friend_");
  EXPECT_EQ(normalize({{"type", "Replace"}, {"pattern", {{"String", "aaa"}}}, {"content", "b"}}, "aaaab"), "bab");
  const json sequence = {{"type", "Sequence"},
                         {"normalizers", {{{"type", "Prepend"}, {"prepend", "\u2581"}}, {{"type", "Lowercase"}}}}};
  EXPECT_EQ(normalize(sequence, "AB"), "\u2581ab");
  EXPECT_EQ(normalize(sequence, ""), "");  // Prepend leaves empty text empty
}

// BertNormalizer (every option) and Nmt against what Hugging Face tokenizers itself outputs for
// the same strings: control and format characters, every kind of white space, CJK and Hangul,
// accents, İ and final Σ (tests/data/tokenizers_normalizers.json says how it was made).
TEST(TokenizerComponents, BertNormalizerAndNmtMatchHuggingFaceTokenizers) {
  const json cases = json::parse(testing::read_file(testing::source_dir() / "tests/data/tokenizers_normalizers.json"));
  const auto& inputs = cases.at("inputs");
  for (const auto& [name, config] : cases.at("configs").items()) {
    for (size_t i = 0; i < inputs.size(); ++i)
      EXPECT_EQ(normalize(config.at("normalizer"), inputs[i].get<std::string>()), config.at("outputs")[i].get<std::string>())
          << name << ", input " << i;
  }
  EXPECT_EQ(cases.at("configs").size(), 5u);
  EXPECT_EQ(normalize({{"type", "NMT"}}, "a\x01\xE2\x80\x8B" "b"), "a b");  // the upper-case spelling too
}

// SentencePiece's nmt_nfkc rules as a Precompiled normalizer, against Hugging Face tokenizers on
// the same charsmap: full-width and half-width forms, ligatures, Hangul, emoji clusters, and
// clusters whose first character alone has a key (tokenizers replaces the whole cluster).
TEST(TokenizerComponents, PrecompiledMatchesHuggingFaceTokenizers) {
  const json cases = json::parse(testing::read_file(testing::source_dir() / "tests/data/tokenizers_precompiled_nmt_nfkc.json"));
  const auto& inputs = cases.at("inputs");
  ASSERT_EQ(inputs.size(), cases.at("outputs").size());
  for (size_t i = 0; i < inputs.size(); ++i)
    EXPECT_EQ(normalize(cases.at("normalizer"), inputs[i].get<std::string>()), cases.at("outputs")[i].get<std::string>())
        << "input " << i;
}

// The ByteLevel normalizer and the CharDelimiterSplit pre-tokenizer against tokenizers 0.23.2.
TEST(TokenizerComponents, ByteLevelNormalizerAndCharDelimiterSplitMatchHuggingFaceTokenizers) {
  const json cases = json::parse(testing::read_file(testing::source_dir() / "tests/data/tokenizers_byte_level_char_split.json"));
  const auto& inputs = cases.at("inputs");
  const auto& byte_level = cases.at("byte_level");
  const auto& split = cases.at("char_delimiter_split");
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string text = inputs[i].get<std::string>();
    EXPECT_EQ(normalize(byte_level.at("normalizer"), text), byte_level.at("outputs")[i].get<std::string>()) << i;
    EXPECT_EQ(pre_tokenize(split.at("pre_tokenizer"), text), split.at("outputs")[i].get<Strings>()) << i;
  }
}

TEST(TokenizerComponents, PrecompiledRejectsABadCharsmap) {
  auto error = [](const std::string& charsmap) {
    return testing::error_of([&] { normalize({{"type", "Precompiled"}, {"precompiled_charsmap", charsmap}}, "x"); });
  };
  EXPECT_EQ(error("abc"), "test.json: field 'normalizer.precompiled_charsmap' is not base64");
  EXPECT_EQ(error("AQ=="), "test.json: field 'normalizer.precompiled_charsmap' holds 1 bytes, fewer than the 4 of its trie size");
  EXPECT_EQ(error("CAAAAAAAAAA="),  // a trie of 8 bytes stated, 4 present
            "test.json: field 'normalizer.precompiled_charsmap' states a trie of 8 bytes: not a positive multiple of 4 "
            "within the 4 bytes that follow");
}

std::vector<std::pair<std::string, int>> added_split(const std::vector<tok::AddedToken>& tokens, std::string_view text) {
  const tok::AddedVocabulary vocabulary(tokens, nullptr);
  std::vector<std::pair<std::string, int>> out;
  for (const tok::Segment& segment : vocabulary.split(text, tok::AddedVocabulary::Stage::Raw))
    out.emplace_back(text.substr(segment.begin, segment.end - segment.begin), segment.id.value_or(-1));
  return out;
}

tok::AddedToken added(int32_t id, std::string content) {
  tok::AddedToken token;
  token.id = id;
  token.content = std::move(content);
  token.normalized = false;
  return token;
}

TEST(TokenizerComponents, AddedTokenFlags) {
  using Split = std::vector<std::pair<std::string, int>>;
  // Leftmost, then longest: "<ab>" beats "<a" where both start.
  EXPECT_EQ(added_split({added(1, "<a"), added(2, "<ab>")}, "x<ab>y<a"), (Split{{"x", -1}, {"<ab>", 2}, {"y", -1}, {"<a", 1}}));
  // lstrip/rstrip take the white space around the token into it.
  tok::AddedToken mask = added(7, "<mask>");
  mask.lstrip = mask.rstrip = true;
  EXPECT_EQ(added_split({mask}, "I saw a  <mask>\there"), (Split{{"I saw a", -1}, {"  <mask>\t", 7}, {"here", -1}}));
  // single_word: not inside a word ("cab", "abc"), but alone or next to punctuation.
  tok::AddedToken word = added(3, "ab");
  word.single_word = true;
  EXPECT_EQ(added_split({word}, "ab cab abc ab."), (Split{{"ab", 3}, {" cab abc ", -1}, {"ab", 3}, {".", -1}}));
}

Tokenizer load_bpe(json model, const json& extra = json::object()) {
  model["type"] = "BPE";
  json spec = extra;
  spec["model"] = std::move(model);
  const testing::ScratchDir dir("tokenizer_components");
  testing::write_file(dir.path() / "tokenizer.json", spec.dump());
  return Tokenizer::load(dir.path() / "tokenizer.json");
}

using Ids = std::vector<int32_t>;

TEST(TokenizerComponents, BpeContinuingSubwordPrefix) {
  // Symbols after the first carry "##"; a merge of a and ##b makes "a" + "b" = "ab".
  const Tokenizer tokenizer = load_bpe({{"vocab", {{"a", 0}, {"##b", 1}, {"##c", 2}, {"ab", 3}, {"abc", 4}}},
                                        {"merges", json::array({json::array({"a", "##b"}), json::array({"ab", "##c"})})},
                                        {"continuing_subword_prefix", "##"}});
  EXPECT_EQ(tokenizer.encode("abc"), (Ids{4}));      // a ##b ##c → ab ##c → abc
  EXPECT_EQ(tokenizer.encode("abb"), (Ids{3, 1}));   // a ##b ##b → ab ##b
  EXPECT_EQ(tokenizer.encode("ba"), (Ids{}));         // "b" and "##a" are unknown, and no unk_token: dropped
}

TEST(TokenizerComponents, BpeEndOfWordSuffixAndItsDecoder) {
  const Tokenizer tokenizer = load_bpe(
      {{"vocab", {{"a", 0}, {"b</w>", 1}, {"b", 2}, {"ab</w>", 3}}}, {"merges", {"a b</w>"}}, {"end_of_word_suffix", "</w>"}},
      {{"pre_tokenizer", {{"type", "WhitespaceSplit"}}}, {"decoder", {{"type", "BPEDecoder"}, {"suffix", "</w>"}}}});
  // Words "ab" → a b</w> → ab</w>; "b" → b</w>. The decoder turns each suffix but the last into a space.
  EXPECT_EQ(tokenizer.encode("ab b"), (Ids{3, 1}));
  EXPECT_EQ(tokenizer.decode(Ids{3, 1}), "ab b");
}

TEST(TokenizerComponents, BpeIgnoreMergesTakesWholeWordsFromTheVocabulary) {
  const json model = {{"vocab", {{"a", 0}, {"b", 1}, {"c", 2}, {"bc", 3}, {"abc", 4}}}, {"merges", {"b c"}}};
  EXPECT_EQ(load_bpe(model).encode("abc"), (Ids{0, 3}));
  json ignoring = model;
  ignoring["ignore_merges"] = true;
  EXPECT_EQ(load_bpe(ignoring).encode("abc"), (Ids{4}));
  EXPECT_EQ(load_bpe(ignoring).encode("abcbc"), (Ids{0, 3, 3}));  // not in the vocabulary: merged as usual
}

}  // namespace
}  // namespace moeq
