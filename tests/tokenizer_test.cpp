// Parity of moeq's tokenizer with Hugging Face tokenizers 0.23 on the models' real tokenizer.json
// (byte-level BPE, 8192 tokens): WikiText-2 test ids and the edge cases in reference/.
#include "io/tokenizer.h"

#include <chrono>
#include <fstream>
#include <iterator>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"

namespace moeq {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<int32_t> read_ids(const std::filesystem::path& path) {
  const std::string bytes = read_file(path);
  std::vector<int32_t> ids(bytes.size() / 4);
  for (size_t i = 0; i < ids.size(); ++i) {
    uint32_t v = 0;
    for (int b = 3; b >= 0; --b) v = (v << 8) | static_cast<unsigned char>(bytes[4 * i + size_t(b)]);
    ids[i] = int32_t(v);
  }
  return ids;
}

std::filesystem::path model_dir(std::string_view name) { return testing::shared_dir() / "models" / name; }

constexpr std::string_view kModels[] = {"mixtral", "qwen2_moe", "qwen3_moe"};

TEST(TokenizerParity, WikiText2TestMatchesReferenceIds) {
  const std::string text = read_file(testing::shared_dir() / "data/eval/wikitext2/wiki.test.raw");
  for (const std::string_view model : kModels) {
    const Tokenizer tokenizer = Tokenizer::load(model_dir(model) / "tokenizer.json");
    const auto start = std::chrono::steady_clock::now();
    const std::vector<int32_t> ids = tokenizer.encode(text);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::vector<int32_t> expected = read_ids(model_dir(model) / "reference/wikitext2_test.ids.int32");
    ASSERT_EQ(expected.size(), 416156u);
    ASSERT_EQ(ids.size(), expected.size()) << model;
    size_t first_difference = 0;
    while (first_difference < ids.size() && ids[first_difference] == expected[first_difference]) ++first_difference;
    EXPECT_EQ(first_difference, ids.size()) << model << ": ids differ from the reference first at index " << first_difference;
    std::printf("%s: WikiText-2 test, %zu bytes -> %zu ids in %.3f s\n", std::string(model).c_str(), text.size(), ids.size(), seconds);
  }
}

TEST(TokenizerParity, EdgeCasesMatchReference) {
  for (const std::string_view model : kModels) {
    const Tokenizer tokenizer = Tokenizer::load(model_dir(model) / "tokenizer.json");
    const auto cases = nlohmann::json::parse(read_file(model_dir(model) / "reference/tokenizer_cases.json"));
    ASSERT_EQ(cases.size(), 20u);
    for (const auto& c : cases) {
      const std::string text = c.at("text").get<std::string>();
      EXPECT_EQ(tokenizer.encode(text), c.at("ids").get<std::vector<int32_t>>()) << model << ": '" << text << "'";
    }
  }
}

}  // namespace
}  // namespace moeq
