// Tokenizer::load: tokenizer.json (model, normalizer, pre_tokenizer, decoder, post_processor,
// added_tokens) and the bos/eos tokens of tokenizer_config.json beside it.
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "io/tokenizer_impl.h"

namespace moeq {
namespace tok {
namespace {

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open file", path.string());
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: not valid JSON ({})", path.string(), e.what());
  }
}

std::vector<AddedToken> read_added_tokens(const JsonNode& list) {
  std::vector<AddedToken> tokens;
  for (size_t i = 0; i < list.array_size(); ++i) {
    const JsonNode entry = list.element(i);
    AddedToken token;
    const int64_t id = entry.at("id").integer();
    if (id < 0 || id > INT32_MAX) entry.at("id").fail("is not a non-negative int32");
    token.id = int32_t(id);
    token.content = entry.at("content").string();
    token.special = entry.boolean_or("special", false);
    token.single_word = entry.boolean_or("single_word", false);
    token.lstrip = entry.boolean_or("lstrip", false);
    token.rstrip = entry.boolean_or("rstrip", false);
    token.normalized = entry.boolean_or("normalized", !token.special);
    tokens.push_back(std::move(token));
  }
  return tokens;
}

// ["<s>", 1] in RobertaProcessing/BertProcessing.
int32_t token_and_id(const JsonNode& pair) {
  if (pair.array_size() != 2) pair.fail("is not a [token, id] pair");
  return int32_t(pair.element(1).integer());
}

SpecialIds read_template(const JsonNode& node) {
  SpecialIds ids;
  const JsonNode single = node.at("single");
  const JsonNode specials = node.at("special_tokens");
  bool after_sequence = false;
  for (size_t i = 0; i < single.array_size(); ++i) {
    const JsonNode item = single.element(i);
    if (const auto sequence = item.find("Sequence")) {
      if (sequence->at("id").string() != "A") sequence->at("id").fail("must be A in the single template");
      after_sequence = true;
    } else if (const auto special = item.find("SpecialToken")) {
      const JsonNode entry = specials.at(special->at("id").string());
      const JsonNode entry_ids = entry.at("ids");
      std::vector<int32_t>& side = after_sequence ? ids.after : ids.before;
      for (size_t k = 0; k < entry_ids.array_size(); ++k) side.push_back(int32_t(entry_ids.element(k).integer()));
    } else {
      item.fail("is neither {\"Sequence\": ...} nor {\"SpecialToken\": ...}");
    }
  }
  return ids;
}

// The token named by tokenizer_config.json's bos_token/eos_token: a string, an AddedToken object
// with "content", or null.
std::optional<int32_t> config_token(const JsonNode& config, std::string_view key, const Tokenizer& tokenizer) {
  const auto member = config.find(key);
  if (!member) return std::nullopt;
  const std::string content = member->json().is_object() ? member->at("content").string() : member->string();
  const auto id = tokenizer.token_to_id(content);
  if (!id) member->fail(fmt::format("names '{}', which is not in the tokenizer's vocabulary", content));
  return id;
}

}  // namespace

SpecialIds read_post_processor(const JsonNode& node) {
  const std::string type = node.type();
  if (type == "ByteLevel") return {};  // only adjusts offsets, which moeq does not track
  if (type == "TemplateProcessing") return read_template(node);
  if (type == "RobertaProcessing" || type == "BertProcessing")
    return SpecialIds{{token_and_id(node.at("cls"))}, {token_and_id(node.at("sep"))}};
  if (type == "Sequence") {
    // Each processor wraps what the ones before it produced.
    SpecialIds ids;
    const JsonNode list = node.at("processors");
    for (size_t i = 0; i < list.array_size(); ++i) {
      SpecialIds step = read_post_processor(list.element(i));
      step.before.insert(step.before.end(), ids.before.begin(), ids.before.end());
      ids.before = std::move(step.before);
      ids.after.insert(ids.after.end(), step.after.begin(), step.after.end());
    }
    return ids;
  }
  node.at("type").fail(fmt::format("is '{}', a post-processor moeq does not support", type));
}

}  // namespace tok

// truncation and padding are not applied: callers window and batch the ids themselves.
Tokenizer Tokenizer::load(const std::filesystem::path& tokenizer_json) {
  const std::string file = tokenizer_json.string();
  const nlohmann::json json = tok::read_json(tokenizer_json);
  const tok::JsonNode root(json, file, "");
  auto impl = std::make_unique<Impl>();
  impl->file = tokenizer_json;
  impl->model = tok::BpeModel::from_json(root.at("model"));
  if (const auto node = root.find("normalizer")) impl->normalizer = tok::make_normalizer(*node);
  if (const auto node = root.find("pre_tokenizer")) impl->pre_tokenizer = tok::make_pre_tokenizer(*node);
  if (const auto node = root.find("decoder")) impl->decoder = tok::make_decoder(*node);
  if (const auto node = root.find("post_processor")) impl->special_ids = tok::read_post_processor(*node);
  if (const auto node = root.find("added_tokens"))
    impl->added = tok::AddedVocabulary(tok::read_added_tokens(*node), impl->normalizer.get());

  Tokenizer tokenizer(std::move(impl));
  const std::filesystem::path config_path = tokenizer_json.parent_path() / "tokenizer_config.json";
  if (std::filesystem::exists(config_path)) {
    const nlohmann::json config_json = tok::read_json(config_path);
    const std::string config_file = config_path.string();
    const tok::JsonNode config(config_json, config_file, "");
    tokenizer.impl_->bos_id = tok::config_token(config, "bos_token", tokenizer);
    tokenizer.impl_->eos_id = tok::config_token(config, "eos_token", tokenizer);
  }
  return tokenizer;
}

}  // namespace moeq
