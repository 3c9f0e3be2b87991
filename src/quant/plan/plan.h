// A recipe resolved against one model's weight matrices: for every unit, the action to take.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quant/plan/recipe.h"
#include "quant/plan/unit.h"

namespace moeq::plan {

struct PlanEntry {
  QuantUnit unit;
  QuantAction action = QuantAction::keep();  // keep(): no rule matched, or the rule says none
  int rule = -1;                             // 0-based index of the deciding rule; -1: none matched
};

struct QuantPlan {
  std::string source;  // the recipe's source
  RecipeSettings settings;
  std::vector<PlanEntry> entries;  // one per unit, in the units' order
  std::vector<std::string> warnings;

  const PlanEntry* find(std::string_view name) const;
  // Names of the units no rule matched: they stay as they are in the checkpoint.
  std::vector<std::string> unmatched() const;
  // Human report: tensors per role and action, and what stays as it is (resolve printed the warnings).
  std::string summary() const;
};

// First matching rule wins. Routers and shared-expert gates are only matched by rules whose
// role selector names them; quantizing one adds (and prints) a warning. Throws moeq::Error
// naming the recipe source and rule when a rule matches no tensor at all (a typo, or a structure
// the model lacks). A rule that matches only tensors earlier rules took is warned about.
QuantPlan resolve(const Recipe& recipe, std::span<const QuantUnit> units);

// Rules under which units[i] gets *actions[i] where set and no rule matches the other units.
// Units are grouped by role, projection and action, with layer and expert ranges, and selectors
// that cover every index the model has are left out; where the units' structure cannot be
// written that way, rules fall back to exact names.
std::vector<Rule> rules_for(std::span<const QuantUnit> units, std::span<const std::optional<QuantAction>> actions);

// A re-runnable recipe that resolves to the same action for every quantized unit of the plan.
Recipe plan_to_recipe(const QuantPlan& plan, std::string description);

}  // namespace moeq::plan
