#include "quant/plan/strategies.h"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "quant/plan/plan.h"
#include "quant/plan/scorers.h"

namespace moeq::plan {
namespace {

constexpr TensorRole kBaseRoles[] = {TensorRole::Attention, TensorRole::RoutedExpert, TensorRole::SharedExpert,
                                     TensorRole::DenseMlp, TensorRole::LmHead};

bool has_role(std::span<const QuantUnit> units, TensorRole role) {
  return std::any_of(units.begin(), units.end(), [&](const QuantUnit& u) { return u.role == role; });
}

using RoleGroups = std::vector<std::pair<QuantAction, std::vector<TensorRole>>>;

// The roles `actions` sets (and `keep` accepts), grouped by their action, in kBaseRoles order.
template <typename Keep>
RoleGroups roles_by_action(const RoleActions& actions, Keep keep) {
  RoleGroups groups;
  for (TensorRole role : kBaseRoles) {
    std::optional<QuantAction> action = actions.of(role);
    if (!action || !keep(role)) continue;
    auto same = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == *action; });
    if (same == groups.end()) {
      groups.emplace_back(*action, std::vector<TensorRole>{});
      same = groups.end() - 1;
    }
    same->second.push_back(role);
  }
  return groups;
}

// One rule per distinct action, naming the roles the model has that get it.
std::vector<Rule> base_rules(std::span<const QuantUnit> units, const RoleActions& actions) {
  std::vector<Rule> rules;
  for (auto& [action, roles] : roles_by_action(actions, [&](TensorRole r) { return has_role(units, r); }))
    rules.push_back({{roles, {}, {}, {}, {}}, action, "base"});
  return rules;
}

// "attention gptq int4 g128 asym; routed_expert, shared_expert gptq int2 g128 asym"
std::string describe_base(const RoleActions& actions) {
  std::string out;
  for (const auto& [action, roles] : roles_by_action(actions, [](TensorRole) { return true; }))
    out += fmt::format("{}{} {}", out.empty() ? "" : "; ", fmt::join(role_names(roles), ", "), describe(action));
  return out.empty() ? "nothing quantized" : out;
}

// Rules giving `high` to the picked units, then the base.
Recipe promote(std::span<const QuantUnit> units, const RoleActions& base, const QuantAction& high,
               const std::vector<bool>& picked, const std::string& what) {
  std::vector<std::optional<QuantAction>> actions(units.size());
  for (size_t i = 0; i < units.size(); ++i)
    if (picked[i]) actions[i] = high;
  Recipe recipe;
  recipe.description = fmt::format("{} at {}; rest per role: {}", what, describe(high), describe_base(base));
  recipe.rules = rules_for(units, actions);
  for (Rule& rule : recipe.rules) rule.note = what;
  for (Rule& rule : base_rules(units, base)) recipe.rules.push_back(std::move(rule));
  return recipe;
}

// Layers that hold routed experts, ascending.
std::vector<int> moe_layers(std::span<const QuantUnit> units) {
  std::set<int> layers;
  for (const QuantUnit& u : units)
    if (u.role == TensorRole::RoutedExpert) layers.insert(u.layer);
  return {layers.begin(), layers.end()};
}

// Marks the routed and shared experts of `layers`.
std::vector<bool> experts_of_layers(std::span<const QuantUnit> units, const std::set<int>& layers) {
  std::vector<bool> picked(units.size());
  for (size_t i = 0; i < units.size(); ++i)
    picked[i] = (units[i].role == TensorRole::RoutedExpert || units[i].role == TensorRole::SharedExpert) &&
                layers.count(units[i].layer);
  return picked;
}

void check_count(int64_t count, size_t available, std::string_view what) {
  if (count < 0 || size_t(count) > available)
    fail("{}: asked for {} of {} available", what, count, available);
}

std::string_view pick_name(Pick pick) { return pick == Pick::Top ? "top" : "random"; }

}  // namespace

RoleActions RoleActions::all(QuantAction action) { return {action, action, action, action, std::nullopt}; }

std::optional<QuantAction> RoleActions::of(TensorRole role) const {
  switch (role) {
    case TensorRole::Attention: return attention;
    case TensorRole::RoutedExpert: return routed_expert;
    case TensorRole::SharedExpert: return shared_expert;
    case TensorRole::DenseMlp: return dense_mlp;
    case TensorRole::LmHead: return lm_head;
    default: return std::nullopt;
  }
}

Recipe by_role(std::span<const QuantUnit> units, const RoleActions& actions) {
  Recipe recipe;
  recipe.description = "per role: " + describe_base(actions);
  recipe.rules = base_rules(units, actions);
  return recipe;
}

Recipe first_last_blocks(std::span<const QuantUnit> units, const BlockRangeOptions& options) {
  std::vector<int> layers = moe_layers(units);
  check_count(options.first_k, layers.size(), "first_last_blocks: first_k MoE blocks");
  check_count(options.last_k, layers.size(), "first_last_blocks: last_k MoE blocks");
  std::set<int> chosen(layers.begin(), layers.begin() + options.first_k);
  chosen.insert(layers.end() - options.last_k, layers.end());
  return promote(units, options.base, options.high, experts_of_layers(units, chosen),
                 fmt::format("experts of the first {} and last {} MoE blocks", options.first_k, options.last_k));
}

Recipe expert_frequency(std::span<const QuantUnit> units, std::span<const std::vector<int64_t>> counts,
                        const ExpertFrequencyOptions& options) {
  // Candidates: every (layer, expert) of the model, with its routing count.
  std::set<std::pair<int, int>> experts;
  for (const QuantUnit& u : units)
    if (u.role == TensorRole::RoutedExpert) experts.insert({u.layer, u.expert});
  std::vector<std::pair<int, int>> pairs(experts.begin(), experts.end());
  std::vector<double> score;
  for (auto [layer, expert] : pairs) {
    if (size_t(layer) >= counts.size() || size_t(expert) >= counts[size_t(layer)].size())
      fail("expert_frequency: routing counts have no entry for layer {} expert {}", layer, expert);
    score.push_back(double(counts[size_t(layer)][size_t(expert)]));
  }
  // Scopes: the whole model, or each layer's slice of `pairs` (sorted by layer).
  std::vector<std::pair<size_t, size_t>> scopes;  // [begin, end) into pairs
  for (size_t b = 0; b < pairs.size();) {
    size_t e = b;
    while (e < pairs.size() && (options.scope == PickScope::Global || pairs[e].first == pairs[b].first)) ++e;
    scopes.emplace_back(b, e);
    b = e;
  }
  SeededRandom random(options.seed);
  std::set<std::pair<int, int>> chosen;
  for (auto [b, e] : scopes) {
    check_count(options.count, e - b, "expert_frequency: experts");
    std::vector<size_t> picks = options.pick == Pick::Top
                                    ? top_indices(std::span(score).subspan(b, e - b), size_t(options.count))
                                    : random.choose(e - b, size_t(options.count));
    for (size_t p : picks) chosen.insert(pairs[b + p]);
  }
  std::vector<bool> picked(units.size());
  for (size_t i = 0; i < units.size(); ++i)
    picked[i] = units[i].role == TensorRole::RoutedExpert && chosen.count({units[i].layer, units[i].expert});
  std::string what = fmt::format("{} {} experts {} by routing frequency", pick_name(options.pick), options.count,
                                 options.scope == PickScope::PerLayer ? "per layer" : "of the model");
  if (options.pick == Pick::Random) what += fmt::format(" (control, seed {})", options.seed);
  return promote(units, options.base, options.high, picked, what);
}

Recipe by_projection(std::span<const QuantUnit> units, const ProjectionOptions& options) {
  RoleActions base = options.base;
  std::vector<TensorRole> roles;
  for (TensorRole role : options.roles) {
    if (role == TensorRole::RoutedExpert) base.routed_expert.reset();
    if (role == TensorRole::SharedExpert) base.shared_expert.reset();
    if (role == TensorRole::DenseMlp) base.dense_mlp.reset();
    if (has_role(units, role)) roles.push_back(role);
  }
  Recipe recipe;
  recipe.description = fmt::format("gate/up {}, down {}; rest per role: {}", describe(options.gate_up),
                                   describe(options.down), describe_base(base));
  if (!roles.empty()) {  // an empty role list would select every tensor
    recipe.rules.push_back({{roles, {}, {}, {"gate", "up"}, {}}, options.gate_up, "gate/up projections"});
    recipe.rules.push_back({{roles, {}, {}, {"down"}, {}}, options.down, "down projections"});
  }
  for (Rule& rule : base_rules(units, base)) recipe.rules.push_back(std::move(rule));
  return recipe;
}

Recipe top_unit_scores(std::span<const QuantUnit> units, std::span<const double> scores,
                       const UnitScoreOptions& options) {
  if (scores.size() != units.size()) fail("top_unit_scores: {} scores for {} units", scores.size(), units.size());
  std::vector<size_t> eligible;
  std::vector<double> eligible_scores;
  for (size_t i = 0; i < units.size(); ++i) {
    if (std::find(options.roles.begin(), options.roles.end(), units[i].role) == options.roles.end()) continue;
    eligible.push_back(i);
    eligible_scores.push_back(scores[i]);
  }
  auto n = int64_t(std::llround(options.percent / 100.0 * double(eligible.size())));
  check_count(n, eligible.size(), "top_unit_scores: units");
  std::vector<size_t> picks = options.pick == Pick::Top ? top_indices(eligible_scores, size_t(n))
                                                        : SeededRandom(options.seed).choose(eligible.size(), size_t(n));
  std::vector<bool> picked(units.size());
  for (size_t p : picks) picked[eligible[p]] = true;
  std::string what = fmt::format("{} {}% of {} units by {} ({} units)", pick_name(options.pick), options.percent,
                                 fmt::join(role_names(options.roles), ", "), options.score_name, n);
  if (options.pick == Pick::Random) what += fmt::format(" (control, seed {})", options.seed);
  return promote(units, options.base, options.high, picked, what);
}

Recipe top_block_scores(std::span<const QuantUnit> units, std::span<const double> scores,
                        const BlockScoreOptions& options) {
  std::vector<int> layers = moe_layers(units);
  std::vector<double> layer_scores;
  for (int layer : layers) {
    if (size_t(layer) >= scores.size()) fail("top_block_scores: no score for MoE block {}", layer);
    layer_scores.push_back(scores[size_t(layer)]);
  }
  check_count(options.top_k, layers.size(), "top_block_scores: MoE blocks");
  std::set<int> chosen;
  for (size_t p : top_indices(layer_scores, size_t(options.top_k))) chosen.insert(layers[p]);
  return promote(units, options.base, options.high, experts_of_layers(units, chosen),
                 fmt::format("experts of the {} MoE blocks with the highest block score", options.top_k));
}

}  // namespace moeq::plan
