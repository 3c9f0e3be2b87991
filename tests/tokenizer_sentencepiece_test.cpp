// SentencePiece-style BPE as Llama-2 / Mixtral ship it in tokenizer.json: ▁ for spaces (through
// the Prepend + Replace normalizers, or the Metaspace pre-tokenizer), <0xNN> byte fallback, <s>
// added by the post-processor. No such file is in ../shared, so the tests build a small one; the
// expected ids are worked out by hand from the BPE algorithm in the comments.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "io/tokenizer.h"
#include "tokenizer_test_util.h"

namespace moeq {
namespace {

using Ids = std::vector<int32_t>;
using nlohmann::json;

// Vocabulary: <unk> 0, <s> 1, </s> 2, <0x00>..<0xFF> 3..258 (byte b is 3 + b), then these.
constexpr const char* kPieces[] = {
    "\u2581", "h", "e", "l", "o", "w", "r", "d", "a", "b", "c",             // 259..269
    "ll", "\u2581h", "ell", "\u2581hell", "\u2581hello", "or", "\u2581w",  // 270..276
    "\u2581wor", "ld", "\u2581world", "bc", "ab",                         // 277..281
};
constexpr int32_t kSpace = 259, kH = 260, kO = 263, kA = 267, kB = 268, kC = 269, kSpaceH = 271, kEll = 272,
                  kSpaceHello = 274, kSpaceWorld = 279, kBc = 280;
constexpr int32_t byte_id(unsigned b) { return int32_t(3 + b); }

// In rank order. "b c" outranks "a b", so "abc" must become a + bc although "ab" comes first.
constexpr const char* kMerges[] = {
    "l l", "\u2581 h", "e ll", "\u2581h ell", "\u2581hell o", "o r", "\u2581 w", "\u2581w or", "l d",
    "\u2581wor ld", "b c", "a b",
};

json special_token(int id, const char* content) {
  return {{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
          {"normalized", false}, {"special", true}};
}

json string_pattern(const char* text) { return {{"String", text}}; }

// As Llama-2's tokenizer.json: normalizer Prepend(▁) + Replace(" ", ▁), no pre-tokenizer,
// decoder Replace(▁, " ") + ByteFallback + Fuse + Strip(one leading space).
json llama2_style() {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (unsigned b = 0; b < 256; ++b) vocab[fmt::format("<0x{:02X}>", b)] = byte_id(b);
  int32_t next = 259;
  for (const char* piece : kPieces) vocab[piece] = next++;
  json merges = json::array();
  for (const char* merge : kMerges) merges.push_back(merge);
  return {
      {"version", "1.0"},
      {"added_tokens", {special_token(0, "<unk>"), special_token(1, "<s>"), special_token(2, "</s>")}},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "Prepend"}, {"prepend", "\u2581"}},
          {{"type", "Replace"}, {"pattern", string_pattern(" ")}, {"content", "\u2581"}}}}}},
      {"pre_tokenizer", nullptr},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair", json::array()},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders",
         {{{"type", "Replace"}, {"pattern", string_pattern("\u2581")}, {"content", " "}},
          {{"type", "ByteFallback"}},
          {{"type", "Fuse"}},
          {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", "<unk>"}, {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr}, {"fuse_unk", true}, {"byte_fallback", true}, {"ignore_merges", false},
        {"vocab", vocab}, {"merges", merges}}},
  };
}

// As newer Mistral files: no normalizer, Metaspace pre-tokenizer and decoder.
json metaspace_style(const char* prepend_scheme) {
  json tokenizer = llama2_style();
  tokenizer["normalizer"] = nullptr;
  const json metaspace = {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", prepend_scheme}, {"split", false}};
  tokenizer["pre_tokenizer"] = metaspace;
  tokenizer["decoder"] = metaspace;
  return tokenizer;
}

Tokenizer load(const json& tokenizer) {
  const testing::ScratchDir dir("tokenizer_sentencepiece");
  testing::write_file(dir.path() / "tokenizer.json", tokenizer.dump());
  return Tokenizer::load(dir.path() / "tokenizer.json");
}

TEST(TokenizerSentencePiece, MergesFollowRankNotPosition) {
  const Tokenizer tokenizer = load(llama2_style());
  // "hello" → ▁hello: ▁ h e l l o; ll (rank 0) → ▁ h e ll o; ▁h (1) → ▁h e ll o; ell (2) → ▁h ell o;
  // ▁hell (3); ▁hello (4). "world" → ▁world: or (5), ▁w (6), ▁wor (7), ld (8), ▁world (9).
  EXPECT_EQ(tokenizer.encode("hello world"), (Ids{kSpaceHello, kSpaceWorld}));
  // ▁ a b c: "b c" has rank 10, "a b" rank 11, so bc merges first and blocks ab: ▁ a bc.
  EXPECT_EQ(tokenizer.encode("abc"), (Ids{kSpace, kA, kBc}));
  // ▁ a b: only "a b" applies.
  EXPECT_EQ(tokenizer.encode("ab"), (Ids{kSpace, 281}));
}

TEST(TokenizerSentencePiece, LeadingSpaceBecomesItsOwnToken) {
  const Tokenizer tokenizer = load(llama2_style());
  // " hello" → Prepend → "▁ hello" → Replace → "▁▁hello": no merge joins ▁ ▁, so ▁ + ▁hello.
  EXPECT_EQ(tokenizer.encode(" hello"), (Ids{kSpace, kSpaceHello}));
  EXPECT_EQ(tokenizer.decode(tokenizer.encode(" hello")), " hello");
  EXPECT_EQ(tokenizer.encode(""), Ids{});
}

TEST(TokenizerSentencePiece, UnknownCharactersFallBackToBytes) {
  const Tokenizer tokenizer = load(llama2_style());
  // é (C3 A9) and 😀 (F0 9F 98 80) are not in the vocabulary: their UTF-8 bytes are.
  EXPECT_EQ(tokenizer.encode("hé"), (Ids{kSpaceH, byte_id(0xC3), byte_id(0xA9)}));
  EXPECT_EQ(tokenizer.encode("😀"), (Ids{kSpace, byte_id(0xF0), byte_id(0x9F), byte_id(0x98), byte_id(0x80)}));
  for (const char* text : {"hé", "😀", "hello wörld 😀!", "a  b"}) EXPECT_EQ(tokenizer.decode(tokenizer.encode(text)), text);
  // A lone continuation byte is not UTF-8: ByteFallback turns each such byte into U+FFFD.
  EXPECT_EQ(tokenizer.decode(Ids{kH, byte_id(0xA9), kO}), "h\xEF\xBF\xBDo");
}

TEST(TokenizerSentencePiece, WithoutByteFallbackUnknownsFuseIntoOneUnk) {
  json spec = llama2_style();
  spec["model"]["byte_fallback"] = false;
  // ▁ a é 😀 b: é and 😀 are unknown and adjacent; fuse_unk makes them one <unk>.
  EXPECT_EQ(load(spec).encode("aé😀b"), (Ids{kSpace, kA, 0, kB}));
  spec["model"]["fuse_unk"] = false;
  EXPECT_EQ(load(spec).encode("aé😀b"), (Ids{kSpace, kA, 0, 0, kB}));
}

TEST(TokenizerSentencePiece, PostProcessorAddsBos) {
  const Tokenizer tokenizer = load(llama2_style());
  EXPECT_EQ(tokenizer.encode("hello world", true), (Ids{1, kSpaceHello, kSpaceWorld}));
  EXPECT_EQ(tokenizer.decode(Ids{1, kSpaceHello, kSpaceWorld}, true), "hello world");
  // Without skipping, <s> goes through the decoders unchanged and the Strip finds no space to cut.
  EXPECT_EQ(tokenizer.decode(Ids{1, kSpaceHello, kSpaceWorld}), "<s> hello world");
  // <s> written in the text is the special token, and its text gets its own leading ▁.
  EXPECT_EQ(tokenizer.encode("<s>hello"), (Ids{1, kSpaceHello}));
}

TEST(TokenizerSentencePiece, MetaspacePrependsOnlyAtTheStartOfTheInput) {
  const Tokenizer first = load(metaspace_style("first"));
  EXPECT_EQ(first.encode("hello world"), (Ids{kSpaceHello, kSpaceWorld}));
  EXPECT_EQ(first.decode(Ids{kSpaceHello, kSpaceWorld}), "hello world");
  // After <s> the text no longer starts the input: h e l l o → h ell o, with no ▁.
  EXPECT_EQ(first.encode("<s>hello"), (Ids{1, kH, kEll, kO}));
  const Tokenizer always = load(metaspace_style("always"));
  EXPECT_EQ(always.encode("<s>hello"), (Ids{1, kSpaceHello}));
  const Tokenizer never = load(metaspace_style("never"));
  EXPECT_EQ(never.encode("hello"), (Ids{kH, kEll, kO}));
  EXPECT_EQ(never.decode(Ids{kSpaceHello, kSpaceWorld}), " hello world");
}

TEST(TokenizerSentencePiece, MetaspaceSplitKeepsEachSpaceWithTheWordAfterIt) {
  // Add "c▁" (id 282) as the top merge, so that a merge across a ▁ shows whether split was done.
  json spec = metaspace_style("always");
  spec["model"]["vocab"]["c\u2581"] = 282;
  spec["model"]["merges"].insert(spec["model"]["merges"].begin(), "c \u2581");
  // Unsplit, "▁abc▁c" is one word: c▁ (rank 0) first → ▁ a b c▁ c; then "a b" → ▁ ab c▁ c.
  EXPECT_EQ(load(spec).encode("abc c"), (Ids{kSpace, 281, 282, kC}));
  // Split, it is ▁abc | ▁c (each ▁ stays with the word after it): ▁ a bc, then ▁ c.
  spec["pre_tokenizer"]["split"] = true;
  EXPECT_EQ(load(spec).encode("abc c"), (Ids{kSpace, kA, kBc, kSpace, kC}));
}

}  // namespace
}  // namespace moeq
