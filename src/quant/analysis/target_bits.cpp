#include "quant/analysis/target_bits.h"

#include <fmt/format.h>

#include "core/error.h"

namespace moeq::analysis {

TargetBitsResult target_bits_recipe(const ModelStats& stats, double target_bits) {
  std::vector<plan::QuantUnit> units;
  std::vector<std::vector<plan::Candidate>> candidates;
  for (size_t i = 0; i < stats.units.size(); ++i) {
    if (stats.per_unit[i].loss.empty()) continue;
    units.push_back(stats.units[i]);
    std::vector<plan::Candidate>& c = candidates.emplace_back();
    for (size_t k = 0; k < stats.candidates.size(); ++k) c.push_back({stats.candidates[k], stats.per_unit[i].loss[k]});
  }
  if (units.empty()) fail("target bits: the statistics hold no sensitivities");
  TargetBitsResult out;
  out.allocation = plan::allocate_bits(units, candidates, {target_bits});
  // Rules name roles always, so rules over the body units leave routers and lm_head alone.
  out.recipe = plan::allocation_recipe(units, candidates, out.allocation, target_bits);
  return out;
}

void set_calibration(plan::Recipe& recipe, const CalibOptions& calib) {
  recipe.settings.calibration = {calib.samples, calib.seqlen, int64_t(calib.seed), calib.file.string()};
  recipe.settings.under_calibrated = {plan::UnderCalibratedPolicy::AllTokens, 32};
}

plan::Recipe plan_target_bits(const TargetBitsRequest& request) {
  const ModelStats stats = load_or_collect_stats(request.stats, request.stats_cache);
  TargetBitsResult result = target_bits_recipe(stats, request.target_bits);
  set_calibration(result.recipe, request.stats.calib);
  fmt::print(stderr, "moeq: {}\n", result.recipe.description);
  return result.recipe;
}

}  // namespace moeq::analysis
