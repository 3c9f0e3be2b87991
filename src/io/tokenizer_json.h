// Reading tokenizer.json: a JSON value that knows its file and field path, so that every error
// says which file and which field is wrong.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace moeq::tok {

class JsonNode {
 public:
  JsonNode(const nlohmann::json& value, const std::string& file, std::string field)
      : value_(&value), file_(&file), field_(std::move(field)) {}

  const nlohmann::json& json() const { return *value_; }
  const std::string& file() const { return *file_; }
  // "file: field 'a.b[2]'", the prefix of every message about this node.
  std::string where() const;
  [[noreturn]] void fail(std::string_view problem) const;

  // A required member; missing or null fails.
  JsonNode at(std::string_view key) const;
  // An optional member; absent and null both give nullopt.
  std::optional<JsonNode> find(std::string_view key) const;
  JsonNode element(size_t index) const;
  size_t array_size() const;

  std::string string() const;
  int64_t integer() const;
  bool boolean() const;
  // The member's value, or `fallback` when it is absent or null.
  bool boolean_or(std::string_view key, bool fallback) const;
  std::string string_or(std::string_view key, std::string_view fallback) const;
  // The "type" member that selects a component's kind.
  std::string type() const { return at("type").string(); }

 private:
  const nlohmann::json* value_;
  const std::string* file_;
  std::string field_;
};

}  // namespace moeq::tok
