// `--target-bits B`: the allocation of candidate bit-widths to the decoder body's linears that
// minimises the summed measured sensitivity (model_stats.h) with the paper's average bits (over
// those linears) at most B, as a re-runnable recipe. Routers, embeddings and lm_head get no rule.
#pragma once

#include "quant/analysis/model_stats.h"
#include "quant/plan/optimizer.h"
#include "quant/plan/recipe.h"

namespace moeq::analysis {

struct TargetBitsResult {
  plan::Recipe recipe;          // default settings; the caller sets calibration
  plan::Allocation allocation;  // over the units with sensitivities, in stats.units order
};

// Throws moeq::Error when the stats hold no sensitivities or B is below the cheapest candidate.
TargetBitsResult target_bits_recipe(const ModelStats& stats, double target_bits);

// The recipe settings the generated recipes run with: this calibration, and experts routed fewer
// than 32 calibration tokens calibrated on all of their layer's tokens.
void set_calibration(plan::Recipe& recipe, const CalibOptions& calib);

// `moeq quantize --target-bits`: statistics (cached in `stats_cache`), the allocation, and its
// recipe with set_calibration applied.
struct TargetBitsRequest {
  StatsRequest stats;
  std::filesystem::path stats_cache;
  double target_bits = 4;
};
plan::Recipe plan_target_bits(const TargetBitsRequest& request);

}  // namespace moeq::analysis
