#include "quant/plan/plan.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include <fmt/format.h>

#include "core/error.h"
#include "quant/formats/blocks.h"
#include "quant/plan/matcher.h"

namespace moeq::plan {
namespace {

std::string rule_label(const Recipe& recipe, size_t index) {
  const std::string& note = recipe.rules[index].note;
  return note.empty() ? fmt::format("{}: rule {}", recipe.source, index + 1)
                      : fmt::format("{}: rule {} ({})", recipe.source, index + 1, note);
}

// Whether `rule`, were it to name the routing roles, would select some unit: then a rule that
// selects nothing was probably meant for routers.
bool meant_for_routing(const Rule& rule, std::span<const QuantUnit> units, std::string_view source) {
  if (!rule.select.roles.empty()) return false;
  Rule widened = rule;
  widened.select.roles = {TensorRole::Router, TensorRole::SharedExpertGate};
  RuleMatcher probe(std::span(&widened, 1), source);
  return std::any_of(units.begin(), units.end(), [&](const QuantUnit& u) { return probe.matches(0, u); });
}

// Rules that select nothing are errors; rules that select only what earlier rules took, or that
// quantize routing weights, are warnings.
void check_rules(const Recipe& recipe, const RuleMatcher& matcher, std::span<const QuantUnit> units,
                 QuantPlan& plan) {
  for (size_t r = 0; r < recipe.rules.size(); ++r) {
    int64_t selected = 0, decided = 0, routing = 0;
    for (const PlanEntry& entry : plan.entries) {
      selected += matcher.matches(r, entry.unit);
      if (entry.rule != int(r)) continue;
      ++decided;
      routing += is_protected_role(entry.unit.role) && entry.action.quantizes();
    }
    if (selected == 0)
      fail("{} matches no tensor of the model{}", rule_label(recipe, r),
           meant_for_routing(recipe.rules[r], units, recipe.source)
               ? " (routers and shared-expert gates are only selected by a role naming them)"
               : "");
    if (decided == 0)
      plan.warnings.push_back(fmt::format("{} decides no tensor: earlier rules take all {} it selects",
                                          rule_label(recipe, r), selected));
    if (routing > 0)
      plan.warnings.push_back(fmt::format("{} quantizes {} router/shared-expert-gate tensors, kept 16-bit by "
                                          "default: routing decisions may change",
                                          rule_label(recipe, r), routing));
  }
}

// What rule `index` asks of `unit`, where it cannot apply: bitsandbytes blocks run along rows
// (qtensor.h), so the input features must fill whole blocks; outside the blocks only the lm_head
// has inputs to calibrate on (the final norm's output), so the embedding, a lookup table, takes
// RTN only, and has no inputs to quantize either.
void check_action_fits(const Recipe& recipe, size_t index, const QuantUnit& unit) {
  const QuantAction& action = recipe.rules[index].action;
  if (!action.quantizes()) return;
  if (action.spec.format != QuantFormat::Int && unit.cols % kBnbBlock != 0)
    fail("{} gives {} to '{}', whose {} input features are not a multiple of {}", rule_label(recipe, index),
         to_string(action.spec), unit.name, unit.cols, kBnbBlock);
  if (unit.layer < 0 && unit.role != TensorRole::LmHead && action.method != QuantMethod::Rtn)
    fail("{}: '{}' can only be quantized with rtn", rule_label(recipe, index), unit.name);
  if (unit.role == TensorRole::Embedding && action.act_bits != kActBitsNone)
    fail("{}: field 'act_bits' has no effect on '{}', a lookup table", rule_label(recipe, index), unit.name);
}

}  // namespace

QuantPlan resolve(const Recipe& recipe, std::span<const QuantUnit> units) {
  RuleMatcher matcher(recipe.rules, recipe.source);
  QuantPlan plan;
  plan.source = recipe.source;
  plan.settings = recipe.settings;
  for (const QuantUnit& unit : units) {
    int rule = matcher.first_match(unit);
    plan.entries.push_back({unit, rule < 0 ? QuantAction::keep() : recipe.rules[size_t(rule)].action, rule});
    if (rule >= 0) check_action_fits(recipe, size_t(rule), unit);
  }
  check_rules(recipe, matcher, units, plan);
  for (const std::string& warning : plan.warnings) fmt::print(stderr, "moeq: warning: {}\n", warning);
  return plan;
}

const PlanEntry* QuantPlan::find(std::string_view name) const {
  for (const PlanEntry& entry : entries)
    if (entry.unit.name == name) return &entry;
  return nullptr;
}

std::vector<std::string> QuantPlan::unmatched() const {
  std::vector<std::string> names;
  for (const PlanEntry& entry : entries)
    if (entry.rule < 0) names.push_back(entry.unit.name);
  return names;
}

std::string QuantPlan::summary() const {
  std::map<std::pair<TensorRole, std::string>, int64_t> counts;  // (role, action) → tensors
  std::map<TensorRole, int64_t> untouched;
  for (const PlanEntry& entry : entries) {
    if (entry.rule < 0)
      ++untouched[entry.unit.role];
    else
      ++counts[{entry.unit.role, describe(entry.action)}];
  }
  std::string out = fmt::format("plan from {}: {} tensors\n", source, entries.size());
  for (const auto& [key, n] : counts) out += fmt::format("  {:<20} {:>6} × {}\n", role_name(key.first), n, key.second);
  for (const auto& [role, n] : untouched)
    out += fmt::format("  {:<20} {:>6} × unchanged (no rule)\n", role_name(role), n);
  return out;
}

}  // namespace moeq::plan
