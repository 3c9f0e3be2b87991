#include "io/tokenizer_json.h"

#include "core/error.h"

namespace moeq::tok {

std::string JsonNode::where() const {
  return fmt::format("{}: field '{}'", *file_, field_.empty() ? "(top level)" : field_);
}

void JsonNode::fail(std::string_view problem) const { moeq::fail("{} {}", where(), problem); }

JsonNode JsonNode::at(std::string_view key) const {
  std::optional<JsonNode> member = find(key);
  if (!member) {
    const std::string path = field_.empty() ? std::string(key) : fmt::format("{}.{}", field_, key);
    moeq::fail("{}: field '{}' is missing", *file_, path);
  }
  return *member;
}

std::optional<JsonNode> JsonNode::find(std::string_view key) const {
  if (!value_->is_object()) fail("is not a JSON object");
  const auto it = value_->find(key);
  if (it == value_->end() || it->is_null()) return std::nullopt;
  return JsonNode(*it, *file_, field_.empty() ? std::string(key) : fmt::format("{}.{}", field_, key));
}

JsonNode JsonNode::element(size_t index) const {
  if (!value_->is_array()) fail("is not a JSON array");
  return JsonNode((*value_)[index], *file_, fmt::format("{}[{}]", field_, index));
}

size_t JsonNode::array_size() const {
  if (!value_->is_array()) fail("is not a JSON array");
  return value_->size();
}

std::string JsonNode::string() const {
  if (!value_->is_string()) fail("is not a string");
  return value_->get<std::string>();
}

int64_t JsonNode::integer() const {
  if (!value_->is_number_integer()) fail("is not an integer");
  return value_->get<int64_t>();
}

bool JsonNode::boolean() const {
  if (!value_->is_boolean()) fail("is not a boolean");
  return value_->get<bool>();
}

bool JsonNode::boolean_or(std::string_view key, bool fallback) const {
  const std::optional<JsonNode> member = find(key);
  return member ? member->boolean() : fallback;
}

std::string JsonNode::string_or(std::string_view key, std::string_view fallback) const {
  const std::optional<JsonNode> member = find(key);
  return member ? member->string() : std::string(fallback);
}

}  // namespace moeq::tok
