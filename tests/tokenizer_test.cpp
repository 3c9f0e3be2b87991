// moeq's tokenizer against Hugging Face tokenizers 0.23 on the models' real tokenizer.json
// (byte-level BPE, 8192 tokens): the WikiText-2 test ids and the edge cases in reference/, and
// decoding back to the text.
#include "io/tokenizer.h"

#include <chrono>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"
#include "tokenizer_test_util.h"

namespace moeq {
namespace {

using testing::read_file;

Tokenizer load_model_tokenizer(std::string_view name) { return Tokenizer::load(testing::shared_model(name) / "tokenizer.json"); }

std::string wikitext2_test() { return read_file(testing::shared_dir() / "data/eval/wikitext2/wiki.test.raw"); }

// Index of the first difference, or the common length when one is a prefix of the other.
size_t first_difference(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return i;
}

// One test per model, so that each stays short under the sanitizers and ctest runs them in parallel.
class TokenizerParity : public ::testing::TestWithParam<std::string_view> {};

TEST_P(TokenizerParity, WikiText2TestMatchesReferenceIds) {
  const std::string_view model = GetParam();
  const std::string text = wikitext2_test();
  const Tokenizer tokenizer = load_model_tokenizer(model);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tokenizer.encode(text);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::vector<int32_t> expected = testing::read_ids(testing::shared_model(model) / "reference/wikitext2_test.ids.int32");
  ASSERT_EQ(expected.size(), 416156u);
  EXPECT_EQ(ids.size(), expected.size());
  EXPECT_EQ(first_difference(ids, expected), expected.size()) << "first id that differs";
  // A loose bound (the machine is shared, and sanitizers slow it down): it catches a slip into
  // quadratic time, which would take minutes here. tokenizer_bench measures the real speed.
  EXPECT_LT(seconds, 30.0);
  std::printf("%s: WikiText-2 test, %zu bytes -> %zu ids in %.3f s\n", std::string(model).c_str(), text.size(),
              ids.size(), seconds);
}

TEST_P(TokenizerParity, EdgeCasesMatchReference) {
  const std::string_view model = GetParam();
  const Tokenizer tokenizer = load_model_tokenizer(model);
  const auto cases = nlohmann::json::parse(read_file(testing::shared_model(model) / "reference/tokenizer_cases.json"));
  ASSERT_EQ(cases.size(), 20u);
  for (const auto& c : cases) {
    const std::string text = c.at("text").get<std::string>();
    EXPECT_EQ(tokenizer.encode(text), c.at("ids").get<std::vector<int32_t>>()) << "'" << text << "'";
  }
}

INSTANTIATE_TEST_SUITE_P(Models, TokenizerParity, ::testing::Values("mixtral", "qwen2_moe", "qwen3_moe"));

TEST(TokenizerByteLevel, DecodingWikiText2IdsGivesTheTextBack) {
  const Tokenizer tokenizer = load_model_tokenizer("mixtral");
  const std::vector<int32_t> ids = testing::read_ids(testing::shared_model("mixtral") / "reference/wikitext2_test.ids.int32");
  EXPECT_TRUE(tokenizer.decode(ids) == wikitext2_test());
}

TEST(TokenizerByteLevel, DecodeInvertsEncodeOnVariedUnicode) {
  const Tokenizer tokenizer = load_model_tokenizer("qwen3_moe");
  // All in NFC already (the tokenizer normalizes to NFC, so only NFC text can come back unchanged).
  const std::string texts[] = {
      "Hello, world!",
      "emoji 😀👍🏽 and a family 👨‍👩‍👧 (ZWJ sequence) 🇫🇷",
      "CJK 北京欢迎你 日本語のテキスト 한국어",
      "combining marks without a precomposed form: q̇ x̧ and Devanagari नमस्ते, Arabic مَرْحَبًا",
      "line\r\nbreaks\r\n\r\nand\ttabs\t\t and   multiple    spaces  ",
      "  leading and trailing  ",
      "\n\n\n",
      "math ∑ x² ≤ ∞, arrows → ⇒, box ┌─┐, NBSP\u00a0here, zero\u200bwidth",
      "<|endoftext|>special inside<|endoftext|>",
      "ǅ ß ﬁ Ω ẞ",
  };
  for (const std::string& text : texts) {
    const std::vector<int32_t> ids = tokenizer.encode(text);
    EXPECT_EQ(tokenizer.decode(ids), text) << text;
  }
}

TEST(TokenizerByteLevel, NormalizesToNfcAndDecodesBrokenUtf8AsReplacement) {
  const Tokenizer tokenizer = load_model_tokenizer("mixtral");
  // e + U+0301 (combining acute) becomes the single code point é under NFC.
  EXPECT_EQ(tokenizer.decode(tokenizer.encode("e\xCC\x81")), "\xC3\xA9");
  EXPECT_EQ(tokenizer.encode("e\xCC\x81"), tokenizer.encode("\xC3\xA9"));
  // é is the byte tokens C3 A9 (ids 128, 103 per tokenizer_cases.json); C3 alone is not UTF-8.
  EXPECT_EQ(tokenizer.encode("\xC3\xA9"), (std::vector<int32_t>{128, 103}));
  EXPECT_EQ(tokenizer.decode(std::vector<int32_t>{128}), "\xEF\xBF\xBD");
  EXPECT_EQ(tokenizer.decode(std::vector<int32_t>{128, 65}), "\xEF\xBF\xBD" "a");
}

TEST(TokenizerByteLevel, SpecialTokensAndVocabulary) {
  const Tokenizer tokenizer = load_model_tokenizer("qwen2_moe");
  EXPECT_EQ(tokenizer.vocab_size(), 8192);
  EXPECT_EQ(tokenizer.token_to_id("<|endoftext|>"), 0);
  EXPECT_EQ(tokenizer.token_to_id("!"), 1);
  EXPECT_EQ(tokenizer.token_to_id("no such token"), std::nullopt);
  // tokenizer_config.json: eos_token "<|endoftext|>", bos_token null.
  EXPECT_EQ(tokenizer.eos_id(), 0);
  EXPECT_EQ(tokenizer.bos_id(), std::nullopt);
  EXPECT_EQ(tokenizer.encode("<|endoftext|>"), std::vector<int32_t>{0});
  // Its post-processor adds nothing to a single sequence.
  EXPECT_EQ(tokenizer.encode("Hello world", true), tokenizer.encode("Hello world", false));
  const std::vector<int32_t> ids = tokenizer.encode("<|endoftext|>Hello world<|endoftext|>");
  EXPECT_EQ(tokenizer.decode(ids), "<|endoftext|>Hello world<|endoftext|>");
  EXPECT_EQ(tokenizer.decode(ids, true), "Hello world");
  // Ids beyond the vocabulary are skipped, as tokenizers does.
  EXPECT_EQ(tokenizer.decode(std::vector<int32_t>{40, 9000, 7423}), tokenizer.decode(std::vector<int32_t>{40, 7423}));
}

TEST(TokenizerByteLevel, RejectsInvalidUtf8Input) {
  const Tokenizer tokenizer = load_model_tokenizer("mixtral");
  EXPECT_THROW(tokenizer.encode("ok \xFF then"), Error);
  EXPECT_THROW(tokenizer.encode("\xED\xA0\x80"), Error);  // a UTF-16 surrogate
}

// Merges may be stored as "a b" strings (older files) or as [a, b] pairs; both mean the same.
TEST(TokenizerByteLevel, MergesAsStringsEqualMergesAsPairs) {
  auto json = nlohmann::json::parse(read_file(testing::shared_model("mixtral") / "tokenizer.json"));
  for (auto& merge : json["model"]["merges"]) merge = merge[0].get<std::string>() + " " + merge[1].get<std::string>();
  const testing::ScratchDir dir("tokenizer_string_merges");
  testing::write_file(dir.path() / "tokenizer.json", json.dump());
  const Tokenizer from_strings = Tokenizer::load(dir.path() / "tokenizer.json");
  const Tokenizer from_pairs = load_model_tokenizer("mixtral");
  const auto cases = nlohmann::json::parse(read_file(testing::shared_model("mixtral") / "reference/tokenizer_cases.json"));
  for (const auto& c : cases) {
    const std::string text = c.at("text").get<std::string>();
    EXPECT_EQ(from_strings.encode(text), c.at("ids").get<std::vector<int32_t>>()) << text;
  }
  const std::string text = wikitext2_test().substr(0, 20000);
  EXPECT_EQ(from_strings.encode(text), from_pairs.encode(text));
}

}  // namespace
}  // namespace moeq
