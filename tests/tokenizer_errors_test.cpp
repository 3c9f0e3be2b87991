// A malformed tokenizer.json fails with moeq::Error naming the file and the field.
#include <gtest/gtest.h>

#include "core/error.h"
#include "io/tokenizer.h"
#include "tokenizer_test_util.h"

namespace moeq {
namespace {

// Loads `json_text` as a tokenizer.json and returns the error message (empty if none).
std::string load_error(std::string_view json_text) {
  const testing::ScratchDir dir("tokenizer_errors");
  const auto path = dir.path() / "tokenizer.json";
  testing::write_file(path, json_text);
  try {
    Tokenizer::load(path);
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << "message does not name the file: " << message;
    return message;
  }
  return {};
}

// A valid BPE model of three tokens, for splicing into broken files.
constexpr std::string_view kModel = R"({"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]})";

std::string with_model(std::string_view model, std::string_view extra = "") {
  return fmt::format(R"({{"model": {}{}}})", model, extra);
}

TEST(TokenizerErrors, ValidMinimalFileLoads) {
  EXPECT_EQ(load_error(with_model(kModel)), "");
}

TEST(TokenizerErrors, NotJson) {
  EXPECT_NE(load_error("{\"model\": [unclosed").find("not valid JSON"), std::string::npos);
}

TEST(TokenizerErrors, MissingModel) {
  EXPECT_NE(load_error(R"({"version": "1.0", "normalizer": null})").find("field 'model' is missing"), std::string::npos);
}

TEST(TokenizerErrors, UnknownModelType) {
  const std::string message = load_error(with_model(R"({"type": "WordPiece", "vocab": {}})"));
  EXPECT_NE(message.find("field 'model.type'"), std::string::npos) << message;
  EXPECT_NE(message.find("WordPiece"), std::string::npos) << message;
}

TEST(TokenizerErrors, MergeNamingUnknownToken) {
  const std::string message = load_error(with_model(R"({"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b", "a zz"]})"));
  EXPECT_NE(message.find("field 'model.merges[1]'"), std::string::npos) << message;
  EXPECT_NE(message.find("'zz'"), std::string::npos) << message;
}

TEST(TokenizerErrors, MergeResultMissingFromVocab) {
  const std::string message = load_error(with_model(R"({"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["a", "b"]]})"));
  EXPECT_NE(message.find("field 'model.merges[0]'"), std::string::npos) << message;
  EXPECT_NE(message.find("'ab'"), std::string::npos) << message;
}

TEST(TokenizerErrors, MalformedMergeString) {
  const std::string message = load_error(with_model(R"({"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]})"));
  EXPECT_NE(message.find("field 'model.merges[0]'"), std::string::npos) << message;
}

TEST(TokenizerErrors, UnsupportedComponentsNameTheirField) {
  EXPECT_NE(load_error(with_model(kModel, R"(, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "UnicodeScripts"}]})"))
                .find("field 'pre_tokenizer.pretokenizers[0].type'"),
            std::string::npos);
  EXPECT_NE(load_error(with_model(kModel, R"(, "normalizer": {"type": "Nope"})")).find("field 'normalizer.type'"),
            std::string::npos);
  EXPECT_NE(load_error(with_model(kModel, R"(, "normalizer": {"type": "Precompiled"})"))
                .find("field 'normalizer.precompiled_charsmap' is missing"),
            std::string::npos);
  EXPECT_NE(load_error(with_model(kModel, R"(, "decoder": {"type": "CTC"})")).find("field 'decoder.type'"), std::string::npos);
  EXPECT_NE(load_error(with_model(kModel, R"(, "post_processor": {"type": "Nope"})")).find("field 'post_processor.type'"),
            std::string::npos);
}

TEST(TokenizerErrors, BadRegexAndWrongTypes) {
  const std::string regex = load_error(with_model(
      kModel, R"(, "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"})"));
  EXPECT_NE(regex.find("field 'pre_tokenizer.pattern.Regex'"), std::string::npos) << regex;
  const std::string behavior = load_error(with_model(
      kModel, R"(, "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"})"));
  EXPECT_NE(behavior.find("field 'pre_tokenizer.behavior'"), std::string::npos) << behavior;
  const std::string vocab = load_error(with_model(R"({"type": "BPE", "vocab": {"a": "zero"}, "merges": []})"));
  EXPECT_NE(vocab.find("field 'model.vocab'"), std::string::npos) << vocab;
  const std::string unk = load_error(with_model(R"({"type": "BPE", "vocab": {"a": 0}, "merges": [], "unk_token": "<unk>"})"));
  EXPECT_NE(unk.find("field 'model.unk_token'"), std::string::npos) << unk;
}

TEST(TokenizerErrors, MissingFile) {
  try {
    Tokenizer::load("/nonexistent/tokenizer.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tokenizer.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace moeq
