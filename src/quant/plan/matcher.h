// Rule selection, shared by resolve() and by the rule writer that checks its own output.
#pragma once

#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "quant/plan/name_regex.h"
#include "quant/plan/recipe.h"

namespace moeq::plan {

class RuleMatcher {
 public:
  // Compiles the rules' name regexes; `source` prefixes error messages.
  RuleMatcher(std::span<const Rule> rules, std::string_view source);

  // Whether rule `index` selects `unit`. Routers and shared-expert gates are only selected by a
  // rule whose role list names their role.
  bool matches(size_t index, const QuantUnit& unit) const;
  // The first rule that selects `unit`, or -1.
  int first_match(const QuantUnit& unit) const;

 private:
  std::span<const Rule> rules_;
  std::vector<std::optional<NameRegex>> regexes_;
};

}  // namespace moeq::plan
