// Writing a per-unit assignment back as a few readable rules (plan.h: rules_for).
//
// Units are grouped three times: by (role, projection, action, layer) collecting experts, then
// by (role, projection, action, expert set) collecting layers, then by (role, action, expert
// set, layer set) collecting projections. Each final group is the product roles × projections ×
// layers × experts, so one rule selects exactly it as long as (role, layer, expert, projection)
// identifies a unit. Rules equal but for the role are then merged. The result is checked
// against every unit, and falls back to one rule per exact name.
#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "quant/plan/matcher.h"
#include "quant/plan/name_regex.h"
#include "quant/plan/plan.h"

namespace moeq::plan {
namespace {

using Indices = std::set<int>;
using Projections = std::set<std::string>;

struct Group {
  TensorRole role;
  QuantAction action;
  Projections projections;
  Indices layers;
  Indices experts;
};

// Actions compare by describe(): equal text ⇔ equal action (to_string(QuantSpec) prints exactly
// the fields QuantSpec's == compares).
std::vector<Group> group_units(std::span<const QuantUnit> units, std::span<const std::optional<QuantAction>> actions) {
  std::map<std::string, QuantAction> action_of;
  std::map<std::tuple<TensorRole, std::string, std::string, int>, Indices> by_layer;
  for (size_t i = 0; i < units.size(); ++i) {
    if (!actions[i]) continue;
    std::string key = describe(*actions[i]);
    action_of.emplace(key, *actions[i]);
    by_layer[{units[i].role, units[i].projection, key, units[i].layer}].insert(units[i].expert);
  }
  std::map<std::tuple<TensorRole, std::string, std::string, Indices>, Indices> by_experts;
  for (const auto& [key, experts] : by_layer) {
    const auto& [role, projection, action, layer] = key;
    by_experts[{role, projection, action, experts}].insert(layer);
  }
  std::map<std::tuple<TensorRole, std::string, Indices, Indices>, Projections> by_projection;
  for (const auto& [key, layers] : by_experts) {
    const auto& [role, projection, action, experts] = key;
    by_projection[{role, action, experts, layers}].insert(projection);
  }
  std::vector<Group> groups;
  for (const auto& [key, projections] : by_projection) {
    const auto& [role, action, experts, layers] = key;
    groups.push_back({role, action_of.at(action), projections, layers, experts});
  }
  return groups;
}

// The values of `field` over the units of `role` that pass `keep`: when a group's indices equal
// these, its rule need not name them.
template <typename Field, typename Keep>
auto values_present(std::span<const QuantUnit> units, TensorRole role, Field field, Keep keep) {
  std::set<std::decay_t<decltype(field(units[0]))>> values;
  for (const QuantUnit& unit : units)
    if (unit.role == role && keep(unit)) values.insert(field(unit));
  return values;
}

IndexSet index_set(const Indices& indices) {
  std::vector<int> list(indices.begin(), indices.end());
  return IndexSet::of(list);
}

// The rule for a group, or nullopt when its indices include -1 and cannot all be named.
std::optional<Rule> group_rule(std::span<const QuantUnit> units, const Group& g) {
  Rule rule;
  rule.select.roles = {g.role};
  rule.action = g.action;
  auto in_projections = [&](const QuantUnit& u) { return g.projections.count(u.projection) > 0; };
  auto in_layers = [&](const QuantUnit& u) { return in_projections(u) && g.layers.count(u.layer) > 0; };
  if (g.projections != values_present(units, g.role, [](const QuantUnit& u) { return u.projection; },
                                      [](const QuantUnit&) { return true; }))
    rule.select.projections.assign(g.projections.begin(), g.projections.end());
  if (g.layers != values_present(units, g.role, [](const QuantUnit& u) { return u.layer; }, in_projections)) {
    if (g.layers.count(-1)) return std::nullopt;
    rule.select.layers = index_set(g.layers);
  }
  if (g.experts != values_present(units, g.role, [](const QuantUnit& u) { return u.expert; }, in_layers)) {
    if (g.experts.count(-1)) return std::nullopt;
    rule.select.experts = index_set(g.experts);
  }
  return rule;
}

bool rules_reproduce(std::span<const Rule> rules, std::span<const QuantUnit> units,
                     std::span<const std::optional<QuantAction>> actions) {
  RuleMatcher matcher(rules, "<generated>");
  for (size_t i = 0; i < units.size(); ++i) {
    int r = matcher.first_match(units[i]);
    if (r < 0 ? actions[i].has_value() : !actions[i] || !(rules[size_t(r)].action == *actions[i])) return false;
  }
  return true;
}

std::vector<Rule> exact_name_rules(std::span<const QuantUnit> units, std::span<const std::optional<QuantAction>> actions) {
  std::vector<Rule> rules;
  for (size_t i = 0; i < units.size(); ++i) {
    if (!actions[i]) continue;
    Rule rule;
    rule.select.name_regex = exact_name_pattern(units[i].name);
    if (needs_named_role(units[i].role)) rule.select.roles = {units[i].role};
    rule.action = *actions[i];
    rules.push_back(std::move(rule));
  }
  return rules;
}

// Rules that differ only in role become one rule naming both roles: each role's selectors were
// chosen for that role alone, and a rule matches per role, so the union stays exact.
std::vector<Rule> merge_roles(std::vector<Rule> rules) {
  std::vector<Rule> merged;
  for (Rule& rule : rules) {
    auto same = std::find_if(merged.begin(), merged.end(), [&](const Rule& m) {
      Selector a = m.select, b = rule.select;
      a.roles.clear();
      b.roles.clear();
      return a == b && m.action == rule.action;
    });
    if (same == merged.end())
      merged.push_back(std::move(rule));
    else
      same->select.roles.push_back(rule.select.roles[0]);
  }
  return merged;
}

// Disjoint rules may come in any order; read them by role, then layer, then expert.
void sort_for_reading(std::vector<Rule>& rules) {
  auto first = [](const std::optional<IndexSet>& set) { return set ? set->ranges()[0].first : -1; };
  std::stable_sort(rules.begin(), rules.end(), [&](const Rule& a, const Rule& b) {
    return std::tuple(a.select.roles[0], first(a.select.layers), first(a.select.experts)) <
           std::tuple(b.select.roles[0], first(b.select.layers), first(b.select.experts));
  });
}

}  // namespace

std::vector<Rule> rules_for(std::span<const QuantUnit> units, std::span<const std::optional<QuantAction>> actions) {
  MOEQ_ASSERT(units.size() == actions.size());
  std::vector<Rule> rules;
  for (const Group& group : group_units(units, actions)) {
    std::optional<Rule> rule = group_rule(units, group);
    if (!rule) return exact_name_rules(units, actions);
    rules.push_back(std::move(*rule));
  }
  rules = merge_roles(std::move(rules));
  sort_for_reading(rules);
  if (!rules_reproduce(rules, units, actions)) return exact_name_rules(units, actions);
  return rules;
}

Recipe plan_to_recipe(const QuantPlan& plan, std::string description) {
  std::vector<QuantUnit> units;
  std::vector<std::optional<QuantAction>> actions;
  for (const PlanEntry& entry : plan.entries) {
    units.push_back(entry.unit);
    actions.push_back(entry.action.quantizes() ? std::optional(entry.action) : std::nullopt);
  }
  Recipe recipe;
  recipe.description = std::move(description);
  recipe.settings = plan.settings;
  recipe.rules = rules_for(units, actions);
  return recipe;
}

}  // namespace moeq::plan
