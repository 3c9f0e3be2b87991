// A benchmark grid: the allocations `moeq bench` quantizes and evaluates, one row each. Every
// row becomes a recipe (GPTQ, int g128 asymmetric) through the strategies of quant/plan or the
// target-bits optimiser; the statistics they need come from quant/analysis/model_stats.h.
// Format (TOML, docs/BENCH.md):
//
//   [[row]]
//   name = "attn4-experts2"     # unique; [A-Za-z0-9._-]
//   family = "attention"        # optional; plot marker and table group (default: the strategy)
//   strategy = "roles"          # bf16 | roles | blocks | frequency | projection | outlier |
//                               # block_score | target_bits | recipe
//   bits = 2                    # every linear of the decoder body, unless overridden
//   attention_bits = 4          # optional per-role overrides: attention_bits, routed_bits,
//                               # shared_bits, dense_bits
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quant/analysis/model_stats.h"
#include "quant/plan/recipe.h"
#include "quant/plan/strategies.h"

namespace moeq::bench {

enum class Strategy : uint8_t {
  Bf16,        // the unquantized checkpoint (reference row)
  Roles,       // per-role bits: uniform, attention vs experts, shared vs routed, dense MLP
  Blocks,      // experts of the first_k / last_k MoE blocks at high_bits
  Frequency,   // count most-routed (pick top) or random (pick random, seed) experts at high_bits
  Projection,  // expert gate/up at gate_up_bits, down at down_bits
  Outlier,     // top (or random) percent % of expert linears by outlier score at high_bits
  BlockScore,  // experts of the count blocks with the highest 1 − cos score at high_bits
  TargetBits,  // the optimiser at target_bits average bits
  RecipeFile,  // a recipe file as it is
};

std::string_view strategy_name(Strategy strategy);

struct GridRow {
  std::string name;
  std::string family;
  Strategy strategy = Strategy::Roles;
  int bits = 2;
  std::optional<int> attention_bits, routed_bits, shared_bits, dense_bits;
  int high_bits = 4;
  int first_k = 0, last_k = 0;
  int count = 0;
  plan::PickScope scope = plan::PickScope::PerLayer;
  plan::Pick pick = plan::Pick::Top;
  uint64_t seed = 0;
  double percent = 0;
  int gate_up_bits = 0, down_bits = 0;
  double target_bits = 0;
  std::filesystem::path recipe;  // absolute, or relative to the working directory
};

struct Grid {
  std::string source;  // "paper" or the file
  std::vector<GridRow> rows;
};

// The paper's grid (Li et al. 2024) for a model with these units: bf16; uniform 2/3/4/8;
// attention 4/8 with the rest at 2 (attention 2 is uniform 2); shared experts 4/8 with the rest
// at 2 where the model has them; the experts of the first 2 / last 2 MoE blocks at 4; the
// experts/4 most routed experts per layer at 4 vs as many random ones (seed 0); the top 5/10/25 %
// of expert linears by outlier score at 4 vs random (seed 0); the experts of the 2 MoE blocks
// with the highest block score at 4; the optimiser at 2.25, 2.5, 3.0 and `q2k_bits`.
Grid paper_grid(std::span<const plan::QuantUnit> units, double q2k_bits = 3.5);

// Throws moeq::Error naming the file, the row (1-based, and its name) and the field.
Grid parse_grid(std::string_view toml_text, const std::string& source, const std::filesystem::path& base_dir = {});
Grid load_grid(const std::filesystem::path& file);

// The row's recipe (rules only; the caller sets calibration). Bf16 rows have none.
plan::Recipe row_recipe(const GridRow& row, const analysis::ModelStats& stats);

}  // namespace moeq::bench
