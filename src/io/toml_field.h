// Typed, strict reads of optional TOML fields, shared by every TOML file moeq reads (recipes,
// bench grids): absent is nullopt, present with the wrong type is an error naming the field.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include <toml++/toml.h>

#include "core/error.h"

namespace moeq {

// The value of `key` if present. A double accepts any number (TOML writes 1 for 1.0); the
// other types must match exactly. `where` names the file and table in the error.
template <typename T>
std::optional<T> toml_field(const toml::table& table, std::string_view key, const std::string& where) {
  const toml::node* node = table.get(key);
  if (!node) return std::nullopt;
  std::optional<T> value;
  if constexpr (std::is_same_v<T, double>) {
    if (node->is_number()) value = node->value<double>();
  } else {
    value = node->value_exact<T>();
  }
  if (!value) {
    constexpr std::string_view type = std::is_same_v<T, double>        ? "a number"
                                      : std::is_same_v<T, int64_t>     ? "an integer"
                                      : std::is_same_v<T, bool>        ? "true or false"
                                                                       : "a string";
    fail("{}: field '{}' must be {}", where, key, type);
  }
  return value;
}

}  // namespace moeq
