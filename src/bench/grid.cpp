#include "bench/grid.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "quant/analysis/target_bits.h"

namespace moeq::bench {
namespace {

using plan::QuantAction;

QuantAction gptq(int bits) { return QuantAction::int_bits(plan::QuantMethod::Gptq, bits, 128, false); }

bool has_role(std::span<const plan::QuantUnit> units, TensorRole role) {
  return std::any_of(units.begin(), units.end(), [&](const plan::QuantUnit& u) { return u.role == role; });
}

plan::RoleActions base_actions(const GridRow& row) {
  plan::RoleActions a = plan::RoleActions::all(gptq(row.bits));
  if (row.attention_bits) a.attention = gptq(*row.attention_bits);
  if (row.routed_bits) a.routed_expert = gptq(*row.routed_bits);
  if (row.shared_bits) a.shared_expert = gptq(*row.shared_bits);
  if (row.dense_bits) a.dense_mlp = gptq(*row.dense_bits);
  return a;
}

GridRow row(std::string name, std::string family, Strategy strategy) {
  GridRow r;
  r.name = std::move(name);
  r.family = std::move(family);
  r.strategy = strategy;
  return r;
}

// "STEM-topTAIL" in `family`, or its control "STEM-randomTAIL" (seed 0) in "random control".
GridRow picked(const std::string& stem, plan::Pick pick, const std::string& tail, const std::string& family,
               Strategy strategy) {
  const bool top = pick == plan::Pick::Top;
  GridRow r = row(fmt::format("{}-{}{}", stem, top ? "top" : "random", tail), top ? family : "random control", strategy);
  r.pick = pick;
  return r;
}

// Routed experts per MoE layer (the largest count, for models whose layers differ).
int experts_per_layer(std::span<const plan::QuantUnit> units) {
  std::set<int> experts;
  for (const plan::QuantUnit& u : units)
    if (u.role == TensorRole::RoutedExpert) experts.insert(u.expert);
  return int(experts.size());
}

int moe_blocks(std::span<const plan::QuantUnit> units) {
  std::set<int> layers;
  for (const plan::QuantUnit& u : units)
    if (u.role == TensorRole::RoutedExpert) layers.insert(u.layer);
  return int(layers.size());
}

}  // namespace

std::string_view strategy_name(Strategy s) {
  switch (s) {
    case Strategy::Bf16: return "bf16";
    case Strategy::Roles: return "roles";
    case Strategy::Blocks: return "blocks";
    case Strategy::Frequency: return "frequency";
    case Strategy::Projection: return "projection";
    case Strategy::Outlier: return "outlier";
    case Strategy::BlockScore: return "block_score";
    case Strategy::TargetBits: return "target_bits";
    case Strategy::RecipeFile: return "recipe";
  }
  return "?";
}

Grid paper_grid(std::span<const plan::QuantUnit> units, double q2k_bits) {
  Grid g{"paper", {}};
  g.rows.push_back(row("bf16", "bf16", Strategy::Bf16));
  for (int b : {2, 3, 4, 8}) {
    GridRow r = row(fmt::format("uniform-{}", b), "uniform", Strategy::Roles);
    r.bits = b;
    g.rows.push_back(r);
  }
  for (int b : {4, 8}) {
    GridRow r = row(fmt::format("attn{}-rest2", b), "attention", Strategy::Roles);
    r.attention_bits = b;
    g.rows.push_back(r);
  }
  if (has_role(units, TensorRole::SharedExpert))
    for (int b : {4, 8}) {
      GridRow r = row(fmt::format("shared{}-rest2", b), "shared", Strategy::Roles);
      r.shared_bits = b;
      g.rows.push_back(r);
    }
  const int blocks = std::min(2, moe_blocks(units));
  GridRow first = row(fmt::format("first{}-experts4", blocks), "first/last-k", Strategy::Blocks);
  first.first_k = blocks;
  GridRow last = row(fmt::format("last{}-experts4", blocks), "first/last-k", Strategy::Blocks);
  last.last_k = blocks;
  g.rows.insert(g.rows.end(), {first, last});
  const int k = std::max(1, experts_per_layer(units) / 4);
  for (plan::Pick pick : {plan::Pick::Top, plan::Pick::Random}) {
    GridRow r = picked("freq", pick, fmt::format("{}-experts4", k), "frequency", Strategy::Frequency);
    r.count = k;
    g.rows.push_back(r);
  }
  for (plan::Pick pick : {plan::Pick::Top, plan::Pick::Random})
    for (int p : {5, 10, 25}) {
      GridRow r = picked("outlier", pick, fmt::format("{}pct-4", p), "outlier", Strategy::Outlier);
      r.percent = p;
      g.rows.push_back(r);
    }
  GridRow scored = row(fmt::format("blockscore-top{}-experts4", blocks), "block score", Strategy::BlockScore);
  scored.count = blocks;
  g.rows.push_back(scored);
  for (double t : {2.25, 2.5, 3.0, q2k_bits}) {
    GridRow r = row(fmt::format("target-{:g}", t), "target bits", Strategy::TargetBits);
    r.target_bits = t;
    g.rows.push_back(r);
  }
  return g;
}

plan::Recipe row_recipe(const GridRow& r, const analysis::ModelStats& stats) {
  const std::span<const plan::QuantUnit> units = stats.units;
  const plan::RoleActions base = base_actions(r);
  const QuantAction high = gptq(r.high_bits);
  const std::vector<TensorRole> experts = {TensorRole::RoutedExpert, TensorRole::SharedExpert};
  switch (r.strategy) {
    case Strategy::Bf16: fail("row '{}': bf16 has no recipe", r.name);
    case Strategy::Roles: return plan::by_role(units, base);
    case Strategy::Blocks: return plan::first_last_blocks(units, {base, high, r.first_k, r.last_k});
    case Strategy::Frequency: return plan::expert_frequency(units, stats.routing, {base, high, r.scope, r.count, r.pick, r.seed});
    case Strategy::Projection: return plan::by_projection(units, {base, gptq(r.gate_up_bits), gptq(r.down_bits)});
    case Strategy::Outlier: {
      std::vector<TensorRole> roles;
      for (TensorRole role : experts)
        if (has_role(units, role)) roles.push_back(role);
      const std::vector<double> scores = stats.outlier_scores();
      return plan::top_unit_scores(units, scores, {base, high, r.percent, roles, r.pick, r.seed, "outlier score"});
    }
    case Strategy::BlockScore: return plan::top_block_scores(units, stats.block_scores, {base, high, r.count});
    case Strategy::TargetBits: return analysis::target_bits_recipe(stats, r.target_bits).recipe;
    case Strategy::RecipeFile: return plan::load_recipe(r.recipe);
  }
  fail("row '{}': unknown strategy", r.name);
}

}  // namespace moeq::bench
