// Bit-allocation strategies (Li et al. 2024, "Examining Post-Training Quantization for
// Mixture-of-Experts"). Each takes the model's units and an options struct and returns a Recipe:
// rules that promote some units to `high` come first, then one rule per action of the per-role
// base. Routers and shared-expert gates get no rule, so they stay 16-bit. Rules only name roles
// the model has, so the recipe resolves against the same model without errors. Recipes carry
// default settings; set recipe.settings for calibration and algorithm options.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "quant/plan/recipe.h"

namespace moeq::plan {

// The action per structural role; unset: no rule (the tensors stay as they are).
struct RoleActions {
  std::optional<QuantAction> attention, routed_expert, shared_expert, dense_mlp, lm_head;

  // Every linear of the decoder body (attention, experts, dense MLPs) gets `action`; lm_head and
  // embeddings stay as they are.
  static RoleActions all(QuantAction action);
  std::optional<QuantAction> of(TensorRole role) const;
};

// Uniform b bits (RoleActions::all), attention vs expert bits, shared vs routed expert bits,
// dense-MLP bits: all are per-role actions.
Recipe by_role(std::span<const QuantUnit> units, const RoleActions& actions);

// The routed and shared experts of the first `first_k` and last `last_k` MoE blocks (layers
// with routed experts, in order) get `high`.
struct BlockRangeOptions {
  RoleActions base;
  QuantAction high;
  int first_k = 0;
  int last_k = 0;
};
Recipe first_last_blocks(std::span<const QuantUnit> units, const BlockRangeOptions& options);

enum class PickScope : uint8_t { PerLayer, Global };
enum class Pick : uint8_t {
  Top,     // the highest scores
  Random,  // the control: as many, drawn with SeededRandom(seed), so at equal bits
};

// Routed experts by routing frequency: counts[layer][expert] = tokens routed there during
// calibration (dense layers: empty). PerLayer: `count` experts of every MoE layer; Global:
// `count` (layer, expert) pairs over the whole model. All projections of a picked expert get
// `high`.
struct ExpertFrequencyOptions {
  RoleActions base;
  QuantAction high;
  PickScope scope = PickScope::PerLayer;
  int count = 1;
  Pick pick = Pick::Top;
  uint64_t seed = 0;
};
Recipe expert_frequency(std::span<const QuantUnit> units, std::span<const std::vector<int64_t>> counts,
                        const ExpertFrequencyOptions& options);

// Projections of the MLP roles: gate and up get `gate_up`, down gets `down`; other roles follow
// `base` (whose entries for `roles` are ignored).
struct ProjectionOptions {
  RoleActions base;
  QuantAction gate_up;
  QuantAction down;
  std::vector<TensorRole> roles = {TensorRole::RoutedExpert, TensorRole::SharedExpert, TensorRole::DenseMlp};
};
Recipe by_projection(std::span<const QuantUnit> units, const ProjectionOptions& options);

// The top `percent` % of the units of `roles` by score (scores[i] belongs to units[i], e.g.
// outlier_score of its weight), or as many drawn at random, get `high`. The number picked is
// round(percent / 100 · eligible units).
struct UnitScoreOptions {
  RoleActions base;
  QuantAction high;
  double percent = 10;
  std::vector<TensorRole> roles = {TensorRole::RoutedExpert};
  Pick pick = Pick::Top;
  uint64_t seed = 0;
  std::string score_name = "outlier score";  // for the recipe's description and notes
};
Recipe top_unit_scores(std::span<const QuantUnit> units, std::span<const double> scores,
                       const UnitScoreOptions& options);

// The `top_k` MoE blocks with the highest score (scores[layer], e.g. block_change_score) get
// `high` for their routed and shared experts.
struct BlockScoreOptions {
  RoleActions base;
  QuantAction high;
  int top_k = 1;
};
Recipe top_block_scores(std::span<const QuantUnit> units, std::span<const double> scores,
                        const BlockScoreOptions& options);

}  // namespace moeq::plan
