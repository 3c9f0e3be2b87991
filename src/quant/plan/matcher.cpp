#include "quant/plan/matcher.h"

#include <algorithm>

#include <fmt/format.h>

namespace moeq::plan {

RuleMatcher::RuleMatcher(std::span<const Rule> rules, std::string_view source) : rules_(rules) {
  for (size_t i = 0; i < rules.size(); ++i) {
    const std::string& pattern = rules[i].select.name_regex;
    regexes_.push_back(pattern.empty() ? std::nullopt
                                       : std::optional<NameRegex>(std::in_place, pattern,
                                                                  fmt::format("{}: rule {}", source, i + 1)));
  }
}

bool RuleMatcher::matches(size_t index, const QuantUnit& unit) const {
  const Selector& s = rules_[index].select;
  if (s.roles.empty() ? needs_named_role(unit.role) : !s.names_role(unit.role)) return false;
  if (s.layers && (unit.layer < 0 || !s.layers->contains(unit.layer))) return false;
  if (s.experts && (unit.expert < 0 || !s.experts->contains(unit.expert))) return false;
  if (!s.projections.empty() &&
      std::find(s.projections.begin(), s.projections.end(), unit.projection) == s.projections.end())
    return false;
  return !regexes_[index] || regexes_[index]->search(unit.name);
}

int RuleMatcher::first_match(const QuantUnit& unit) const {
  for (size_t i = 0; i < rules_.size(); ++i)
    if (matches(i, unit)) return int(i);
  return -1;
}

}  // namespace moeq::plan
